"""One ingestion run, from a :class:`~lakeop.core.runs.plan.RunPlan` to a commit and a summary.

The same function serves the Job pod (plan from an environment variable) and ``lakeop
ingest -f`` (plan built from manifests). Steps: find an earlier commit of this run id (a
retry: publish if needed and report it, never write twice); recover leftovers of other runs;
take the run's claim (:mod:`lakeop.engine.claims`: adopt it if the run has one, else claim the
source files or SQL intervals no commit and no other run's claim holds); stream, conform, key
and write the claimed input to staging; write the commit (the commit point); publish.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import pyarrow as pa

from lakeop.arrow import to_arrow_schema
from lakeop.core.lake.inputs import Claim, share_range
from lakeop.core.lake.partitioning import column_problem
from lakeop.core.runs.plan import RunPlan
from lakeop.core.spec.resources import SourceSpec, SqlSourceSpec
from lakeop.engine import claims, leases, shards
from lakeop.engine.commitlog import STAGING_DIR, Commit, DataFile, live_files
from lakeop.engine.formats import TableFormat, detect, open_format
from lakeop.engine.partition import Partitioner, make_partitioner
from lakeop.engine.publish import write_marker
from lakeop.engine.records import PROGRESS_LOG, Pipeline
from lakeop.engine.watermarks import encode_watermark
from lakeop.engine.write import Quarantine, WriteTuning, remove_rejected, write_staged
from lakeop.errors import (
    InvalidRecordsError,
    InvalidSpecError,
    LakeopError,
    TerminalError,
)
from lakeop.logging_setup import engine_output, stream_logger
from lakeop.sources.files import SourceFile
from lakeop.sources.readers import MalformedRecordError, RawBatch, ReadContext, read_file
from lakeop.sources.sql import SqlProgress, read_sql
from lakeop.storage import Storage, open_storage

logger = logging.getLogger(__name__)
SUMMARY_LIMIT = 4096


@dataclass
class RunResult:
    run_id: str
    table: str
    schema_version: int
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    bytes_written: int = 0
    files_written: int = 0
    partitions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    start_time: str = ""
    completion_time: str = ""
    error: dict[str, str] | None = None
    extra_columns: list[str] = field(default_factory=list)
    already_committed: bool = False
    shard: dict[str, Any] | None = None  # a share of a scaled-out run: index, count, committed

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "runId": self.run_id,
            "table": self.table,
            "schemaVersion": self.schema_version,
            "rowsRead": self.rows_read,
            "rowsWritten": self.rows_written,
            "rowsRejected": self.rows_rejected,
            "bytesWritten": self.bytes_written,
            "filesWritten": self.files_written,
            "partitions": list(self.partitions),
            "partitionsTruncated": False,
            "seconds": round(self.seconds, 3),
            "startTime": self.start_time,
            "completionTime": self.completion_time,
            "error": self.error,
            "ignoredColumns": list(self.extra_columns),
        }
        if self.shard is not None:
            out["shard"] = dict(self.shard)
        return out


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _run(  # noqa: PLR0915 - the steps of a run in order (docs/commit-protocol.md)
    plan: RunPlan,
    env: Mapping[str, str],
    heartbeat: leases.Heartbeat,
    clock: Callable[[], float],
    progress: logging.Logger | None,
) -> RunResult:
    t0 = clock()
    result = RunResult(plan.run_id, plan.table.name, plan.schema_version, start_time=iso(t0))
    schema = plan.schema
    target = to_arrow_schema(schema)
    storage = open_storage(plan.table.location, env, plan.storage_env_prefix)
    storage.table_format = plan.table.format
    log = open_format(storage, plan.table.format)
    share = shards.share_of(plan.run_id, plan.parallelism, env)

    previous = log.find(plan.run_id)
    if previous is not None:  # a retry of a run that already committed
        _roll_forward(log, previous)
        _fill(result, previous, share)
        result.already_committed = True
        return _finish(result, clock, t0)
    # this attempt's own file names: another process with the same run id (a zombie pod
    # overlapping its retry) writes beside it and never over it
    tag = f"{share.tag if share else ''}-a{secrets.token_hex(3)}"

    commits, claim = _prepare(plan, env, storage, log, share, int(t0 * 1000), heartbeat)
    partitioner = _partitioner(plan, target)
    quarantine = _quarantine(plan, storage, tag)

    opened = _open_source(plan, env, claim, schema.names(), target, share)
    if opened is None:
        heartbeat.compact(storage, plan.job, commits)
        winner = log.find(plan.run_id)
        if winner is not None:  # a process with this run id committed since this one started
            _fill(result, winner)
            result.already_committed = True
        else:
            logger.info("nothing new since the last commit")
        return _finish(result, clock, t0)
    raw, sources = opened

    pipeline = Pipeline(schema, target, partitioner, plan.on_invalid_records, quarantine, progress)
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
        _fill(result, files, share)
        result.already_committed = True
        return _finish(result, clock, t0)

    c = pipeline.counters
    if share is not None:
        manifest = _manifest(int(t0 * 1000), files, pipeline, sources, claim)
        manifest["quarantine"] = tag if quarantine is not None else None
        manifest["finishedMs"] = int(clock() * 1000)
        shards.write_manifest(storage, share, manifest)  # the share is complete
        _complete_share(plan, storage, log, claim, manifest, share, tag, result, heartbeat)
        return _finish(result, clock, t0)
    if not files and not c.rows_read and not _holds_rows(claim):
        _discard(storage, plan.run_id, None, tag)
        heartbeat.compact(storage, plan.job, commits)
        return _finish(result, clock, t0)
    commit = _commit(plan, commits, files, clock(), pipeline, sources, claim)
    commit.quarantine = [tag] if quarantine is not None else None
    heartbeat.check(plan.run_id)
    _check_not_released(storage, plan, claim, tag)
    _commit_once(storage, log, commit, out_schema, tag, result, heartbeat)
    return _finish(result, clock, t0)


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
            tuning=tuning,
        )
    except MalformedRecordError as e:
        _discard(storage, plan.run_id, share, tag)
        raise InvalidRecordsError(str(e)) from e
    except (LakeopError, OSError, ValueError):
        _discard(storage, plan.run_id, share, tag)
        winner = log.find(plan.run_id)
        if winner is None:
            raise
        _roll_forward(log, winner)
        return winner
    except BaseException:
        _discard(storage, plan.run_id, share, tag)
        raise


def _commit_once(  # noqa: PLR0917
    storage: Storage,
    log: TableFormat,
    commit: Commit,
    schema: pa.Schema,
    tag: str,
    result: RunResult,
    heartbeat: leases.Heartbeat,
) -> None:
    """The commit point, then publishing; ``result`` is the run's one commit, this
    attempt's or that of a process with the same run id that committed first."""
    winner, created = log.commit(commit, schema)
    if not created:  # this attempt's files are not part of the table: drop them
        _discard(storage, commit.run_id, None, tag)
        result.already_committed = True
    _roll_forward(log, winner)
    heartbeat.compact(storage, commit.job, log.commits())
    _fill(result, winner)


def _roll_forward(log: TableFormat, commit: Commit) -> None:
    """Publish a committed run. The run is committed whatever happens here: a failure is
    reported, and the run's retry or the next run on the table finishes the publishing."""
    try:
        log.publish(commit)
    except (LakeopError, OSError) as e:
        logger.warning(
            "run %s is committed (%s), but publishing its files was interrupted: %s; "
            "the next run on the table finishes it",
            commit.run_id,
            commit.name,
            e,
        )


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


def _partitioner(plan: RunPlan, target: pa.Schema) -> Partitioner:
    """The table's partitioner, once its column is known to suit the strategy."""
    spec = plan.table.partitioning
    column = plan.schema.get(spec.column or "")
    problem = column_problem(spec, column.type.name if column is not None else None)
    if problem is not None:
        raise InvalidSpecError(f"partitioning.column {spec.column!r}: {problem}")
    return make_partitioner(spec, target.field(column.name).type if column is not None else None)


def _commit(  # noqa: PLR0917
    plan: RunPlan,
    commits: list[Commit],
    files: list[DataFile],
    now: float,
    pipeline: Pipeline,
    sources: list[SourceFile],
    claim: Claim,
) -> Commit:
    touched = {f.partition for f in files}
    removed: list[str] = []
    if plan.mode == "overwrite-partitions":
        removed = sorted(p for p, f in live_files(commits).items() if f.partition in touched)
    c = pipeline.counters
    return Commit(
        run_id=plan.run_id,
        job=plan.job,
        committed_at=iso(now),
        committed_ms=int(now * 1000),
        schema_version=plan.schema_version,
        mode=plan.mode,
        files=files,
        removed=removed,
        sources=[s.to_dict() for s in sources],
        watermark=_watermark(claim),
        rows_read=c.rows_read,
        rows_rejected=c.rows_rejected,
        extra_columns=sorted(c.extra_columns),
    )


def _table_schema(plan: RunPlan) -> pa.Schema:
    """The written files' columns plus the partition columns (the table's full schema)."""
    target = to_arrow_schema(plan.schema)
    return pa.schema([*target, *_partitioner(plan, target).keys])


def _watermark(claim: Claim) -> Any:
    """The commit's watermark: the highest upper bound of the claimed intervals (encoded)."""
    if claim.sql is None or claim.sql.column is None:
        return None
    return encode_watermark(claim.sql.upper)


def _holds_rows(claim: Claim) -> bool:
    """Whether a run that read nothing must still commit: its claim holds incremental
    intervals, which only a commit (or a release) settles."""
    return claim.sql is not None and claim.sql.column is not None and not claim.empty


def _check_split(plan: RunPlan, share: shards.Share | None) -> None:
    source = plan.source
    if share is not None and isinstance(source, SqlSourceSpec) and not source.split_key:
        raise InvalidSpecError(
            f"run {plan.run_id}: spec.parallelism {plan.parallelism} needs "
            "spec.source.sql.splitColumn (or incrementalColumn) to split the query over the pods"
        )


def _check_not_released(storage: Storage, plan: RunPlan, claim: Claim, tag: str) -> None:
    """Refuse to commit inputs that were given up: a later run may be reading them."""
    if claims.is_released(storage, plan.job, claim):
        _discard(storage, plan.run_id, None, tag)
        raise TerminalError(
            f"run {plan.run_id}: its claim {claims.claim_path(plan.job, claim.seq)} was "
            "released (the run was given up), so it does not commit",
            reason="ClaimReleased",
        )


def _manifest(
    attempt: int,
    files: list[DataFile],
    pipeline: Pipeline,
    sources: list[SourceFile],
    claim: Claim,
) -> dict[str, Any]:
    c = pipeline.counters
    return {
        "basis": claims.basis(claim),
        "claim": claim.seq,
        "attempt": attempt,
        "files": [asdict(f) for f in files],
        "sources": [s.to_dict() for s in sources],
        "watermark": _watermark(claim),
        "rowsRead": c.rows_read,
        "rowsRejected": c.rows_rejected,
        "extraColumns": sorted(c.extra_columns),
        "totals": shards.totals_of(files, c.rows_read, c.rows_rejected),
        "partitions": sorted({f.partition for f in files}),
    }


def _complete_share(  # noqa: PLR0917
    plan: RunPlan,
    storage: Storage,
    log: TableFormat,
    claim: Claim,
    manifest: Mapping[str, Any],
    share: shards.Share,
    tag: str,
    result: RunResult,
    heartbeat: leases.Heartbeat,
) -> None:
    """After a share's manifest: commit the run if all shares are complete, and report. If
    the run committed without this attempt (another pod of the same share, overlapping it),
    its files are dropped and the commit's part of the share is reported."""
    winner = log.find(plan.run_id)
    if winner is not None:
        if not _attempt_committed(winner, tag):
            _discard(storage, plan.run_id, share, tag)
        _roll_forward(log, winner)
        _fill(result, winner, share)
        return
    committed = _commit_shares(plan, storage, log, claim, heartbeat)
    _fill_share(result, manifest, share, committed=committed)


def _attempt_committed(commit: Commit, tag: str) -> bool:
    """Whether the attempt tagged ``tag`` is part of ``commit`` (its files or its records)."""
    if tag in (commit.quarantine or ()):
        return True
    return any(f"part-{commit.run_id}{tag}-" in f.path for f in commit.files)


def _commit_shares(
    plan: RunPlan,
    storage: Storage,
    log: TableFormat,
    claim: Claim,
    heartbeat: leases.Heartbeat | None = None,
) -> bool:
    """Commit a scaled-out run if all its shares are complete; True if it is committed.
    ``heartbeat``: the share's hold on the claim's lease (None: it holds none)."""
    heartbeat = heartbeat or leases.Heartbeat(leases.lease_terms({}))
    manifests = shards.read_manifests(storage, plan.run_id)
    state = shards.readiness(manifests, plan.parallelism)
    if not state.ready:
        return False
    chosen = [manifests[r.manifest] for _, r in sorted(state.chosen.items())]
    anything = any(m.get("sources") or m.get("files") or m.get("rowsRead") for m in chosen)
    if not anything and not _holds_rows(claim):
        _discard(storage, plan.run_id, None, None)  # nothing new anywhere: no commit, as one pod
        heartbeat.compact(storage, plan.job, log.commits())
        return False
    commit = shards.build_commit(
        run_id=plan.run_id,
        job=plan.job,
        schema_version=plan.schema_version,
        mode=plan.mode,
        chosen=chosen,
        commits=log.commits(),
        iso=iso,
    )
    if log.find(plan.run_id) is None:
        heartbeat.check(plan.run_id)
        _check_not_released(storage, plan, claim, "")
    # the commit point: shares finishing together race for one exclusive create
    winner, _ = log.commit(commit, _table_schema(plan))
    _roll_forward(log, winner)
    heartbeat.compact(storage, plan.job, log.commits())
    return True


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


def _discard(storage: Storage, run_id: str, share: shards.Share | None, tag: str | None) -> None:
    """Remove a failed attempt's leftovers: its staged files and quarantined records (``tag``
    in their names: never another attempt's, which may be writing or may have committed;
    ``tag`` None or "": the whole run's), and the run's staging directory and marker once no
    other file is left in it (never for a share: the other shares write there)."""
    try:
        staging = f"{STAGING_DIR}/{run_id}"
        mine = f"part-{run_id}{tag}-" if tag is not None else ""
        left = False
        for entry in storage.list_files(staging):
            if entry.path.rsplit("/", 1)[-1].startswith(mine):
                storage.delete(entry.path)
            else:
                left = True
        remove_rejected(storage, run_id, only=tag or None)
        if share is None and not left:
            storage.delete_dir(staging)
            storage.delete(f"{STAGING_DIR}/{run_id}.started")
    except (LakeopError, OSError) as e:  # the next run's recovery removes it
        logger.warning("could not remove staged files of %s: %s", run_id, e)


def committed_summary(  # noqa: PLR0917
    location: str,
    storage_env: Mapping[str, str],
    prefix: str,
    run_id: str,
    table: str,
    table_format: str | None = None,
) -> dict[str, Any] | None:
    """The summary of run ``run_id`` read from its commit; None when the run has no commit.

    For the operator, when a run's pods ended without a summary that says so (a pod killed
    after the commit point, a failure while publishing): a committed run succeeded, with the
    commit's rows, whatever happened after its commit point."""
    storage = open_storage(location, storage_env, prefix)
    storage.table_format = table_format  # None: told from the table's files
    commit = detect(storage).find(run_id)
    if commit is None:
        return None
    result = RunResult(run_id=run_id, table=table, schema_version=commit.schema_version)
    _fill(result, commit)
    result.already_committed = True
    result.completion_time = commit.committed_at
    return result.summary()


def _fill(result: RunResult, commit: Commit, share: shards.Share | None = None) -> None:
    if share is not None:  # report the share's part, so that the operator's sum is the run's
        mine = [s for s in commit.shards if int(s.get("index", -1)) == share.index]
        tag = f"part-{share.run_id}{share.tag}-"
        parts = sorted({f.partition for f in commit.files if tag in f.path})
        manifest = {"totals": mine[0] if mine else {}, "partitions": parts}
        _fill_share(result, manifest, share, committed=True)
        return
    result.rows_read = commit.rows_read
    result.rows_written = commit.rows
    result.rows_rejected = commit.rows_rejected
    result.bytes_written = commit.bytes
    result.files_written = len(commit.files)
    result.partitions = sorted(commit.partition_counts())
    result.extra_columns = list(commit.extra_columns)


def _fill_share(
    result: RunResult, manifest: Mapping[str, Any], share: shards.Share, *, committed: bool
) -> None:
    totals = manifest.get("totals") or {}
    result.rows_read = int(totals.get("rowsRead", 0))
    result.rows_written = int(totals.get("rowsWritten", 0))
    result.rows_rejected = int(totals.get("rowsRejected", 0))
    result.bytes_written = int(totals.get("bytesWritten", 0))
    result.files_written = int(totals.get("filesWritten", 0))
    result.partitions = list(manifest.get("partitions") or [])
    result.extra_columns = list(manifest.get("extraColumns") or [])
    result.shard = {"index": share.index, "count": share.count, "committed": committed}


def _finish(result: RunResult, clock: Callable[[], float], t0: float) -> RunResult:
    t1 = clock()
    result.seconds = t1 - t0
    result.completion_time = iso(t1)
    return result


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
