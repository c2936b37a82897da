"""Compaction of a ``format: parquet`` table: small files rewritten, swapped in one commit.

The partitions and files come from :func:`lakeop.core.lake.maintenance.plan_compaction`. Each
partition's inputs are streamed batch by batch (never a whole file, never a whole partition
in memory) through one Parquet writer, projected to the current schema, and rolled to a new
file once the written bytes reach the target. The new files are staged like an ingestion
run's (``_lakeop/staging/<run>/...``, names no reader matches), then **one commit** adds them
and removes the inputs, so a reader of the commit log sees the table before or after, never
a mix. The commit is refused (:class:`~lakeop.errors.CommitConflictError`) if any input is no
longer live at the commit point (an overwrite replaced it meanwhile): compaction never brings
back a removed row. Ingestion commits in between are untouched: the commit removes only its
own inputs. Publishing then moves the new files into place and the replaced ones aside
(``_lakeop/retired/``), where readers pinned to an older snapshot still find them until
expiry (:mod:`lakeop.engine.expiry`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from lakeop.arrow import project_table, to_arrow_schema
from lakeop.core.lake.maintenance import LiveFile, PartitionRewrite, plan_compaction
from lakeop.core.schema.types import Schema
from lakeop.engine.commitlog import STAGING_DIR, CommitLog
from lakeop.engine.commits import Commit, DataFile, live_files
from lakeop.engine.compaction_reads import read_inputs
from lakeop.engine.notes import say as _say
from lakeop.engine.publish import marker_path, publish, recover, staged_path, write_marker
from lakeop.errors import CommitConflictError
from lakeop.storage import Storage

#: the ``job`` of a compaction commit (claims and incremental runs look only at their own job)
COMPACTION_JOB = "lakeop-compaction"
COMPACTION_MODE = "compact"
#: buffered rows are written out as a row group at this many in-memory bytes
ROW_GROUP_BYTES = 32 * 1024 * 1024
#: attempts when an overwrite removes inputs between planning and the commit point
ATTEMPTS = 3
#: partitions rewritten at the same time: Parquet decoding and encoding run outside the
#: GIL, so two writers keep two cores busy; memory is PARTITION_THREADS times one
#: partition's (its writer's buffer, ROW_GROUP_BYTES, and its reader's few files ahead)
PARTITION_THREADS = 2

_R = TypeVar("_R")


@dataclass(frozen=True)
class CompactionPolicy:
    target_file_size_bytes: int
    min_input_files: int


@dataclass
class CompactionResult:
    run_id: str
    partitions: list[str] = field(default_factory=list)
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    rows: int = 0
    seconds: float = 0.0
    seq: int = 0  # the compaction's commit (0: nothing to compact)
    attempts: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "partitions": len(self.partitions),
            "filesBefore": self.files_before,
            "filesAfter": self.files_after,
            "bytesBefore": self.bytes_before,
            "bytesAfter": self.bytes_after,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "commit": self.seq or None,
        }


def live_table_files(commits: list[Commit]) -> tuple[list[LiveFile], dict[str, str]]:
    """The live files with the schema version each was written under, and each file's
    committing run (to find it in staging while that run's publish is still moving it)."""
    version: dict[str, int] = {}
    run: dict[str, str] = {}
    for c in commits:
        for f in c.files:
            version[f.path] = c.schema_version
            run[f.path] = c.run_id
    live = live_files(commits)
    files = [LiveFile(p, f.partition, f.rows, f.bytes, version.get(p, 0)) for p, f in live.items()]
    return files, run


def compact(
    storage: Storage,
    schema: Schema,
    schema_version: int,
    policy: CompactionPolicy,
    run_id: str,
    *,
    compression: str = "snappy",
    clock: Callable[[], float] = time.time,
    progress: TextIO | None = None,
) -> CompactionResult:
    """Compact the table at ``storage``; retried from a fresh plan when an overwrite removed
    inputs meanwhile (``ATTEMPTS`` times, then the conflict is raised)."""
    t0 = clock()
    log = CommitLog(storage)
    recover(storage, log, run_id, int(t0 * 1000))
    for attempt in range(1, ATTEMPTS + 1):
        attempt_id = run_id if attempt == 1 else f"{run_id}-r{attempt}"
        try:
            result = _attempt(
                storage,
                log,
                schema,
                schema_version,
                policy,
                attempt_id,
                compression,
                clock,
                progress,
            )
        except CommitConflictError as e:
            if attempt == ATTEMPTS:
                raise
            _say(progress, f"lakeop compact: {e}; planning again")
            continue
        result.attempts = attempt
        result.seconds = clock() - t0
        return result
    raise AssertionError("unreachable")


def _attempt(  # noqa: PLR0917
    storage: Storage,
    log: CommitLog,
    schema: Schema,
    schema_version: int,
    policy: CompactionPolicy,
    run_id: str,
    compression: str,
    clock: Callable[[], float],
    progress: TextIO | None,
) -> CompactionResult:
    result = CompactionResult(run_id)
    previous = log.find(run_id)
    if previous is not None:  # a retry of a compaction that committed: report it
        publish(storage, previous)
        return _filled(result, previous)
    files, runs = live_table_files(log.commits())
    rewrites = plan_compaction(
        files, policy.target_file_size_bytes, policy.min_input_files, schema_version
    )
    if not rewrites:
        _say(progress, "lakeop compact: no partition needs compaction")
        return result
    write_marker(storage, run_id, int(clock() * 1000))
    written: list[DataFile] = []
    replaces: dict[str, list[str]] = {}
    try:
        outputs = each_partition(
            rewrites,
            lambda rw: _rewrite(storage, run_id, rw, schema, runs, policy, compression),
            progress,
        )
        for out, sources in (x for part in outputs for x in part):
            written.append(out)
            replaces[out.path] = sources
        now = clock()
        commit = Commit(
            run_id=run_id,
            job=COMPACTION_JOB,
            committed_at=_iso(now),
            committed_ms=int(now * 1000),
            schema_version=schema_version,
            mode=COMPACTION_MODE,
            files=written,
            removed=sorted(f.path for rw in rewrites for f in rw.inputs),
            replaces=replaces,
        )
        entry, _ = log.commit(commit, prepare=inputs_still_live)
    except BaseException:
        storage.delete_dir(f"{STAGING_DIR}/{run_id}")
        storage.delete(marker_path(run_id))
        raise
    publish(storage, entry)
    return _filled(result, entry, files)


def each_partition(
    rewrites: list[PartitionRewrite],
    work: Callable[[PartitionRewrite], _R],
    progress: TextIO | None,
) -> list[_R]:
    """``work(rw)`` for each partition, ``PARTITION_THREADS`` at a time (each with its
    reader threads and one writer), the results in plan order. The progress line of the
    first partition is printed first."""
    first = threading.Event()

    def one(i: int, rw: PartitionRewrite) -> _R:
        if i > 1:
            first.wait()
        _say(
            progress,
            f"lakeop compact: [{i}/{len(rewrites)}] {rw.partition or '(unpartitioned)'}: "
            f"{len(rw.inputs)} files, {rw.bytes} bytes",
        )
        first.set()
        return work(rw)

    with ThreadPoolExecutor(PARTITION_THREADS) as pool:
        futures = [pool.submit(one, i, rw) for i, rw in enumerate(rewrites, 1)]
        try:
            return [f.result() for f in futures]
        except BaseException:
            first.set()
            for f in futures:
                f.cancel()
            raise


def inputs_still_live(commits: list[Commit], entry: Commit) -> Commit:
    """The compaction's commit check: every input still live just below its number."""
    live = live_files(commits)
    gone = [p for p in entry.removed if p not in live]
    if gone:
        raise CommitConflictError(
            f"{len(gone)} input file(s) of compaction {entry.run_id} were removed since it "
            f"started (an overwrite), e.g. {gone[0]}"
        )
    return entry


def _filled(
    result: CompactionResult, c: Commit, before: list[LiveFile] | None = None
) -> CompactionResult:
    sizes = {f.path: f.bytes for f in before or []}
    result.partitions = sorted({f.partition for f in c.files})
    result.files_before = len(c.removed)
    result.files_after = len(c.files)
    result.bytes_before = sum(sizes.get(p, 0) for p in c.removed)
    result.bytes_after = c.bytes
    result.rows = c.rows
    result.seq = c.seq
    return result


def _rewrite(  # noqa: PLR0917
    storage: Storage,
    run_id: str,
    rw: PartitionRewrite,
    schema: Schema,
    runs: dict[str, str],
    policy: CompactionPolicy,
    compression: str,
) -> list[tuple[DataFile, list[str]]]:
    """Stream one partition's inputs into files of about the target size (staged)."""
    keys = [kv.split("=", 1)[0] for kv in rw.partition.split("/") if "=" in kv]
    target = to_arrow_schema(schema)
    out = _Roller(storage, run_id, rw.partition, policy.target_file_size_bytes, compression)
    try:
        for f, tables in read_inputs(storage, rw.inputs, runs):
            for t in tables:
                if t.schema.equals(target):  # written under the current schema: as it is
                    out.write(t, f.path)
                    continue
                projected = project_table(t, schema)
                extra = [t.schema.field(k) for k in keys if k in t.schema.names]
                for k in extra:
                    projected = projected.append_column(k, t.column(k.name))
                out.write(projected.cast(pa.schema([*target, *extra])), f.path)
        return out.close()
    except BaseException:
        out.abort()
        raise


@dataclass
class _Roller:
    """One partition's output: row groups buffered up to ``ROW_GROUP_BYTES``, files rolled
    once they reach the target size."""

    storage: Storage
    run_id: str
    partition: str
    target_bytes: int
    compression: str
    done: list[tuple[DataFile, list[str]]] = field(default_factory=list)
    buffer: list[pa.Table] = field(default_factory=list)
    buffered: int = 0
    sources: list[str] = field(default_factory=list)
    rows: int = 0
    writer: pq.ParquetWriter | None = None
    sink: Any = None
    path: str = ""
    #: False: files written at their final names (an Iceberg table: unreferenced until its
    #: snapshot names them), else staged like a run's
    staged: bool = True

    def write(self, table: pa.Table, source: str) -> None:
        if not self.sources or self.sources[-1] != source:
            self.sources.append(source)
        self.buffer.append(table)
        self.buffered += table.nbytes
        if self.buffered >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        table = pa.concat_tables(self.buffer).combine_chunks()  # whole pages, not tiny ones
        self.buffer, self.buffered = [], 0
        if self.writer is None:
            n = len(self.done)
            name = f"part-{self.run_id}-c{n:05d}.parquet"
            self.path = f"{self.partition}/{name}" if self.partition else name
            where = staged_path(self.run_id, self.path) if self.staged else self.path
            full = self.storage.full(where)
            if self.storage.is_local:
                self.storage.fs.create_dir(full.rsplit("/", 1)[0], recursive=True)
            self.sink = self.storage.fs.open_output_stream(full, compression=None)
            codec = "none" if self.compression == "none" else self.compression
            self.writer = pq.ParquetWriter(self.sink, table.schema, compression=codec)
        self.writer.write_table(table)
        self.rows += table.num_rows
        if self.sink.tell() >= self.target_bytes:
            self._close_file()

    def _close_file(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        size = int(self.sink.tell())
        self.sink.close()
        self.done.append((DataFile(self.path, self.partition, self.rows, size), self.sources))
        # the source being read continues in the next file
        self.sources = self.sources[-1:]
        self.writer, self.sink, self.rows = None, None, 0

    def close(self) -> list[tuple[DataFile, list[str]]]:
        self._flush()
        self._close_file()
        return [(f, sorted(set(s))) for f, s in self.done]

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
                self.sink.close()
            except OSError:
                pass
            self.writer = None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


__all__ = [
    "COMPACTION_JOB",
    "CompactionPolicy",
    "CompactionResult",
    "compact",
    "inputs_still_live",
    "live_table_files",
]
