"""Widening a Delta table's column types: one rewrite commit before the run's own.

delta-rs (1.6) writes no ``typeWidening`` table feature, and a Delta table without it has
one physical type per column. So a promotion the table's format rule allows
(:func:`lakeop.core.schema.format_rules.delta_promotes`: ``int``→``long``, ``float``→
``double``, ...) is applied by rewriting every live file of the current snapshot under the
widened schema, and committing the new files, the removal of the old ones and the new
``metaData`` (schema) as **one Delta commit** (an ``overwrite`` write: delta-rs removes the
files of the snapshot it read). The table keeps its id, partition columns, configuration and
application transactions (``txn``: a run's exactly-once record survives the rewrite); the
commit carries ``commitInfo.lakeopEvolve`` (the columns widened), not a run record.

- **Bounded memory**: one file at a time, read and written batch by batch.
- **Crash-safe**: until the commit lands, the new files are named by no version (a crash
  leaves them for ``VACUUM``; a failure removes them) and readers keep reading the old
  schema and files. After it, the table is at the widened schema; a retry of the run finds
  no promotion left and goes on to its own commit.
- **Concurrent commits**: a run of another job that commits between the rewrite's read and
  its commit makes delta-rs's conflict check fail the rewrite (it read the whole table);
  the caller re-reads and rewrites again. A run that wrote its files under the old type and
  commits after the rewrite is refused (``DeltaFormat.commit``): a Delta table without type
  widening must not hold files of two physical types of one column.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.transaction import AddAction, CommitProperties, RemoveAction

from lakeop.arrow import arrow_to_type
from lakeop.core.lake.partitioning import NULL_PARTITION
from lakeop.core.schema.format_rules import delta_promotes
from lakeop.engine.commits import DataFile
from lakeop.errors import InvalidSchemaError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

#: the commitInfo key of a rewrite commit (the columns it widened)
EVOLVE_KEY = "lakeopEvolve"
READ_BATCH_ROWS = 65_536


def widens(old: pa.DataType, new: pa.DataType) -> bool:
    """Whether a Delta column of type ``old`` is widened to ``new`` by a rewrite."""
    try:
        return delta_promotes(arrow_to_type(old), arrow_to_type(new))
    except InvalidSchemaError:
        return False


def rewrite_widened(
    storage: Storage,
    table: DeltaTable,
    files: list[DataFile],
    target: pa.Schema,
    widened: list[str],
) -> None:
    """Rewrite ``files`` (the live files of ``table``'s snapshot) under ``target`` (the
    table's new schema, partition columns included) and commit them as one overwrite.
    Raises delta-rs's ``CommitFailedError`` when a concurrent commit conflicts."""
    parts = list(table.metadata().partition_columns)
    data = pa.schema([f for f in target if f.name not in parts])
    token = secrets.token_hex(4)
    version = table.version()
    now_ms = int(time.time() * 1000)
    adds: list[AddAction | RemoveAction] = []
    try:
        for i, f in enumerate(files):
            folder = f.path.rsplit("/", 1)[0] + "/" if "/" in f.path else ""
            path = f"{folder}part-evolve-v{version}-{token}-{i:05d}.parquet"
            rows, size = _rewrite_file(storage, f.path, path, data)
            values = partition_values(f.partition)
            adds.append(
                AddAction(
                    path,
                    size,
                    {k: values.get(k) for k in parts},
                    now_ms,
                    True,
                    json.dumps({"numRecords": rows}),
                )
            )
        record = {"fromVersion": version, "widened": widened, "files": len(adds)}
        props = CommitProperties(custom_metadata={EVOLVE_KEY: json.dumps(record)})
        table.create_write_transaction(adds, "overwrite", target, parts, commit_properties=props)
    except BaseException:
        for a in adds:  # named by no version: drop them (a crash leaves them for VACUUM)
            try:
                storage.delete(a.path)
            except OSError:
                logger.warning("could not remove the unused rewrite file %s", a.path)
        raise
    logger.info("delta table %s: widened %s by rewriting %d files", storage.url, widened, len(adds))


def _rewrite_file(storage: Storage, src: str, dst: str, schema: pa.Schema) -> tuple[int, int]:
    """Copy ``src`` to ``dst`` cast to ``schema`` (missing columns as null); rows, bytes."""
    source = pq.ParquetFile(storage.open_input(src))
    meta = source.metadata
    codec = "snappy"
    if meta.num_row_groups and meta.num_columns:
        codec = str(meta.row_group(0).column(0).compression).lower()
        codec = "none" if codec == "uncompressed" else codec
    rows = 0
    sink = storage.open_output(dst)
    try:
        with pq.ParquetWriter(sink, schema, compression=codec) as writer:
            for batch in source.iter_batches(batch_size=READ_BATCH_ROWS):
                writer.write_batch(_cast(batch, schema))
                rows += batch.num_rows
        size = sink.tell()
    finally:
        sink.close()
    return rows, int(size)


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    names = set(batch.schema.names)
    columns: list[Any] = [
        batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(batch.num_rows, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def partition_values(partition: str) -> dict[str, str | None]:
    """``k=v/k=v`` as Delta partition values (the null label as null)."""
    out: dict[str, str | None] = {}
    for part in partition.split("/") if partition else []:
        key, _, value = part.partition("=")
        out[key] = None if value == NULL_PARTITION else value
    return out
