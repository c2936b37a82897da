"""``lakeop ingest``: run one IngestionJob, from manifests (-f) or from a plan (Job pods).

Both paths end in :func:`lakeop.engine.run.run_plan`. Locally the plan is built from the
Table, its SchemaVersions (the highest version of the chain that passes the table's
compatibility mode) and the IngestionJob found among the -f files; Secrets among them fill
the same ``LAKEOP_STORAGE_*`` / ``LAKEOP_SOURCE_*`` variables a Job pod gets from envFrom.
Exit codes: 0 ok, 1 the run failed, 2 bad input, 130 interrupted (SIGINT, Ctrl-C), 143
terminated (SIGTERM). A ``-f`` run that does not succeed releases its claim
(:func:`lakeop.engine.claims.release`) on every exit path it sees: an error, a full disk, a
traceback, SIGINT or SIGTERM (turned into an orderly stop). Nothing retries it, so its inputs
go to the next run. What it cannot see (SIGKILL, power loss) the claim's lease covers: it is
``LAKEOP_CLAIM_LEASE_SECONDS`` long (default 30 s here, 10 minutes in Job pods).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import yaml

from lakeop.cli.ingest_plan import plan_of_args
from lakeop.cli.manifests import ManifestError
from lakeop.cli.options import add_default_location, add_pod_options, counted
from lakeop.cli.progress import finish, progress_logger
from lakeop.core.runs.plan import RunPlan
from lakeop.core.runs.summary import Failure, RunSummary
from lakeop.core.timestamps import format_epoch
from lakeop.engine.claims import release
from lakeop.engine.leases import CLI_LEASE_S, LEASE_ENV
from lakeop.engine.run import run_plan
from lakeop.engine.run_result import SUMMARY_LIMIT, RunResult
from lakeop.errors import (
    IncompatibleSchemaError,
    InvalidSchemaError,
    InvalidSourceError,
    InvalidSpecError,
    LakeopError,
)
from lakeop.logging_setup import engine_output

BAD_INPUT = (InvalidSpecError, InvalidSchemaError, IncompatibleSchemaError, InvalidSourceError)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="manifest file or folder (Table, SchemaVersions, IngestionJob)",
    )
    parser.add_argument("--job", help="IngestionJob name when the files hold several")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    add_pod_options(parser)
    add_default_location(parser)


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived: unwind the run (its ``finally`` blocks and discards run),
    then release and exit ``128 + signal``. A BaseException, so no ``except Exception`` on the
    way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Stops:
    """What :func:`stop_on_signals` turns SIGINT and SIGTERM into: the first one raises
    :class:`Stopped` while the run can still be unwound; any later one, or one after
    :meth:`settle` (the outcome is decided, only reporting is left), is ignored. A SIGKILL
    still ends the process, and the claim's lease covers that."""

    def __init__(self) -> None:
        self.caught: int | None = None
        self.settled = False

    def handler(self, signum: int, _frame: object) -> None:
        if self.caught is not None or self.settled:
            return
        self.caught = signum
        raise Stopped(signum)

    def settle(self) -> None:
        self.settled = True


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stops]:
    stops = Stops()
    previous = {s: signal.signal(s, stops.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stops
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(args: argparse.Namespace) -> int:
    # the try holds the with statement whole: a signal can land while a context is entered
    # or left (seen in CI: inside engine_output's handler set-up), not only in its body
    try:
        with stop_on_signals() as stops, engine_output():
            return _run(args, stops)
    except Stopped as e:  # while starting or planning (nothing claimed yet), or releasing
        print(f"lakeop ingest: stopped by {signal.Signals(e.signum).name}", file=sys.stderr)
        return 128 + e.signum


def _run(args: argparse.Namespace, stops: Stops) -> int:
    env: dict[str, str] = dict(os.environ)
    use_compact_allocator(env)
    if not args.plan_env:  # a local run: a short lease, so a killed run frees its inputs soon
        env.setdefault(LEASE_ENV, str(CLI_LEASE_S))
    try:
        plan = plan_of_args(args, env)
    except (*BAD_INPUT, ManifestError, OSError, yaml.YAMLError) as e:
        print(f"lakeop ingest: {e}", file=sys.stderr)
        reason = str(getattr(e, "reason", "InvalidInput"))
        _terminate(args, RunSummary(error=Failure(reason, str(e))))
        return 2
    try:
        result, code = _execute(plan, env)
    except Stopped as e:
        name = signal.Signals(e.signum).name
        result = _failed(plan, "Interrupted", f"run {plan.run_id}: stopped by {name}")
        code = 128 + e.signum
    if code and not args.plan_env:  # -f runs once, never retried: free its claim
        _release(plan, env)
    stops.settle()
    summary = result.summary()
    _emit(args, summary)
    _terminate(args, summary)
    return code


def _execute(plan: RunPlan, env: Mapping[str, str]) -> tuple[RunResult, int]:
    """The run and its exit code: 0 ok, 2 bad input, 1 any other failure (a traceback
    included: it is printed, and the run counts as failed so that its claim is released)."""
    bar = progress_logger()  # a terminal: a bar; else the engine's progress log lines
    try:
        if bar is not None:
            return run_plan(plan, env, progress=bar), 0
        return run_plan(plan, env), 0
    except LakeopError as e:
        return _failed(plan, e.reason, str(e)), 2 if isinstance(e, BAD_INPUT) else 1
    except (OSError, ValueError) as e:  # pyarrow/OS errors not mapped below the engine
        return _failed(plan, "Failed", f"{type(e).__name__}: {e}"), 1
    except Exception as e:  # a bug: report it, and still release the claim
        traceback.print_exc()
        return _failed(plan, "InternalError", f"{type(e).__name__}: {e}"), 1
    finally:
        finish(bar)


def _release(plan: RunPlan, env: Mapping[str, str]) -> None:
    """Release the failed run's claim, so the next run takes its inputs (a Job pod's run is
    released by the operator instead: its retries adopt the claim)."""
    try:
        release(plan.table.location, env, plan.storage_env_prefix, plan.job, plan.run_id)
    except Exception as e:  # the run's own outcome stands; the lease expires
        # Anything: a signal can land inside an import the release makes (seen: pyiceberg's
        # SQL catalog half-imported after SIGTERM), and the exit code must stay the run's.
        print(
            f"lakeop ingest: could not release the claim of run {plan.run_id} "
            f"({type(e).__name__}: {e}); its lease expires instead",
            file=sys.stderr,
        )


def use_compact_allocator(env: Mapping[str, str]) -> None:
    """Prefer jemalloc for Arrow buffers: it returns freed memory to the OS far more readily
    than mimalloc under many short-lived buffers, which keeps a run's peak RSS low.
    ``ARROW_DEFAULT_MEMORY_POOL`` still wins when set."""
    if env.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow build without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def _failed(plan: RunPlan, reason: str, message: str) -> RunResult:
    now = format_epoch(dt.datetime.now(dt.UTC).timestamp())
    return RunResult(
        plan.run_id,
        plan.table.name,
        plan.schema_version,
        start_time=now,
        completion_time=now,
        error=Failure(reason, message),
    )


def _emit(args: argparse.Namespace, summary: RunSummary) -> None:
    if args.output == "json":
        print(summary.to_json())
        return
    if summary.error:
        print(
            f"run {summary.run_id} failed: {summary.error.reason}: {summary.error.message}",
            file=sys.stderr,
        )
        return
    print(
        f"run {summary.run_id}: table {summary.table} schema v{summary.schema_version}: "
        f"{counted(summary.rows_written or 0, 'row')} written ({summary.rows_read or 0:,} read, "
        f"{summary.rows_rejected or 0:,} rejected), {counted(summary.files_written or 0, 'file')}, "
        f"{counted(summary.bytes_written or 0, 'byte')}, "
        f"{counted(len(summary.partitions or ()), 'partition')}, {summary.seconds or 0.0:.2f} s"
    )
    if summary.ignored_columns:
        print(f"ignored source columns: {', '.join(summary.ignored_columns)}")


def bounded_summary(summary: RunSummary, limit: int = SUMMARY_LIMIT) -> str:
    """The summary JSON under ``limit`` bytes, truncating the partitions list if needed."""
    text = summary.to_json()
    parts = tuple(summary.partitions or ())
    while len(text.encode()) >= limit and parts:
        parts = parts[: len(parts) // 2]
        summary = replace(summary, partitions=parts, partitions_truncated=True)
        text = summary.to_json()
    if len(text.encode()) >= limit and summary.error:
        error = Failure(summary.error.reason, summary.error.message[:1000])
        text = summary.with_error(error).to_json()
    return text


def _terminate(args: argparse.Namespace, summary: RunSummary) -> None:
    if args.termination_log:
        try:
            Path(args.termination_log).write_text(bounded_summary(summary))
        except OSError as e:
            print(f"lakeop ingest: cannot write termination log: {e}", file=sys.stderr)
