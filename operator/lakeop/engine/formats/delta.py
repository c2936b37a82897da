"""``format: delta``: the table is a Delta Lake table, committed through delta-rs.

lakeop's partitioned writer writes a run's files in place, under the partition directories
lakeop uses for parquet tables (``year=``, ``bucket=``, ``<column>_range=``,
``<column>_group=``, Delta identity partition columns); no Delta reader sees a file until a
commit names it. The run's commit is **one Delta commit**: an ``add`` action per file (with
its row count as statistics), for ``overwrite-partitions`` a ``remove`` action per live file
of the partitions it writes, the run's lakeop record (run id, job, schema version, sources or
watermark, counters) in the commit's ``commitInfo`` under ``lakeop``, and an application
transaction ``txn`` with app id ``lakeop-run-<run id>``, version 1.

Exactly once per run id: before committing, the run's app id is looked up in the snapshot
(a retry finds its commit); two processes with one run id that race are told apart by
delta-rs's conflict check, which fails a commit whose concurrent winner carries the same app
id (the loser re-reads and reports the winner's commit). Commits of other runs that land
meanwhile are retried over by delta-rs (appends do not conflict); an overwrite whose
removed files another commit removed first recomputes its removals and tries again.

Files of an attempt that never commits stay as unreferenced files (a crash, a losing
racer): invisible to every Delta reader, removed by a ``VACUUM``. Old log entries are kept
(``delta.enableExpiredLogCleanup=false``): the claims read every run's sources from them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, Field
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)

from lakeop.core.lake.partitioning import NULL_PARTITION
from lakeop.engine.commitlog import STAGING_DIR
from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.formats.base import Snapshot
from lakeop.engine.publish import marker_path, recover
from lakeop.engine.write import remove_rejected
from lakeop.errors import TerminalError, TransientError
from lakeop.storage import Storage, retrying

logger = logging.getLogger(__name__)

#: the commitInfo key holding the run's lakeop record
METADATA_KEY = "lakeop"
APP_PREFIX = "lakeop-run-"
#: table properties lakeop sets when it creates a Delta table
TABLE_CONFIGURATION = {"delta.enableExpiredLogCleanup": "false"}
#: attempts at one commit (each re-reads the table: an overwrite racing another)
COMMIT_ATTEMPTS = 8
#: delta-rs's own retries over concurrent commits that do not conflict
MAX_COMMIT_RETRIES = 50


def app_id(run_id: str) -> str:
    """The application-transaction id of a run."""
    return f"{APP_PREFIX}{run_id}"


class DeltaFormat:
    name = "delta"
    staged = False

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.uri = storage.root if storage.is_local else storage.url
        self.options = dict(storage.format_options)

    # ------------------------------------------------------------------ reading the table

    def _table(self) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri, storage_options=self.options or None)
        except TableNotFoundError:
            return None
        except (DeltaError, OSError) as e:
            raise TransientError(f"delta table {self.storage.url}: {e}") from e

    def _require(self) -> DeltaTable:
        table = self._table()
        if table is None:
            raise TerminalError(f"delta table {self.storage.url}: no Delta table there")
        return table

    def file_schema(self, schema: pa.Schema) -> pa.Schema | None:
        return None

    def commits(self) -> list[Commit]:
        table = self._table()
        return [] if table is None else _records(table)

    def find(self, run_id: str) -> Commit | None:
        table = self._table()
        return None if table is None else _find(table, run_id)

    # ------------------------------------------------------------------ creating, evolving

    def ensure(self, schema: pa.Schema, partition_columns: Sequence[str]) -> None:
        table = self._table()
        if table is None:
            try:
                create_table_with_add_actions(
                    self.uri,
                    DeltaSchema.from_arrow(schema),
                    [],
                    mode="ignore",
                    partition_by=list(partition_columns),
                    configuration=TABLE_CONFIGURATION,
                    storage_options=self.options or None,
                )
            except (CommitFailedError, DeltaError):  # a racing creator won: use its table
                logger.info("delta table %s was created concurrently", self.storage.url)
            table = self._require()
        self._evolve(table, schema, partition_columns)

    def _evolve(
        self, table: DeltaTable, schema: pa.Schema, partition_columns: Sequence[str]
    ) -> None:
        """Add the columns ``schema`` has and the table lacks (nullable: older files read
        them as null) and drop NOT NULL where ``schema`` allows nulls. Other changes are
        refused before a run starts (``FormatCannotEvolve``); one found here is terminal."""
        have = list(table.metadata().partition_columns)
        if have != list(partition_columns):
            raise TerminalError(
                f"delta table {self.storage.url}: partition columns {have}, the table's "
                f"partitioning needs {list(partition_columns)}",
                reason="FormatCannotEvolve",
            )
        current = pa.schema(table.schema().to_arrow())
        added = [f for f in schema if f.name not in current.names]
        for f in schema:
            if f.name not in current.names:
                continue
            old = current.field(f.name)
            if not old.type.equals(f.type):
                raise TerminalError(
                    f"delta table {self.storage.url}: column {f.name} is {old.type} in the "
                    f"table, the schema asks {f.type}: Delta cannot change a column's type",
                    reason="FormatCannotEvolve",
                )
            if f.nullable and not old.nullable:
                table.alter.drop_column_not_null(f.name)
        if added:
            table.alter.add_columns([Field.from_arrow(f.with_nullable(True)) for f in added])

    # ------------------------------------------------------------------ the commit point

    def commit(self, commit: Commit, schema: pa.Schema) -> tuple[Commit, bool]:
        for _ in range(COMMIT_ATTEMPTS):
            table = self._require()
            found = _find(table, commit.run_id)
            if found is not None:
                return found, False
            partition_columns = list(table.metadata().partition_columns)
            removes = []
            if commit.mode == "overwrite-partitions":
                removes = _live_in(table, {f.partition for f in commit.files})
            record = replace(commit, removed=sorted(r.path for r in removes), seq=0)
            now_ms = int(time.time() * 1000)
            actions: list[AddAction | RemoveAction] = [
                _add(f, partition_columns, now_ms) for f in commit.files
            ]
            actions += [
                RemoveAction(r.path, True, now_ms, r.bytes, _values(r.partition)) for r in removes
            ]
            props = CommitProperties(
                custom_metadata={METADATA_KEY: json.dumps(record.to_dict(), default=str)},
                max_commit_retries=MAX_COMMIT_RETRIES,
                app_transactions=[Transaction(app_id(commit.run_id), 1, now_ms)],
            )
            try:
                table.create_write_transaction(
                    actions, "append", schema, partition_columns, commit_properties=props
                )
            except CommitFailedError as e:  # a racer with this run id, or removed files
                logger.info("delta commit of run %s: %s; re-reading", commit.run_id, e)
                continue
            except (DeltaError, OSError) as e:
                raise TransientError(f"delta commit of run {commit.run_id}: {e}") from e
            mine = _find(self._require(), commit.run_id)
            if mine is None:
                raise TransientError(f"delta commit of run {commit.run_id}: not found after it")
            return mine, True
        raise TransientError(
            f"delta commit of run {commit.run_id}: still conflicting after "
            f"{COMMIT_ATTEMPTS} attempts"
        )

    def publish(self, commit: Commit) -> None:
        """Files are in place already: drop the run's other attempts' quarantined records,
        its staging directory (shares' manifests) and marker. Replaced files stay: readers
        of older versions still read them (``VACUUM`` removes them)."""
        _publish(self.storage, commit)

    def recover(self, current_run: str, now_ms: int) -> list[str]:
        return recover(self.storage, self, current_run, now_ms, finish=_publish)

    # ------------------------------------------------------------------ status

    def live_files(self) -> dict[str, DataFile]:
        table = self._table()
        if table is None:
            return {}
        return {f.path: f for f in _files(table)}

    def totals(self) -> dict[str, Any]:
        table = self._table()
        files = [] if table is None else _files(table)
        snap = None if table is None else _snapshot(table)
        return {
            "rows": sum(f.rows for f in files),
            "files": len(files),
            "bytes": sum(f.bytes for f in files),
            "partitions": len({f.partition for f in files}),
            "lastCommitTime": snap.timestamp if snap is not None else None,
        }

    def snapshot(self) -> Snapshot | None:
        table = self._table()
        return None if table is None else _snapshot(table)

    def delete(self) -> bool:
        if not self.storage.list_files(""):
            return False
        self.storage.delete_dir("")
        return True


# ---------------------------------------------------------------------- helpers


def _publish(storage: Storage, commit: Commit) -> None:
    if commit.quarantine is not None:
        remove_rejected(storage, commit.run_id, keep=commit.quarantine)
    retrying(lambda: storage.delete_dir(f"{STAGING_DIR}/{commit.run_id}"))
    retrying(lambda: storage.delete(marker_path(commit.run_id)))


def _records(table: DeltaTable) -> list[Commit]:
    """The lakeop records of the table's commits, oldest first, each with its version."""
    out = []
    for entry in reversed(table.history()):
        raw = entry.get(METADATA_KEY)
        if not isinstance(raw, str):
            continue
        try:
            commit = Commit.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            logger.warning("delta version %s: unreadable lakeop record", entry.get("version"))
            continue
        out.append(replace(commit, seq=int(entry.get("version", 0))))
    return out


def _find(table: DeltaTable, run_id: str) -> Commit | None:
    if table.transaction_version(app_id(run_id)) is None:
        return None
    for c in reversed(_records(table)):
        if c.run_id == run_id:
            return c
    raise TransientError(f"run {run_id}: its Delta transaction exists but its record is missing")


def _files(table: DeltaTable) -> list[DataFile]:
    """The live files of the current version, from the log's add actions (and checkpoint)."""
    adds = pa.table(table.get_add_actions(flatten=True))
    parts = list(table.metadata().partition_columns)
    cols = {name: adds.column(name).to_pylist() for name in adds.column_names}
    out = []
    for i, path in enumerate(cols["path"]):
        values = [cols[f"partition.{k}"][i] if f"partition.{k}" in cols else None for k in parts]
        partition = "/".join(
            f"{k}={NULL_PARTITION if v is None else v}" for k, v in zip(parts, values, strict=True)
        )
        rows = cols.get("num_records", [None] * len(cols["path"]))[i]
        out.append(DataFile(str(path), partition, int(rows or 0), int(cols["size_bytes"][i])))
    return out


def _live_in(table: DeltaTable, partitions: set[str]) -> list[DataFile]:
    return [f for f in _files(table) if f.partition in partitions]


def _values(partition: str) -> dict[str, str | None]:
    """``k=v/k=v`` as Delta partition values (the null label as null)."""
    out: dict[str, str | None] = {}
    for part in partition.split("/") if partition else []:
        key, _, value = part.partition("=")
        out[key] = None if value == NULL_PARTITION else value
    return out


def _add(f: DataFile, partition_columns: list[str], now_ms: int) -> AddAction:
    values = _values(f.partition)
    return AddAction(
        f.path,
        f.bytes,
        {k: values.get(k) for k in partition_columns},
        now_ms,
        True,
        json.dumps({"numRecords": f.rows}),
    )


def _snapshot(table: DeltaTable) -> Snapshot:
    last = table.history(1)
    ms = int(last[0]["timestamp"]) if last else 0
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Snapshot(str(table.version()), when)
