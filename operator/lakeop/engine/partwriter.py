"""A partitioned Parquet writer with bounded memory: one open file per partition.

Why not ``pyarrow.dataset.write_dataset``: its queue between source and writers has no
byte bound reachable from Python, so memory grows with input size whenever parsing outruns
encoding. Here every batch is split by partition key (one sort, one ``take`` per partition
run, so buffers own their rows and never pin whole batches), rows accumulate per partition
into row groups, and a small pool of encoder threads writes them. Three bounds keep the
resident set flat however large the input: bytes buffered across partitions (the largest
buffers are flushed early when over budget), encode tasks in flight (submitting blocks:
backpressure onto the reader), and open files (least recently used closed, a new file
rolled for later rows). Files roll at ``max_rows_per_file``.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakeop.core.lake.partitioning import partition_path

# A pending slice keeps its whole source batch alive; slices of batches older than the most
# recent PIN_BATCHES, or than the recent batches that together hold the writer's buffer
# budget, are copied out, so memory does not depend on how slowly a partition fills (while
# partitions that fill at an even pace are written without that copy).
PIN_BATCHES = 64


@dataclass
class WriterConfig:
    compression: str
    dictionary_columns: list[str]
    rows_per_group: int
    buffer_budget: int
    max_rows_per_file: int
    max_open_files: int = 256
    threads: int = 2


@dataclass
class WrittenFile:
    path: str  # relative to the writer's base
    partition: str
    rows: int
    bytes: int


@dataclass
class _Partition:
    path: str
    pending: list[pa.RecordBatch] = field(default_factory=list)  # slices of shared batches
    owned: list[pa.RecordBatch] = field(default_factory=list)  # compacted copies
    pending_rows: int = 0
    pending_bytes: int = 0
    oldest: int = 0  # sequence number of the batch the oldest pending slice belongs to
    lock: threading.Lock = field(default_factory=threading.Lock)
    writer: pq.ParquetWriter | None = None
    sink: pa.NativeFile | None = None
    file_path: str = ""
    file_rows: int = 0
    files: int = 0


class PartitionedWriter:
    def __init__(
        self,
        open_output: Callable[[str], pa.NativeFile],
        file_name: Callable[[str, int], str],
        schema: pa.Schema,
        keys: list[str],
        config: WriterConfig,
    ) -> None:
        self.open_output = open_output
        self.file_name = file_name  # (partition path, sequence) -> relative file path
        self.keys = keys
        self.schema = pa.schema([f for f in schema if f.name not in keys])
        self.config = config
        self.parts: dict[str, _Partition] = {}
        self.open_lru: OrderedDict[str, None] = OrderedDict()
        self.lru_lock = threading.Lock()
        self.buffered = 0
        self.pool = ThreadPoolExecutor(config.threads, thread_name_prefix="lakeop-write")
        self.in_flight = threading.BoundedSemaphore(config.threads * 2)
        self.futures: list[Future[None]] = []
        self.written: list[WrittenFile] = []
        self.written_lock = threading.Lock()
        self.sequence = 0
        self.batches = 0
        self.path_cache: dict[tuple[Any, ...], str] = {}
        self.recent: deque[tuple[int, int]] = deque()  # (batch number, bytes), newest last
        self.recent_bytes = 0

    # ---------------------------------------------------------------- splitting

    def write(self, batch: pa.RecordBatch) -> None:
        data = pa.RecordBatch.from_arrays(
            [batch.column(n) for n in self.schema.names], schema=self.schema
        )
        self.batches += 1
        # a slice's own nbytes walks its buffers; the batch's average row size is enough
        data_bytes = data.nbytes
        row_bytes = data_bytes / max(data.num_rows, 1)
        for path, part in self._split(batch, data):
            p = self.parts.get(path)
            if p is None:
                p = self.parts[path] = _Partition(path)
            if not p.pending:
                p.oldest = self.batches
            size = int(part.num_rows * row_bytes)
            p.pending.append(part)
            p.pending_rows += part.num_rows
            p.pending_bytes += size
            self.buffered += size
            if p.pending_rows >= self.config.rows_per_group:
                self._flush(p)
        self._compact(data_bytes)
        if self.buffered > self.config.buffer_budget:
            for p in sorted(self.parts.values(), key=lambda x: -x.pending_bytes):
                if self.buffered <= self.config.buffer_budget // 2:
                    break
                self._flush(p)
        self._reap()

    def _split(
        self, batch: pa.RecordBatch, data: pa.RecordBatch
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        if not self.keys:
            yield "", data
            return
        codes, groups = group_codes([batch.column(name) for name in self.keys])
        if groups <= 1:
            yield self._paths(batch, np.zeros(1, dtype=np.int64))[0], data
            return
        # a stable sort keeps rows in input order within a partition; on 16-bit codes numpy
        # sorts by radix (linear time)
        order = np.argsort(codes.astype(np.uint16) if groups <= 1 << 16 else codes, kind="stable")
        bounds = [0, *np.cumsum(np.bincount(codes, minlength=groups)).tolist()]
        grouped = data.take(pa.array(order))  # one gather; partitions are zero-copy slices
        paths = self._paths(batch, order[bounds[:-1]])
        for path, (lo, hi) in zip(paths, itertools.pairwise(bounds), strict=True):
            yield path, grouped.slice(lo, hi - lo)

    def _paths(self, batch: pa.RecordBatch, rows: np.ndarray[Any, Any]) -> list[str]:
        """The partition path of each of ``rows`` (one row per partition)."""
        index = pa.array(rows)
        columns = [batch.column(name).take(index).to_pylist() for name in self.keys]
        out = []
        for values in zip(*columns, strict=True):
            path = self.path_cache.get(values)
            if path is None:
                path = self.path_cache[values] = partition_path(self.keys, list(values))
            out.append(path)
        return out

    def _compact(self, batch_bytes: int) -> None:
        """Copy out slices that pin old batches (partitions that fill slowly); rows already
        copied out are never copied again."""
        self.recent.append((self.batches, batch_bytes))
        self.recent_bytes += batch_bytes
        while self.recent and (
            self.recent_bytes > self.config.buffer_budget or len(self.recent) > PIN_BATCHES
        ):
            self.recent_bytes -= self.recent.popleft()[1]
        horizon = self.recent[0][0] - 1 if self.recent else self.batches
        for p in self.parts.values():
            if p.pending and p.oldest <= horizon:
                table = pa.Table.from_batches(p.pending, schema=self.schema).combine_chunks()
                p.owned.extend(table.to_batches())
                p.pending = []

    # ---------------------------------------------------------------- writing

    def _flush(self, p: _Partition) -> None:
        if not p.pending and not p.owned:
            return
        batches = p.owned + p.pending
        p.owned, p.pending = [], []
        self.buffered -= p.pending_bytes
        p.pending_rows = p.pending_bytes = 0
        self.in_flight.acquire()  # backpressure: at most 2 tasks per encoder thread
        self.futures.append(self.pool.submit(self._encode, p, batches))

    def _encode(self, p: _Partition, batches: list[pa.RecordBatch]) -> None:
        try:
            table = pa.Table.from_batches(batches, schema=self.schema).combine_chunks()
            with p.lock:
                if p.writer is None:
                    self._open(p)
                assert p.writer is not None
                p.writer.write_table(table, row_group_size=max(table.num_rows, 1))
                p.file_rows += table.num_rows
                if p.file_rows >= self.config.max_rows_per_file:
                    self._close(p)
            self._touch(p)
        finally:
            self.in_flight.release()

    def _open(self, p: _Partition) -> None:
        p.file_path = self.file_name(p.path, self._next_sequence())
        p.sink = self.open_output(p.file_path)
        p.writer = pq.ParquetWriter(
            p.sink,
            self.schema,
            compression=self.config.compression,
            use_dictionary=self.config.dictionary_columns,
            write_statistics=True,
        )
        p.file_rows = 0
        p.files += 1

    def _next_sequence(self) -> int:
        with self.written_lock:
            self.sequence += 1
            return self.sequence - 1

    def _close(self, p: _Partition) -> None:
        if p.writer is None or p.sink is None:
            return
        p.writer.close()
        size = p.sink.tell()
        p.sink.close()
        with self.written_lock:
            self.written.append(WrittenFile(p.file_path, p.path, p.file_rows, int(size)))
        p.writer = p.sink = None

    def _touch(self, p: _Partition) -> None:
        victims = []
        with self.lru_lock:
            self.open_lru[p.path] = None
            self.open_lru.move_to_end(p.path)
            while len(self.open_lru) > self.config.max_open_files:
                victims.append(self.open_lru.popitem(last=False)[0])
        for path in victims:
            victim = self.parts[path]
            with victim.lock:
                self._close(victim)

    def _reap(self) -> None:
        done = [f for f in self.futures if f.done()]
        for f in done:
            f.result()  # re-raise encoder errors in the caller's thread
        self.futures = [f for f in self.futures if not f.done()]

    def close(self) -> list[WrittenFile]:
        """Flush everything, close every file, return what was written."""
        try:
            for p in list(self.parts.values()):
                self._flush(p)
            for f in self.futures:
                f.result()
            for p in self.parts.values():
                with p.lock:
                    self._close(p)
        finally:
            self.pool.shutdown(wait=True)
        return sorted(self.written, key=lambda w: w.path)

    def abort(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for p in self.parts.values():
            if p.sink is not None:
                p.sink.close()


_Codes = np.ndarray[Any, np.dtype[np.int64]]
# combined codes are made dense again whenever their range would pass this
_COMPACT_RANGE = 1 << 31
# a range this small (or up to a few times the row count) is made dense by counting
_DENSE_RANGE = 1 << 20


def group_codes(columns: list[pa.Array]) -> tuple[_Codes, int]:
    """Dense group numbers ``0..groups-1`` of the rows by the columns' values (nulls are a
    value), without sorting: a null-free integer column is its own code (minus its minimum),
    any other column is dictionary-encoded."""
    n = len(columns[0]) if columns else 0
    codes = np.zeros(n, dtype=np.int64)
    span = 1
    for col in columns:
        if not n:
            break
        if pa.types.is_integer(col.type) and col.type.bit_width <= 32 and not col.null_count:
            values = col.to_numpy(zero_copy_only=False)  # no copy: null-free, <= 32 bits
            lo, hi = int(values.min()), int(values.max())
            idx, width = values.astype(np.int64), hi - lo + 1
            if lo:
                idx -= lo
        else:
            enc = pc.dictionary_encode(col, null_encoding="encode")
            idx = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
            width = len(enc.dictionary)
        if span * width >= _COMPACT_RANGE:
            codes, span = _dense(codes, span)
        if span * width >= _COMPACT_RANGE:  # still wide: number the pairs directly
            pairs = np.unique(np.stack([codes, idx]), axis=1, return_inverse=True)
            codes, span = np.asarray(pairs[1], dtype=np.int64).reshape(-1), pairs[0].shape[1]
            continue
        if span == 1:
            codes = idx
        else:
            codes *= width
            codes += idx
        span *= width
    if not n:
        return codes, 0
    return _dense(codes, span)


def _dense(codes: _Codes, span: int) -> tuple[_Codes, int]:
    if span <= max(_DENSE_RANGE, 4 * len(codes)):
        present = np.bincount(codes, minlength=span) > 0
        if present.all():
            return codes, span
        remap = np.cumsum(present) - 1
        return remap[codes], int(remap[-1]) + 1 if span else 0
    distinct, inverse = np.unique(codes, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).reshape(-1), len(distinct)
