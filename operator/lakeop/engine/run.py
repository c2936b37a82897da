"""One ingestion run, from a :class:`~lakeop.core.runs.plan.RunPlan` to a commit and a summary.

The same function serves the Job pod (plan from an environment variable) and ``lakeop
ingest -f`` (plan built from manifests). Steps: find an earlier commit of this run id (a
retry: publish if needed and report it, never write twice); recover leftovers of other runs;
take the run's claim (:mod:`lakeop.engine.claims`: adopt it if the run has one, else claim the
source files or SQL intervals no commit and no other run's claim holds); stream, conform, key
and write the claimed input to staging; write the commit (the commit point); publish.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TextIO

import pyarrow as pa

from lakeop.arrow import to_arrow_schema
from lakeop.core.lake.inputs import Claim, share_range
from lakeop.core.runs.plan import RunPlan
from lakeop.core.spec.sources import SourceSpec, SqlSourceSpec
from lakeop.core.timestamps import format_epoch
from lakeop.engine import claims, leases, shards
from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.formats import TableFormat, open_format, set_target
from lakeop.engine.partition import Partitioner
from lakeop.engine.publish import write_marker
from lakeop.engine.records import PROGRESS_LOG, Pipeline
from lakeop.engine.run_commit import (
    check_not_released,
    commit_once,
    complete_share,
    discard,
    holds_rows,
    new_commit,
    roll_forward,
    share_manifest,
    table_partitioner,
)
from lakeop.engine.run_result import RunResult, fill, finish
from lakeop.engine.write import Quarantine, WriteTuning, write_staged
from lakeop.errors import (
    InvalidRecordsError,
    InvalidSpecError,
    LakeopError,
)
from lakeop.logging_setup import engine_output, stream_logger
from lakeop.sources.files import SourceFile
from lakeop.sources.readers import MalformedRecordError, RawBatch, ReadContext, read_file
from lakeop.sources.sql import SqlProgress, read_sql
from lakeop.storage import Storage, open_storage

logger = logging.getLogger(__name__)


def run_plan(
    plan: RunPlan,
    env: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
    progress: logging.Logger | TextIO | None = PROGRESS_LOG,
) -> RunResult:
    """Run ``plan``; while it holds a claim, a heartbeat renews the claim's lease.

    Progress lines go to ``progress``: a logger (by default ``lakeop.engine.progress``), a
    text stream of the caller's, or nowhere (None). The run's messages are logged under
    ``lakeop.engine``; unless logging was configured they show on stderr
    (:func:`lakeop.logging_setup.engine_output`).
    """
    default = plan.claim_lease_seconds or leases.POD_LEASE_S
    heartbeat = leases.Heartbeat(leases.lease_terms(env, default))
    if progress is not None and not isinstance(progress, logging.Logger):
        progress = stream_logger(PROGRESS_LOG.name, progress)
    try:
        with engine_output():
            return _run(plan, env, heartbeat, clock, progress)
    finally:
        heartbeat.stop()


def _run(
    plan: RunPlan,
    env: Mapping[str, str],
    heartbeat: leases.Heartbeat,
    clock: Callable[[], float],
    progress: logging.Logger | None,
) -> RunResult:
    t0 = clock()
    result = RunResult(
        plan.run_id, plan.table.name, plan.schema_version, start_time=format_epoch(t0)
    )
    schema = plan.schema
    target = to_arrow_schema(schema)
    storage, log = _open_table(plan, env)
    share = shards.share_of(plan.run_id, plan.parallelism, env)

    previous = log.find(plan.run_id)
    if previous is not None:  # a retry of a run that already committed
        roll_forward(log, previous)
        fill(result, previous, share)
        result.already_committed = True
        return finish(result, clock, t0)
    # this attempt's own file names: another process with the same run id (a zombie pod
    # overlapping its retry) writes beside it and never over it
    tag = f"{share.tag if share else ''}-a{secrets.token_hex(3)}"

    commits, claim = _prepare(plan, env, storage, log, share, int(t0 * 1000), heartbeat)
    partitioner = table_partitioner(plan, target)
    quarantine = _quarantine(plan, storage, tag)

    opened = _open_source(plan, env, claim, schema.names(), target, share)
    if opened is None:
        heartbeat.compact(storage, plan.job, commits)
        winner = log.find(plan.run_id)
        if winner is not None:  # a process with this run id committed since this one started
            fill(result, winner)
            result.already_committed = True
        else:
            logger.info("nothing new since the last commit")
        return finish(result, clock, t0)
    raw, sources = opened

    pipeline = Pipeline(schema, target, partitioner, plan.on_invalid_records, quarantine, progress)
    pipeline.sizes = {f.uri: f.size for f in sources}
    out_schema = pa.schema([*target, *partitioner.keys])
    log.ensure(out_schema, partitioner.names)
    write_marker(storage, plan.run_id, int(t0 * 1000))
    tuning = WriteTuning.from_env(env)
    files = _write(
        plan, storage, log, pipeline.run(raw), out_schema, partitioner, share, tag, tuning
    )
    if isinstance(files, Commit):
        # another process with this run id committed and published while this one wrote
        # (its files went with the run's staging directory): the run's result is that commit
        fill(result, files, share)
        result.already_committed = True
        return finish(result, clock, t0)

    c = pipeline.counters
    if share is not None:
        manifest = share_manifest(int(t0 * 1000), files, pipeline, sources, claim)
        manifest["quarantine"] = tag if quarantine is not None else None
        manifest["finishedMs"] = int(clock() * 1000)
        shards.write_manifest(storage, share, manifest)  # the share is complete
        complete_share(plan, storage, log, claim, manifest, share, tag, result, heartbeat)
        return finish(result, clock, t0)
    if not files and not c.rows_read and not holds_rows(claim):
        discard(storage, plan.run_id, None, tag)
        heartbeat.compact(storage, plan.job, commits)
        return finish(result, clock, t0)
    commit = new_commit(plan, commits, files, clock(), pipeline, sources, claim)
    commit.quarantine = [tag] if quarantine is not None else None
    heartbeat.check(plan.run_id)
    check_not_released(storage, plan, claim, tag)
    commit_once(storage, log, commit, out_schema, tag, result, heartbeat)
    return finish(result, clock, t0)


def _open_table(plan: RunPlan, env: Mapping[str, str]) -> tuple[Storage, TableFormat]:
    """The table's storage and its format (told what the format needs from the plan)."""
    storage = open_storage(plan.table.location, env, plan.storage_env_prefix)
    set_target(storage, plan.table, env)
    return storage, open_format(storage, plan.table.format)


def _write(  # noqa: PLR0917
    plan: RunPlan,
    storage: Storage,
    log: TableFormat,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    partitioner: Partitioner,
    share: shards.Share | None,
    tag: str,
    tuning: WriteTuning,
) -> list[DataFile] | Commit:
    """Write the run's staged files; on failure drop this attempt's files and raise, unless
    the run committed meanwhile (a racing process with the same run id): then that commit."""
    try:
        return write_staged(
            storage,
            plan.run_id,
            batches=batches,
            schema=schema,
            keys=partitioner.keys,
            compression=plan.table.compression,
            tag=tag,
            staged=log.staged,
            file_schema=log.file_schema(schema),
            tuning=tuning,
        )
    except MalformedRecordError as e:
        discard(storage, plan.run_id, share, tag)
        raise InvalidRecordsError(str(e)) from e
    except (LakeopError, OSError, ValueError):
        discard(storage, plan.run_id, share, tag)
        winner = log.find(plan.run_id)
        if winner is None:
            raise
        roll_forward(log, winner)
        return winner
    except BaseException:
        discard(storage, plan.run_id, share, tag)
        raise


def _quarantine(plan: RunPlan, storage: Storage, tag: str) -> Quarantine | None:
    """Where this attempt's rejected records go, if the policy keeps them. An earlier
    attempt's records stay until the run's commit is published (it names the attempt whose
    records count; another attempt may still be alive and writing, and may win)."""
    if plan.on_invalid_records != "quarantine":
        return None
    return Quarantine(storage, plan.run_id, tag)


def _prepare(  # noqa: PLR0917
    plan: RunPlan,
    env: Mapping[str, str],
    storage: Storage,
    log: TableFormat,
    share: shards.Share | None,
    now_ms: int,
    heartbeat: leases.Heartbeat,
) -> tuple[list[Commit], Claim]:
    """Recover leftovers, reset this share's earlier attempt, read the commits and take the
    run's claim (adopted, or created from the free inputs), then keep its lease alive."""
    _check_split(plan, share)
    log.recover(plan.run_id, now_ms)
    if share is not None:
        shards.reset(storage, share)
    commits = log.commits()
    claim = claims.take(
        storage, plan, env, commits, split=share is not None, now_ms=now_ms, terms=heartbeat.terms
    )
    heartbeat.hold(storage, plan.job, claim)
    return commits, claim


def _check_split(plan: RunPlan, share: shards.Share | None) -> None:
    source = plan.source
    if share is not None and isinstance(source, SqlSourceSpec) and not source.split_key:
        raise InvalidSpecError(
            f"run {plan.run_id}: spec.parallelism {plan.parallelism} needs "
            "spec.source.sql.splitColumn (or incrementalColumn) to split the query over the pods"
        )


def _open_source(  # noqa: PLR0917
    plan: RunPlan,
    env: Mapping[str, str],
    claim: Claim,
    columns: list[str],
    target: pa.Schema,
    share: shards.Share | None = None,
) -> tuple[Iterator[RawBatch], list[SourceFile]] | None:
    """The raw batch stream of the claimed input (of a share: its part of it) and the files
    it reads; None: the claim is empty and the run is one pod (nothing to do). A share with
    nothing to read still reports, so the run can commit."""
    if claim.empty and share is None:
        return None
    if isinstance(plan.source, SqlSourceSpec):
        return _open_sql(plan, plan.source, env, claim, columns, share), []
    files = [SourceFile(uri, size, version) for uri, size, version in claim.files]
    if share is not None:
        files = shards.select_files(files, share)
    return _read_files(plan.source, files, plan, env, columns, target), files


def _open_sql(  # noqa: PLR0917
    plan: RunPlan,
    source: SqlSourceSpec,
    env: Mapping[str, str],
    claim: Claim,
    columns: list[str],
    share: shards.Share | None,
) -> Iterator[RawBatch]:
    """The claimed rows: the claim's intervals (incremental) or the whole query, and for a
    share only its key range of the claim's split bounds."""
    sql = claim.sql
    if sql is None or not sql.intervals:
        return iter(())
    key_range = None
    if share is not None:
        mine = share_range(sql, share.index, share.count)
        if mine is None or sql.split_column is None:
            return iter(())
        key_range = (sql.split_column, mine)
    return read_sql(
        claims.sql_url(plan, source, env),
        source.query,
        incremental_column=source.incremental_column,
        intervals=sql.intervals if sql.column else None,
        key_range=key_range,
        batch_rows=plan.batch_size,
        columns=tuple(columns),
        progress=SqlProgress(),
    )


def fast_types(target: pa.Schema, fmt: str) -> dict[str, pa.DataType]:
    """Types Arrow's parsers can produce directly. CSV timestamps parse naive (conform makes
    them UTC); JSON timestamps arrive as text, cast vectorised with offsets honoured."""
    out: dict[str, pa.DataType] = {}
    for f in target:
        t = f.type
        if pa.types.is_timestamp(t):
            out[f.name] = pa.timestamp("us") if fmt == "csv" else pa.string()
        elif pa.types.is_map(t) or pa.types.is_list(t) or pa.types.is_struct(t):
            out[f.name] = pa.string()
        else:
            out[f.name] = t
    return out


def _read_files(  # noqa: PLR0917
    source: SourceSpec,
    files: list[SourceFile],
    plan: RunPlan,
    env: Mapping[str, str],
    columns: list[str],
    target: pa.Schema,
) -> Iterator[RawBatch]:
    ctx = ReadContext(
        fast_types=fast_types(target, source.format),
        columns=tuple(columns),
        policy=plan.on_invalid_records,
        batch_rows=plan.batch_size,
        options=source.options,
        env=env,
        env_prefix=plan.source_env_prefix,
    )
    for f in files:
        yield from read_file(f, source.format, ctx)
