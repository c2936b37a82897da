"""``format: delta``: the table is a Delta Lake table, committed through delta-rs.

lakeop's partitioned writer writes a run's files in place, under the partition directories
lakeop uses for parquet tables (``year=``, ``bucket=``, ``<column>_range=``,
``<column>_group=``, Delta identity partition columns); no Delta reader sees a file until a
commit names it. The run's commit is **one Delta commit**: an ``add`` action per file (with
its row count as statistics), for ``overwrite-partitions`` a ``remove`` action per live file
of the partitions it writes, the run's lakeop record (run id, job, schema version, sources or
watermark, counters) in the commit's ``commitInfo`` under ``lakeop``, and an application
transaction ``txn`` with app id ``lakeop-run-<run id>`` whose version is the Delta version the
commit expects to be (the run lookup reads forward from it, :mod:`.delta_log`).

Exactly once per run id: before committing, the run's app id is looked up in the snapshot
(a retry finds its commit); two processes with one run id that race are told apart by
delta-rs's conflict check, which fails a commit whose concurrent winner carries the same app
id (the loser re-reads and reports the winner's commit). Commits of other runs that land
meanwhile are retried over by delta-rs for an append (appends do not conflict); an overwrite
is never rebased by delta-rs (which would keep a concurrent OPTIMIZE's file of the partition
live): any commit that lands first fails it, and it re-reads the partitions' live files,
recomputes its removals and tries again.

Files of an attempt that never commits stay as unreferenced files (a crash, a losing
racer): invisible to every Delta reader, removed by a ``VACUUM``. Old log entries are kept
(``delta.enableExpiredLogCleanup=false``): the claims read every run's sources from them.
"""

from __future__ import annotations

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
from lakeop.engine.formats.delta_evolve import partition_values, rewrite_widened, widens
from lakeop.engine.formats.delta_log import METADATA_KEY, app_id, find_run, records, snapshot_of
from lakeop.engine.publish import marker_path, recover
from lakeop.engine.write import remove_rejected
from lakeop.errors import TerminalError, TransientError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

#: table properties lakeop sets when it creates a Delta table
TABLE_CONFIGURATION = {"delta.enableExpiredLogCleanup": "false"}
#: attempts at one commit (each re-reads the table: an overwrite racing another)
COMMIT_ATTEMPTS = 8
#: delta-rs's own retries over concurrent commits that do not conflict
MAX_COMMIT_RETRIES = 50


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
        return [] if table is None else records(table)

    def find(self, run_id: str) -> Commit | None:
        table = self._table()
        return None if table is None else find_run(self.storage, table, run_id)

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
        for _ in range(COMMIT_ATTEMPTS):
            try:
                self._evolve(self._require(), schema, partition_columns)
                return
            except CommitFailedError as e:  # a commit landed during a rewrite: again
                logger.info("delta table %s: widening conflicted (%s); again", self.uri, e)
        raise TransientError(
            f"delta table {self.storage.url}: widening its columns still conflicting after "
            f"{COMMIT_ATTEMPTS} attempts"
        )

    def _evolve(
        self, table: DeltaTable, schema: pa.Schema, partition_columns: Sequence[str]
    ) -> None:
        """Add the columns ``schema`` has and the table lacks (nullable: older files read
        them as null), drop NOT NULL where ``schema`` allows nulls, and widen the columns
        ``schema`` promotes (a rewrite commit, :mod:`.delta_evolve`). Other changes are
        refused before a run starts (``FormatCannotEvolve``); one found here is terminal."""
        have = list(table.metadata().partition_columns)
        if have != list(partition_columns):
            raise TerminalError(
                f"delta table {self.storage.url}: partition columns {have}, the table's "
                f"partitioning needs {list(partition_columns)}",
                reason="FormatCannotEvolve",
            )
        current = pa.schema(table.schema().to_arrow())
        wanted = {f.name: f for f in schema}
        added = [f.with_nullable(True) for f in schema if f.name not in current.names]
        fields, widened, relaxed = [], [], []
        for old in current:
            f = wanted.get(old.name)
            if f is None:
                fields.append(old)
                continue
            kind = old.type
            if not old.type.equals(f.type):
                if not widens(old.type, f.type):
                    raise TerminalError(
                        f"delta table {self.storage.url}: column {f.name} is {old.type} in "
                        f"the table, the schema asks {f.type}: lakeop widens a Delta column "
                        "only by a promotion, never narrows or changes it",
                        reason="FormatCannotEvolve",
                    )
                kind = f.type
                widened.append(f.name)
            if f.nullable and not old.nullable:
                relaxed.append(f.name)
            fields.append(pa.field(old.name, kind, old.nullable or f.nullable, old.metadata))
        if widened:
            target = pa.schema(fields + added)
            rewrite_widened(self.storage, table, _files(table), target, widened)
            return
        for name in relaxed:
            table.alter.drop_column_not_null(name)
        if added:
            table.alter.add_columns([Field.from_arrow(f) for f in added])

    # ------------------------------------------------------------------ the commit point

    def commit(self, commit: Commit, schema: pa.Schema) -> tuple[Commit, bool]:
        for _ in range(COMMIT_ATTEMPTS):
            table = self._require()
            found = find_run(self.storage, table, commit.run_id)
            if found is not None:
                return found, False
            _check_types(table, schema, commit.run_id)
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
                # an overwrite's removals hold only for the version they were read at:
                # delta-rs would rebase them over a concurrent OPTIMIZE (whose compacted file
                # of the partition would stay live), so it fails instead and this loop
                # re-reads the partition's live files; an append rebases safely
                max_commit_retries=0 if removes else MAX_COMMIT_RETRIES,
                # the version this commit expects to be: the lookup reads forward from it
                app_transactions=[Transaction(app_id(commit.run_id), table.version() + 1, now_ms)],
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
            mine = find_run(self.storage, self._require(), commit.run_id)
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
        snap = None if table is None else snapshot_of(self.storage, table)
        return {
            "rows": sum(f.rows for f in files),
            "files": len(files),
            "bytes": sum(f.bytes for f in files),
            "partitions": len({f.partition for f in files}),
            "lastCommitTime": snap.timestamp if snap is not None else None,
        }

    def snapshot(self) -> Snapshot | None:
        table = self._table()
        return None if table is None else snapshot_of(self.storage, table)

    def delete(self) -> bool:
        if not self.storage.list_files(""):
            return False
        self.storage.delete_dir("")
        return True


# ---------------------------------------------------------------------- helpers


def _publish(storage: Storage, commit: Commit) -> None:
    if commit.quarantine is not None:
        remove_rejected(storage, commit.run_id, keep=commit.quarantine)
    storage.delete_dir(f"{STAGING_DIR}/{commit.run_id}")
    storage.delete(marker_path(commit.run_id))


def _check_types(table: DeltaTable, schema: pa.Schema, run_id: str) -> None:
    """Refuse files written under a column type the table no longer has (a run of an
    older schema version racing a widening rewrite): one physical type per column."""
    current = pa.schema(table.schema().to_arrow())
    for f in schema:
        if f.name in current.names and not current.field(f.name).type.equals(f.type):
            raise TerminalError(
                f"delta table: run {run_id} wrote column {f.name} as {f.type}, the table "
                f"holds {current.field(f.name).type} (widened meanwhile); run it again under "
                "the table's latest schema version",
                reason="FormatCannotEvolve",
            )


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
    return partition_values(partition)


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
