"""Writing conformed, keyed batches as staged Parquet files, and quarantining rejects.

Data goes through :class:`~lakeop.engine.partwriter.PartitionedWriter` (one open file per
partition, row groups accumulated across batches, bounded memory, statistics on) into the
run's staging directory, with names ending ``.parquet.staged`` under ``_lakeop/`` -
invisible to DuckDB's ``**/*.parquet`` globs and to pyarrow.dataset (which skips
``_``-prefixed directories) until the commit publishes them. The layout (which columns get
dictionary encoding, how many rows a row group buffers) is chosen from the first batch.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import queue
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from lakeop.engine.commitlog import REJECTED_DIR, STAGING_DIR
from lakeop.engine.commits import DataFile
from lakeop.engine.partwriter import PartitionedWriter, WriterConfig
from lakeop.errors import LakeopError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

# Rows each open partition may buffer before a row group is written: between
# ``min_rows_per_group`` and this, chosen so that all open partitions together stay within the
# buffer budget.
TARGET_ROWS_PER_GROUP = 131_072
# A column is dictionary-encoded when its distinct values are at most this share of a batch
# (high-cardinality dictionaries cost a hash per value and fall back to plain anyway).
DICTIONARY_MAX_RATIO = 0.2
STAGED_SUFFIX = ".staged"
# batches the reader thread may run ahead of the writer (0: read in the caller's thread)
READ_AHEAD = 2


@dataclass(frozen=True)
class WriteTuning:
    """The writer's knobs, each with its ``LAKEOP_*`` variable (read from the run's
    environment by :meth:`from_env`, when the run starts; never at import)."""

    #: rows per Parquet file before the next one starts (``LAKEOP_MAX_ROWS_PER_FILE``)
    max_rows_per_file: int = 8_000_000
    #: the fewest rows a row group buffers (``LAKEOP_MIN_ROWS_PER_GROUP``)
    min_rows_per_group: int = 8192
    #: memory all open partitions' buffers share (``LAKEOP_WRITE_BUFFER_BYTES``)
    buffer_budget_bytes: int = 96 << 20
    #: threads encoding row groups (``LAKEOP_WRITE_THREADS``)
    write_threads: int = 2
    #: batches the reader thread runs ahead (``LAKEOP_READ_AHEAD``; 0: no reader thread)
    read_ahead: int = READ_AHEAD

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WriteTuning:
        def get(name: str, default: int) -> int:
            raw = env.get(name)
            return int(raw) if raw else default

        return cls(
            max_rows_per_file=get("LAKEOP_MAX_ROWS_PER_FILE", cls.max_rows_per_file),
            min_rows_per_group=get("LAKEOP_MIN_ROWS_PER_GROUP", cls.min_rows_per_group),
            buffer_budget_bytes=get("LAKEOP_WRITE_BUFFER_BYTES", cls.buffer_budget_bytes),
            write_threads=get("LAKEOP_WRITE_THREADS", cls.write_threads),
            read_ahead=get("LAKEOP_READ_AHEAD", cls.read_ahead),
        )


DEFAULT_TUNING = WriteTuning()


T = TypeVar("T")


def write_staged(
    storage: Storage,
    run_id: str,
    *,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    keys: pa.Schema,
    compression: str,
    tag: str = "",
    staged: bool = True,
    file_schema: pa.Schema | None = None,
    tuning: WriteTuning = DEFAULT_TUNING,
) -> list[DataFile]:
    """Write every batch; return the files as they will be named once published.

    ``tag`` goes into the file names (``part-<run><tag>-<n>``): a share's files never collide
    with another share's, and a retried share overwrites its own names. ``staged`` False:
    write the files at their final names (a table format whose readers see only the files a
    commit names, such as Delta). ``file_schema``: the files' columns when the table format
    asks for other than the data columns (Iceberg: field ids, a range/list label column).
    """
    # reading, parsing, conforming and keying run in a reader thread a few batches ahead of
    # the split below; closed on the way out, so the thread never outlives the write
    with contextlib.closing(read_ahead(iter(batches), tuning.read_ahead)) as it:
        return _write(
            storage, run_id, it, schema, keys, compression, tag, tuning, staged, file_schema
        )


def _write(  # noqa: PLR0917
    storage: Storage,
    run_id: str,
    it: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    keys: pa.Schema,
    compression: str,
    tag: str,
    tuning: WriteTuning,
    staged: bool = True,
    file_schema: pa.Schema | None = None,
) -> list[DataFile]:
    first = next(it, None)
    if first is None:
        return []
    layout = plan_layout(first, keys, tuning)
    staging = f"{STAGING_DIR}/{run_id}"

    def file_name(partition: str, seq: int) -> str:
        name = f"part-{run_id}{tag}-{seq:05d}.parquet"
        return f"{partition}/{name}" if partition else name

    opened: list[str] = []  # in place (not staged): removed if the write fails

    def open_output(rel: str) -> pa.NativeFile:
        if not staged:
            opened.append(rel)
        return storage.open_output(f"{staging}/{rel}{STAGED_SUFFIX}" if staged else rel)

    config = WriterConfig(
        compression="none" if compression == "none" else compression,
        dictionary_columns=layout.dictionary_columns,
        rows_per_group=layout.min_rows_per_group,
        buffer_budget=tuning.buffer_budget_bytes,
        max_rows_per_file=tuning.max_rows_per_file,
        threads=tuning.write_threads,
    )
    writer = PartitionedWriter(
        open_output, file_name, schema, keys.names, config, file_schema=file_schema
    )
    gc.freeze()  # the run's long-lived objects: collections need not walk them again
    try:
        for batch in itertools.chain([first], it):
            writer.write(batch)
        written = writer.close()
    except BaseException:
        writer.abort()
        _remove_quietly(storage, opened)  # no commit names them
        raise
    finally:
        gc.unfreeze()
    return [DataFile(w.path, w.partition, w.rows, w.bytes) for w in written]


def _remove_quietly(storage: Storage, paths: list[str]) -> None:
    for path in paths:
        try:
            storage.delete(path)
        except (LakeopError, OSError):
            logger.warning("could not remove %s of a failed write (VACUUM removes it)", path)


@dataclass(frozen=True)
class Layout:
    dictionary_columns: list[str]
    min_rows_per_group: int


def plan_layout(
    sample: pa.RecordBatch, keys: pa.Schema, tuning: WriteTuning = DEFAULT_TUNING
) -> Layout:
    """Pick dictionary columns and the row-group buffer from the first batch."""
    n = max(sample.num_rows, 1)
    data_names = [name for name in sample.schema.names if name not in keys.names]
    dictionary = []
    for name in data_names:
        col = sample.column(name)
        if pa.types.is_nested(col.type):
            continue
        if pc.count_distinct(col).as_py() <= max(DICTIONARY_MAX_RATIO * n, 16):
            dictionary.append(name)
    if len(keys):
        key_table = pa.table([sample.column(k) for k in keys.names], names=keys.names)
        partitions = max(key_table.group_by(keys.names).aggregate([]).num_rows, 1)
    else:
        partitions = 1
    row_bytes = max(sample.nbytes / n, 1.0)
    budget_rows = int(tuning.buffer_budget_bytes / (partitions * row_bytes))
    rows = max(tuning.min_rows_per_group, min(TARGET_ROWS_PER_GROUP, budget_rows))
    return Layout(dictionary, rows)


class Quarantine:
    """One attempt's rejected records, with their reason, as JSON lines
    ``_rejected/<run>/rejected<tag>-<n>.jsonl``.

    ``tag`` is the attempt's (the one in its staged file names, ``-a<hex>`` or
    ``-s<i>-a<hex>``): processes with one run id (a zombie pod beside its retry, the shares
    of a scaled-out run) never write, overwrite or delete each other's records. The commit
    names the tags whose records are the run's, and publishing deletes the others
    (:func:`remove_rejected`).
    """

    FLUSH_ROWS = 10_000

    def __init__(self, storage: Storage, run_id: str, tag: str) -> None:
        self.storage = storage
        self.dir = rejected_dir(run_id)
        self.tag = tag
        self.pending: list[str] = []
        self.parts = 0
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self.pending.append(json.dumps(record, default=_jsonable, ensure_ascii=False))
        self.count += 1
        if len(self.pending) >= self.FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        body = ("\n".join(self.pending) + "\n").encode()
        path = f"{self.dir}/{rejected_prefix(self.tag)}{self.parts:05d}.jsonl"
        self.storage.write_bytes(path, body)
        self.parts += 1
        self.pending = []


def rejected_dir(run_id: str) -> str:
    return f"{REJECTED_DIR}/{run_id}"


def rejected_prefix(tag: str) -> str:
    """The start of an attempt's quarantine file names (``tag`` "": every attempt's)."""
    return f"rejected{tag}-"


def remove_rejected(
    storage: Storage, run_id: str, *, only: str | None = None, keep: Sequence[str] = ()
) -> None:
    """Delete quarantined records of ``run_id``: with ``only``, that attempt's; otherwise all
    but those of the attempts in ``keep`` (any file not named by one of them, including an
    older layout's subdirectories)."""
    folder = rejected_dir(run_id)
    if only is None and not keep:
        storage.delete_dir(folder)
        return
    kept = tuple(rejected_prefix(t) for t in keep)
    for entry in storage.list_files(folder):
        rel = entry.path[len(folder) + 1 :]
        mine = rel.startswith(rejected_prefix(only)) if only is not None else False
        if mine or (only is None and not rel.startswith(kept)):
            storage.delete(entry.path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def read_ahead(items: Iterator[T], depth: int = READ_AHEAD) -> Generator[T, None, None]:
    """Iterate ``items`` in a thread at most ``depth`` items ahead of the caller, so reading,
    parsing and conforming (Arrow releases the GIL) overlap with the caller's work. An
    exception from ``items`` is raised in the caller at the point it occurred in the
    sequence; when the caller stops early (closes this iterator), the thread stops after the
    item it is producing and closes ``items``."""
    if depth <= 0:
        yield from items
        return
    slots: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((_ITEM, item)):
                    return
            put((_END, None))
        except BaseException as e:  # handed to the caller, raised there
            put((_ERROR, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="lakeop-read", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()


_ITEM, _ERROR, _END = 0, 1, 2
