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
import secrets
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from lakeop.cli.crds import load_validators, packaged_crds_dir
from lakeop.cli.manifests import Document, ManifestError, find_files, load_file
from lakeop.cli.validate import schema_problems
from lakeop.core.constants import (
    DEFAULT_LOCATION_ENV,
    SOURCE_ENV_PREFIX,
    SOURCE_SQL_URL_ENV,
    STORAGE_ENV_PREFIX,
)
from lakeop.core.runs.plan import RunPlan, build_plan
from lakeop.core.runs.summary import Failure, RunSummary
from lakeop.core.schema.verdict import Peer, current_step, walk_chain
from lakeop.core.spec.fields import LABEL_RULE, label_problem
from lakeop.core.spec.resources import (
    IngestionJobSpec,
    SchemaVersionSpec,
    TableSpec,
    parse_ingestion_job,
    parse_schema_version,
    parse_table,
)
from lakeop.core.spec.secrets import decode_secret_data
from lakeop.core.spec.sources import SourceSpec, SqlSourceSpec
from lakeop.core.spec.tenancy import ENV_VAR as ALLOWED_LOCATIONS_ENV
from lakeop.core.spec.tenancy import AllowedLocations, check_location, parse_allowed_locations
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
from lakeop.sources.sql import check_url
from lakeop.storage import real_location

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
    parser.add_argument("--plan-env", metavar="VAR", help="read the run plan JSON from VAR")
    parser.add_argument("--termination-log", metavar="PATH", help="also write the summary here")
    parser.add_argument("--run-id", help="run id (a retry with the same id never duplicates)")
    parser.add_argument(
        "--default-location",
        help="root for tables without spec.location "
        "(default: $LAKEOP_DEFAULT_LOCATION, else ./lake)",
    )


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
    with stop_on_signals() as stops, engine_output():
        try:
            return _run(args, stops)
        except Stopped as e:  # while planning (nothing claimed yet), or while releasing
            print(f"lakeop ingest: stopped by {signal.Signals(e.signum).name}", file=sys.stderr)
            return 128 + e.signum


def _run(args: argparse.Namespace, stops: Stops) -> int:
    env: dict[str, str] = dict(os.environ)
    use_compact_allocator(env)
    if not args.plan_env:  # a local run: a short lease, so a killed run frees its inputs soon
        env.setdefault(LEASE_ENV, str(CLI_LEASE_S))
    try:
        plan = _plan(args, env)
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
    try:
        return run_plan(plan, env), 0
    except LakeopError as e:
        return _failed(plan, e.reason, str(e)), 2 if isinstance(e, BAD_INPUT) else 1
    except (OSError, ValueError) as e:  # pyarrow/OS errors not mapped below the engine
        return _failed(plan, "Failed", f"{type(e).__name__}: {e}"), 1
    except Exception as e:  # a bug: report it, and still release the claim
        traceback.print_exc()
        return _failed(plan, "InternalError", f"{type(e).__name__}: {e}"), 1


def _release(plan: RunPlan, env: Mapping[str, str]) -> None:
    """Release the failed run's claim, so the next run takes its inputs (a Job pod's run is
    released by the operator instead: its retries adopt the claim)."""
    try:
        release(plan.table.location, env, plan.storage_env_prefix, plan.job, plan.run_id)
    except (LakeopError, OSError) as e:
        print(
            f"lakeop ingest: could not release the claim of run {plan.run_id}: {e}", file=sys.stderr
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
        f"{summary.rows_written or 0:,} rows written ({summary.rows_read or 0:,} read, "
        f"{summary.rows_rejected or 0:,} rejected), {summary.files_written or 0} files, "
        f"{summary.bytes_written or 0:,} bytes, {len(summary.partitions or ())} partitions, "
        f"{summary.seconds or 0.0:.2f} s"
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


# ---------------------------------------------------------------------------- plans


def _plan(args: argparse.Namespace, env: dict[str, str]) -> RunPlan:
    """The run's plan, refused before any claim or I/O if it could not run as given."""
    plan = _plan_of_env(args, env) if args.plan_env else _plan_of_files(args, env)
    check_before_io(plan, env)
    return plan


def check_before_io(plan: RunPlan, env: Mapping[str, str]) -> None:
    """What the run needs from its environment, checked before it touches storage: the
    table's location under ``LAKEOP_ALLOWED_LOCATIONS`` and under the prefixes the operator
    put in the plan (symbolic links resolved here, where the volumes are: the same rule as
    the operator and its webhook), and a loadable SQL driver."""
    for allowed in (
        parse_allowed_locations(env.get(ALLOWED_LOCATIONS_ENV)),
        AllowedLocations.only(plan.namespace, plan.allowed_prefixes),  # the operator's
    ):
        refusal = check_location(plan.namespace, plan.table.location, allowed, real_location)
        if refusal:
            raise InvalidSpecError(f"Table {plan.namespace}/{plan.table.name}: {refusal}")
    if isinstance(plan.source, SqlSourceSpec):
        ref = plan.source.url_secret_ref
        where = (
            f"IngestionJob {plan.namespace}/{plan.job}: spec.source.sql.urlSecretRef: "
            f"Secret {plan.namespace}/{ref.name} key {ref.key}"
        )
        if not env.get(plan.sql_url_env):
            raise InvalidSpecError(
                f"{where}: not found (no such Secret or key among the -f files, and "
                f"{plan.sql_url_env} is not set)"
            )
        check_url(env[plan.sql_url_env], where)


def _plan_of_env(args: argparse.Namespace, env: dict[str, str]) -> RunPlan:
    text = env.get(args.plan_env)
    if not text:
        raise InvalidSpecError(f"--plan-env: environment variable {args.plan_env} is empty")
    return RunPlan.from_json(text)


def _plan_of_files(args: argparse.Namespace, env: dict[str, str]) -> RunPlan:
    if not args.filename:
        raise InvalidSpecError("give -f PATH (manifests) or --plan-env VAR")
    if args.run_id is not None and label_problem(args.run_id):
        raise InvalidSpecError(f"--run-id: {LABEL_RULE}, got {args.run_id!r}")
    docs = load_manifests(args.filename)
    job = _pick_job(docs, args.job)
    table = _one(docs, "Table", job.table_ref, job)
    version = current_schema_version(table, docs)
    _secrets_to_env(docs, table, job, env)
    run_id = args.run_id or default_run_id(job.name)
    root = args.default_location or env.get(DEFAULT_LOCATION_ENV) or str(Path("lake").resolve())
    return build_plan(table, version, job, run_id, root)


def default_run_id(job: str) -> str:
    """``<job>-<UTC time>-<random>``, a DNS-1123 label like every run id (the job name is
    cut and its dots become dashes to fit)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dt%H%M%S")
    stem = job.replace(".", "-")[:40].strip("-")
    return f"{stem}-{stamp}-{secrets.token_hex(3)}"


def load_manifests(paths: list[str]) -> list[dict[str, Any]]:
    """Every object (a mapping with a ``kind``) of the ``-f`` files and folders, read as
    ``lakeop validate`` reads them (:func:`lakeop.cli.manifests.find_files`)."""
    try:
        files = find_files(paths)
    except ManifestError as e:
        raise InvalidSpecError(f"-f {e}") from e
    docs: list[dict[str, Any]] = []
    for f in files:
        for doc in load_file(f):
            if isinstance(doc.body, dict) and isinstance(doc.body.get("kind"), str):
                docs.append(doc.body)
    return docs


def _schema_checked(body: dict[str, Any]) -> dict[str, Any]:
    """``body``, once it passes its CRD schema (the API server's check, as ``lakeop
    validate`` runs it); else the first problem as bad input."""
    doc = Document("-f", 0, body)
    problems = schema_problems(doc, load_validators(str(packaged_crds_dir())))
    if problems:
        fld, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidSpecError(f"{doc.label}: {fld}: {message}{more}")
    return body


def _meta(doc: Mapping[str, Any], field: str) -> Any:
    """``metadata.<field>`` of a document of any shape (None where it has none)."""
    meta = doc.get("metadata")
    return meta.get(field) if isinstance(meta, Mapping) else None


def _namespace(doc: Mapping[str, Any]) -> Any:
    return _meta(doc, "namespace") or "default"


def _pick_job(docs: list[dict[str, Any]], name: str | None) -> IngestionJobSpec:
    jobs = [d for d in docs if d.get("kind") == "IngestionJob"]
    if name:
        jobs = [d for d in jobs if _meta(d, "name") == name]
    if len(jobs) != 1:
        found = [_meta(d, "name") for d in docs if d.get("kind") == "IngestionJob"]
        raise InvalidSpecError(
            f"need exactly one IngestionJob{f' named {name}' if name else ''} "
            f"(use --job), found {found}"
        )
    return parse_ingestion_job(_schema_checked(jobs[0]))


def _one(docs: list[dict[str, Any]], kind: str, name: str, job: IngestionJobSpec) -> TableSpec:
    for d in docs:
        if d.get("kind") == kind and _meta(d, "name") == name and _namespace(d) == job.namespace:
            return parse_table(_schema_checked(d))
    raise InvalidSpecError(
        f"IngestionJob {job.namespace}/{job.name}: spec.tableRef: Table {name!r} not found "
        "among the -f files"
    )


def current_schema_version(table: TableSpec, docs: list[dict[str, Any]]) -> SchemaVersionSpec:
    """The highest version of the chain that passes the table's compatibility mode."""
    versions: list[SchemaVersionSpec] = []
    for d in docs:
        if d.get("kind") != "SchemaVersion":
            continue
        spec = d.get("spec")
        ref = spec.get("tableRef") if isinstance(spec, Mapping) else None
        if ref == table.name and _namespace(d) == table.namespace:
            versions.append(parse_schema_version(_schema_checked(d)))
    if not versions:
        raise InvalidSpecError(f"Table {table.namespace}/{table.name}: no SchemaVersion found")
    pairs = [(Peer(sv.name, sv.version, sv.fields), sv) for sv in versions]
    spec_of = {id(peer): sv for peer, sv in pairs}
    steps = walk_chain([peer for peer, _ in pairs], table.compatibility, table.format)
    for step in steps:  # the operator's rules: lakeop.core.schema.verdict.walk_chain
        sv = spec_of[id(step.peer)]
        if step.duplicate_of is not None:
            first = spec_of[id(step.duplicate_of)]
            raise InvalidSpecError(
                f"SchemaVersion {sv.namespace}/{sv.name}: spec.version: version {sv.version} "
                f"of Table {table.namespace}/{table.name} is already taken by SchemaVersion "
                f"{first.namespace}/{first.name}"
            )
        if not step.accepted:
            violations = step.result.violations if step.result else []
            reasons = "; ".join(
                [*(v.message for v in violations), *(p.message for p in step.format_problems)]
            )
            print(
                f"lakeop ingest: skipping SchemaVersion {sv.name} (v{sv.version}): "
                f"incompatible: {reasons}",
                file=sys.stderr,
            )
    current = current_step(steps)
    if current is None:
        raise IncompatibleSchemaError(f"Table {table.namespace}/{table.name}: no usable version")
    return spec_of[id(current.peer)]


def _secret_data(docs: list[dict[str, Any]], namespace: str, name: str) -> dict[str, str]:
    for d in docs:
        if d.get("kind") == "Secret" and _meta(d, "name") == name and _namespace(d) == namespace:
            return decode_secret_data(namespace, name, d.get("data"), d.get("stringData"))
    return {}


def _secrets_to_env(
    docs: list[dict[str, Any]], table: TableSpec, job: IngestionJobSpec, env: dict[str, str]
) -> None:
    """Fill the variables a Job pod would get from its Secrets (environment wins if set)."""

    def put(prefix: str, data: Mapping[str, str]) -> None:
        for k, v in data.items():
            env.setdefault(prefix + k, v)

    if table.storage_secret_ref:
        put(STORAGE_ENV_PREFIX, _secret_data(docs, table.namespace, table.storage_secret_ref))
    src = job.source
    if isinstance(src, SourceSpec) and src.secret_ref:
        put(SOURCE_ENV_PREFIX, _secret_data(docs, job.namespace, src.secret_ref))
    if isinstance(src, SqlSourceSpec):
        data = _secret_data(docs, job.namespace, src.url_secret_ref.name)
        if src.url_secret_ref.key in data:
            env.setdefault(SOURCE_SQL_URL_ENV, data[src.url_secret_ref.key])
