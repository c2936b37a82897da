"""One ingestion run, from a :class:`~lakeop.core.plan.RunPlan` to a commit and a summary.

The same function serves the Job pod (plan from an environment variable) and ``lakeop
ingest -f`` (plan built from manifests). Steps: find an earlier commit of this run id (a
retry: publish if needed and report it, never write twice); recover leftovers of other runs;
pick the source files (or SQL rows) no earlier commit of this job took; stream, conform,
key and write them to staging; write the commit (the commit point); publish.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import pyarrow as pa

from lakeop.arrow import to_arrow_schema
from lakeop.core.plan import RunPlan
from lakeop.core.spec import SourceSpec, SqlSourceSpec
from lakeop.engine import shards
from lakeop.engine.commitlog import (
    REJECTED_DIR,
    STAGING_DIR,
    Commit,
    CommitLog,
    DataFile,
    last_watermark,
    live_files,
    taken_sources,
)
from lakeop.engine.partition import make_partitioner
from lakeop.engine.publish import publish, recover, write_marker
from lakeop.engine.records import Pipeline
from lakeop.engine.write import Quarantine, write_staged
from lakeop.errors import InvalidRecordsError, SourceNotFoundError, StorageUnavailableError
from lakeop.sources.files import SourceFile, list_source_files
from lakeop.sources.readers import MalformedRecordError, RawBatch, ReadContext, read_file
from lakeop.sources.sql import SqlProgress, decode_watermark, encode_watermark, read_sql
from lakeop.storage import open_storage, retrying

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
    progress: TextIO | None = sys.stderr,
) -> RunResult:
    t0 = clock()
    result = RunResult(plan.run_id, plan.table.name, plan.schema_version, start_time=iso(t0))
    schema = plan.schema
    target = to_arrow_schema(schema)
    storage = open_storage(plan.table.location, env, plan.storage_env_prefix)
    log = CommitLog(storage)
    share = shards.share_of(plan.run_id, plan.parallelism, env)

    previous = log.find(plan.run_id)
    if previous is not None:  # a retry of a run that already committed
        publish(storage, previous)
        _fill(result, previous, share)
        result.already_committed = True
        return _finish(result, clock, t0)

    recover(storage, log, plan.run_id, int(t0 * 1000), shared=share is not None)
    if share is not None:
        shards.reset(storage, share)
    commits = log.commits()
    column = schema.get(plan.table.partitioning.column or "")
    partitioner = make_partitioner(
        plan.table.partitioning,
        target.field(column.name).type if column is not None else None,
    )
    quarantine = (
        Quarantine(storage, plan.run_id, share.quarantine_dir if share else "")
        if plan.on_invalid_records == "quarantine"
        else None
    )
    if quarantine is not None:
        quarantine.reset()

    opened = _open_source(plan, env, commits, schema.names(), target, share)
    if opened is None:
        print("lakeop: no new source files since the last commit", file=sys.stderr)
        return _finish(result, clock, t0)
    raw, sources, sql_progress, basis = opened

    pipeline = Pipeline(schema, target, partitioner, plan.on_invalid_records, quarantine, progress)
    out_schema = pa.schema([*target, *partitioner.keys])
    write_marker(storage, plan.run_id, int(t0 * 1000))
    try:
        files = write_staged(
            storage,
            plan.run_id,
            batches=pipeline.run(raw),
            schema=out_schema,
            keys=partitioner.keys,
            compression=plan.table.compression,
            tag=share.tag if share else "",
        )
    except MalformedRecordError as e:
        _discard(storage, plan.run_id, share)
        raise InvalidRecordsError(str(e)) from e
    except BaseException:
        _discard(storage, plan.run_id, share)
        raise

    c = pipeline.counters
    if share is not None:
        manifest = _manifest(basis, int(t0 * 1000), files, pipeline, sources, sql_progress)
        manifest["finishedMs"] = int(clock() * 1000)
        shards.write_manifest(storage, share, manifest)  # the share is complete
        _fill_share(result, manifest, share, committed=_commit_shares(plan, storage, log))
        return _finish(result, clock, t0)
    if not files and not c.rows_read and isinstance(plan.source, SqlSourceSpec):
        _discard(storage, plan.run_id, None)
        return _finish(result, clock, t0)
    commit = _commit(plan, commits, files, clock(), pipeline, sources, sql_progress)
    log.write(commit)  # the commit point
    publish(storage, commit)
    _fill(result, commit)
    return _finish(result, clock, t0)


def _commit(  # noqa: PLR0917
    plan: RunPlan,
    commits: list[Commit],
    files: list[DataFile],
    now: float,
    pipeline: Pipeline,
    sources: list[SourceFile],
    sql_progress: SqlProgress,
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
        watermark=encode_watermark(sql_progress.watermark),
        rows_read=c.rows_read,
        rows_rejected=c.rows_rejected,
        extra_columns=sorted(c.extra_columns),
    )


def _manifest(  # noqa: PLR0917
    basis: str,
    attempt: int,
    files: list[DataFile],
    pipeline: Pipeline,
    sources: list[SourceFile],
    sql_progress: SqlProgress,
) -> dict[str, Any]:
    c = pipeline.counters
    return {
        "basis": basis,
        "attempt": attempt,
        "files": [asdict(f) for f in files],
        "sources": [s.to_dict() for s in sources],
        "watermark": encode_watermark(sql_progress.watermark),
        "rowsRead": c.rows_read,
        "rowsRejected": c.rows_rejected,
        "extraColumns": sorted(c.extra_columns),
        "totals": shards.totals_of(files, c.rows_read, c.rows_rejected),
        "partitions": sorted({f.partition for f in files}),
    }


def _commit_shares(plan: RunPlan, storage: Any, log: CommitLog) -> bool:
    """Commit a scaled-out run if all its shares are complete; True if it is committed."""
    manifests = shards.read_manifests(storage, plan.run_id)
    state = shards.readiness(manifests, plan.parallelism)
    if not state.ready:
        return False
    chosen = [manifests[r.manifest] for _, r in sorted(state.chosen.items())]
    if not any(m.get("sources") or m.get("files") or m.get("rowsRead") for m in chosen):
        _discard(storage, plan.run_id, None)  # nothing new anywhere: no commit, as one pod
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
    if log.find(plan.run_id) is None:  # a pod finishing at the same moment writes the same
        log.write(commit)  # the commit point
    publish(storage, commit)
    return True


def _open_source(  # noqa: PLR0917
    plan: RunPlan,
    env: Mapping[str, str],
    commits: list[Commit],
    columns: list[str],
    target: pa.Schema,
    share: shards.Share | None = None,
) -> tuple[Iterator[RawBatch], list[SourceFile], SqlProgress, str] | None:
    """The raw batch stream of what no earlier commit of this job took (None: nothing new),
    the files it reads and the basis a share was cut from."""
    progress = SqlProgress()
    if isinstance(plan.source, SqlSourceSpec):
        if share is not None and share.index != 0:
            return iter(()), [], progress, shards.SQL_BASIS  # not split yet: share 0 reads all
        url = env.get(plan.sql_url_env)
        if not url:
            ref = plan.source.url_secret_ref
            raise SourceNotFoundError(
                f"sql source: environment variable {plan.sql_url_env} (the URL from secret "
                f"{ref.name}/{ref.key}) is not set"
            )
        raw = read_sql(
            url,
            plan.source.query,
            incremental_column=plan.source.incremental_column,
            watermark=decode_watermark(last_watermark(commits, plan.job)),
            batch_rows=plan.batch_size,
            columns=tuple(columns),
            progress=progress,
        )
        return raw, [], progress, shards.SQL_BASIS
    source = plan.source
    files = retrying(lambda: list_source_files(source.uri, env, plan.source_env_prefix))
    taken = taken_sources(commits, plan.job)
    new = [f for f in files if f.identity not in taken]
    if not new and share is None:
        return None  # (a share with nothing to read still reports, so the run can commit)
    basis = ""
    if share is not None:
        new, basis = shards.select_files(new, share)
    return _read_files(source, new, plan, env, columns, target), new, progress, basis


def _discard(storage: Any, run_id: str, share: shards.Share | None) -> None:
    """Remove a failed run's leftovers: staged files, marker, quarantined records (of a
    share: only its own)."""
    try:
        if share is not None:
            shards.reset(storage, share)
            return
        retrying(lambda: storage.delete_dir(f"{STAGING_DIR}/{run_id}"))
        retrying(lambda: storage.delete(f"{STAGING_DIR}/{run_id}.started"))
        retrying(lambda: storage.delete_dir(f"{REJECTED_DIR}/{run_id}"))
    except StorageUnavailableError as e:  # the next run's recovery removes it
        print(f"lakeop: could not remove staged files of {run_id}: {e}", file=sys.stderr)


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
