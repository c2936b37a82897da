"""Writing conformed, keyed batches as staged Parquet files, and quarantining rejects.

Data goes through ``pyarrow.dataset.write_dataset``: Arrow's multithreaded writer keeps one
open file per partition, accumulates rows across batches into row groups
(``min_rows_per_group``), rolls files at ``max_rows_per_file`` and writes statistics. It
writes into the run's staging directory with names ending ``.parquet.staged`` under
``_lakeop/`` - invisible to DuckDB's ``**/*.parquet`` globs and to pyarrow.dataset (which
skips ``_``-prefixed directories) until the commit publishes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from lakeop.engine.commitlog import REJECTED_DIR, STAGING_DIR, DataFile
from lakeop.storage import Storage, retrying

MAX_ROWS_PER_FILE = int(os.environ.get("LAKEOP_MAX_ROWS_PER_FILE", "8000000"))
MIN_ROWS_PER_GROUP = int(os.environ.get("LAKEOP_MIN_ROWS_PER_GROUP", "65536"))
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

    fmt = ds.ParquetFileFormat()
    options = fmt.make_write_options(
        compression=None if compression == "none" else compression,
        write_statistics=True,
    )
    storage.make_dirs(f"{STAGING_DIR}/{run_id}")
    ds.write_dataset(
        batches,
        base,
        schema=schema,
        format=fmt,
        file_options=options,
        filesystem=storage.fs,
        partitioning=ds.partitioning(keys, flavor="hive") if len(keys) else None,
        basename_template=f"part-{run_id}-{{i}}.parquet{STAGED_SUFFIX}",
        existing_data_behavior="overwrite_or_ignore",
        max_partitions=1 << 20,
        max_open_files=512,
        max_rows_per_file=MAX_ROWS_PER_FILE,
        min_rows_per_group=MIN_ROWS_PER_GROUP,
        max_rows_per_group=MAX_ROWS_PER_GROUP,
        file_visitor=visit,
        use_threads=True,
    )
    return sorted(written, key=lambda f: f.path)


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
