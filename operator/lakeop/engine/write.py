"""Writing conformed, keyed batches as staged Parquet files, and quarantining rejects.

Data goes through ``pyarrow.dataset.write_dataset``: Arrow's multithreaded writer keeps one
open file per partition, accumulates rows across batches into row groups
(``min_rows_per_group``), rolls files at ``max_rows_per_file`` and writes statistics. It
writes into the run's staging directory with names ending ``.parquet.staged`` under
``_lakeop/`` - invisible to DuckDB's ``**/*.parquet`` globs and to pyarrow.dataset (which
skips ``_``-prefixed directories) until the commit publishes them.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lakeop.engine.commitlog import REJECTED_DIR, STAGING_DIR, DataFile
from lakeop.storage import Storage, retrying

MAX_ROWS_PER_FILE = int(os.environ.get("LAKEOP_MAX_ROWS_PER_FILE", "8000000"))
# Rows each open partition may buffer before a row group is written: between these bounds,
# chosen so that all open partitions together stay within the buffer budget.
MIN_ROWS_PER_GROUP = int(os.environ.get("LAKEOP_MIN_ROWS_PER_GROUP", "8192"))
TARGET_ROWS_PER_GROUP = 131_072
BUFFER_BUDGET_BYTES = int(os.environ.get("LAKEOP_WRITE_BUFFER_BYTES", str(128 << 20)))
# A column is dictionary-encoded when its distinct values are at most this share of a batch
# (high-cardinality dictionaries cost a hash per value and fall back to plain anyway).
DICTIONARY_MAX_RATIO = 0.2
READAHEAD_BATCHES = int(os.environ.get("LAKEOP_READAHEAD_BATCHES", "2"))
MAX_ROWS_PER_GROUP = int(os.environ.get("LAKEOP_MAX_ROWS_PER_GROUP", "1048576"))
STAGED_SUFFIX = ".staged"


def write_staged(
    storage: Storage,
    run_id: str,
    *,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    keys: pa.Schema,
    compression: str,
) -> list[DataFile]:
    """Write every batch; return the files as they will be named once published."""
    base = storage.full(f"{STAGING_DIR}/{run_id}")
    prefix = base + "/"
    written: list[DataFile] = []

    def visit(wf: Any) -> None:
        rel = str(wf.path)[len(prefix) :]
        final = rel[: -len(STAGED_SUFFIX)]
        partition = final.rsplit("/", 1)[0] if "/" in final else ""
        rows = int(wf.metadata.num_rows) if wf.metadata is not None else 0
        written.append(DataFile(final, partition, rows, int(wf.size)))

    it = iter(batches)
    first = next(it, None)
    if first is None:
        return []
    layout = plan_layout(first, keys)
    fmt = ds.ParquetFileFormat()
    options = fmt.make_write_options(
        compression=None if compression == "none" else compression,
        write_statistics=True,
        use_dictionary=layout.dictionary_columns,
    )
    storage.make_dirs(f"{STAGING_DIR}/{run_id}")
    # A small readahead keeps the batches queued between reader and writer bounded.
    source = ds.Scanner.from_batches(
        itertools.chain([first], it), schema=schema, batch_readahead=READAHEAD_BATCHES
    )
    ds.write_dataset(
        source,
        base,
        format=fmt,
        file_options=options,
        filesystem=storage.fs,
        partitioning=ds.partitioning(keys, flavor="hive") if len(keys) else None,
        basename_template=f"part-{run_id}-{{i}}.parquet{STAGED_SUFFIX}",
        existing_data_behavior="overwrite_or_ignore",
        max_partitions=1 << 20,
        max_open_files=512,
        max_rows_per_file=MAX_ROWS_PER_FILE,
        min_rows_per_group=layout.min_rows_per_group,
        max_rows_per_group=MAX_ROWS_PER_GROUP,
        file_visitor=visit,
        use_threads=True,
    )
    return sorted(written, key=lambda f: f.path)


@dataclass(frozen=True)
class Layout:
    dictionary_columns: list[str]
    min_rows_per_group: int


def plan_layout(sample: pa.RecordBatch, keys: pa.Schema) -> Layout:
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
    budget_rows = int(BUFFER_BUDGET_BYTES / (partitions * row_bytes))
    rows = max(MIN_ROWS_PER_GROUP, min(TARGET_ROWS_PER_GROUP, budget_rows))
    return Layout(dictionary, rows)


class Quarantine:
    """Rejected records, with their reason, as JSON lines under ``_rejected/<run>/``."""

    FLUSH_ROWS = 10_000

    def __init__(self, storage: Storage, run_id: str) -> None:
        self.storage = storage
        self.dir = f"{REJECTED_DIR}/{run_id}"
        self.pending: list[str] = []
        self.parts = 0
        self.count = 0

    def reset(self) -> None:
        retrying(lambda: self.storage.delete_dir(self.dir))

    def add(self, record: dict[str, Any]) -> None:
        self.pending.append(json.dumps(record, default=_jsonable, ensure_ascii=False))
        self.count += 1
        if len(self.pending) >= self.FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        body = ("\n".join(self.pending) + "\n").encode()
        path = f"{self.dir}/rejected-{self.parts:05d}.jsonl"
        retrying(lambda: self.storage.write_bytes(path, body))
        self.parts += 1
        self.pending = []


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
