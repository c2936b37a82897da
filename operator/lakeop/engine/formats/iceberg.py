"""``format: iceberg``: the table is an Apache Iceberg table in a SQL catalog (pyiceberg).

The catalog is a SQLAlchemy URL (PostgreSQL in a cluster, SQLite on one machine; the
JDBC-catalog tables ``iceberg_tables``/``iceberg_namespace_properties``), from
``LAKEOP_ICEBERG_CATALOG_URI`` (a Job pod gets it from the Table's secret); without one a
``file://`` table uses the embedded SQLite catalog ``<location>/_lakeop/iceberg-catalog.db``.
The Iceberg table's location is the Table's location.

lakeop's partitioned writer writes a run's files in place (grouped by the Hive keys, hash
buckets by Iceberg's murmur3), with Iceberg field ids in their Parquet schema; no reader
sees them until a snapshot names them. The run's commit is **one snapshot**: a fast append
of its files (for ``overwrite-partitions`` an overwrite that also deletes the live files of
the partitions it writes), with each file's partition value and column metrics (from its
footer), and the run's lakeop record in the snapshot summary (``lakeop.run-id``,
``lakeop.job``, ``lakeop.schema-version``, ``lakeop.record``: sources or watermark and
counters).

Exactly once per run id: the committer loads the table, looks for a snapshot of its run id,
and commits with the catalog's optimistic check (the metadata location it read is still
current). A commit that loses the race (another run or a process with the same run id
committed meanwhile) reloads, looks for its run id again and retries: a same-run racer
finds the winner's snapshot and reports it, dropping its own files.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.io.pyarrow import (
    _pyarrow_to_schema_without_ids,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile as IcebergDataFile
from pyiceberg.manifest import DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids
from pyiceberg.table import Table
from pyiceberg.transforms import parse_transform
from pyiceberg.typedef import Record
from sqlalchemy.exc import OperationalError

from lakeop.core.lake import iceberg as rules
from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.formats.base import Snapshot
from lakeop.engine.formats.iceberg_archive import with_archived
from lakeop.engine.formats.iceberg_catalog import (
    PREFIX,
    TARGET_FILE,
    IcebergTarget,
    catalog_uri,
    ensure_namespace,
    hive_values,
    iso,
    live_data_files,
    open_catalog,
    partition_key,
    publish_run,
    record_of,
    records,
)
from lakeop.engine.formats.iceberg_orphans import sweep
from lakeop.engine.formats.iceberg_schema import evolve, with_field_ids
from lakeop.engine.publish import recover
from lakeop.errors import TerminalError, TransientError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

#: attempts at one commit (each reloads the table after a lost race)
COMMIT_ATTEMPTS = 40
FORMAT_VERSION = "2"
#: pyiceberg's own commit retry re-applies a snapshot onto a refreshed table without lakeop's
#: run-id check (a same-run racer would commit twice): off; lakeop retries itself
NO_LIBRARY_RETRY = {"commit.retry.num-retries": "0"}


class IcebergFormat:
    name = "iceberg"
    staged = False

    def __init__(self, storage: Storage, target: IcebergTarget) -> None:
        self.storage = storage
        self.target = target
        self.identifier = (target.namespace, target.name)
        self.location = storage.url
        self.catalog = open_catalog(catalog_uri(target, storage), storage.iceberg_options)
        self._file_schema: pa.Schema | None = None

    # ------------------------------------------------------------------ reading the table

    def _table(self) -> Table | None:
        try:
            return self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            return None
        except (OperationalError, OSError) as e:
            raise TransientError(f"iceberg table {'.'.join(self.identifier)}: {e}") from e

    def _require(self) -> Table:
        table = self._table()
        if table is None:
            raise TerminalError(f"iceberg table {'.'.join(self.identifier)}: not in the catalog")
        return table

    def metadata_location(self) -> str | None:
        table = self._table()
        return None if table is None else str(table.metadata_location)

    def commits(self) -> list[Commit]:
        table = self._table()
        # with the records of expired snapshots (lakeop.engine.iceberg_expiry archives them)
        return [] if table is None else with_archived(self.storage, records(table))

    def find(self, run_id: str) -> Commit | None:
        table = self._table()
        return None if table is None else self._find(table, run_id)

    def _find(self, table: Table, run_id: str) -> Commit | None:
        for snap in table.metadata.snapshots:
            props = snap.summary.additional_properties if snap.summary else {}
            if props.get(PREFIX + "run-id") == run_id:
                record = record_of(snap)
                if record is None:
                    raise TransientError(f"run {run_id}: its snapshot has no lakeop record")
                return replace(record, files=self._added(table, snap.snapshot_id))
        return None

    def _added(self, table: Table, snapshot_id: int) -> list[DataFile]:
        snap = table.metadata.snapshot_by_id(snapshot_id)
        out = []
        for m in snap.manifests(table.io) if snap else []:
            if m.added_snapshot_id != snapshot_id:
                continue
            for e in m.fetch_manifest_entry(table.io, discard_deleted=True):
                if e.snapshot_id == snapshot_id and e.status.value == 1:  # ADDED
                    out.append(self._data_file(e.data_file))
        return sorted(out, key=lambda f: f.path)

    def _data_file(self, f: IcebergDataFile) -> DataFile:
        path = str(f.file_path)
        rel = path[len(self.location) + 1 :] if path.startswith(self.location + "/") else path
        partition = rel.rsplit("/", 1)[0] if "/" in rel else ""
        return DataFile(rel, partition, int(f.record_count), int(f.file_size_in_bytes))

    # ------------------------------------------------------------------ creating, evolving

    def ensure(self, schema: pa.Schema, partition_columns: Sequence[str]) -> None:
        keep = {f for f, _, _ in rules.partition_fields(self.target.partitioning)}
        data = pa.schema([f for f in schema if f.name not in partition_columns or f.name in keep])
        table = self._table()
        if table is None:
            table = self._create(data)
        table = evolve(table, data, self.identifier)
        table = self._no_library_retry(table)
        self._write_target()
        self._file_schema = with_field_ids(data, table.schema())

    def _write_target(self) -> None:
        body = json.dumps(
            {
                "namespace": self.target.namespace,
                "name": self.target.name,
                "partitioning": self.target.partitioning.to_dict(),
            },
            sort_keys=True,
        ).encode()
        if self.storage.read_bytes(TARGET_FILE) != body:
            self.storage.write_bytes_atomic(TARGET_FILE, body)

    def _no_library_retry(self, table: Table) -> Table:
        """A table created elsewhere may allow pyiceberg's retry: turn it off first."""
        for _ in range(COMMIT_ATTEMPTS):
            if all(table.metadata.properties.get(k) == v for k, v in NO_LIBRARY_RETRY.items()):
                return table
            try:
                table.transaction().set_properties(NO_LIBRARY_RETRY).commit_transaction()
            except (CommitFailedException, OperationalError):
                time.sleep(random.uniform(0.01, 0.1))
            table = self._require()
        raise TransientError(
            f"iceberg table {'.'.join(self.identifier)}: cannot set its properties"
        )

    def _create(self, schema: pa.Schema) -> Table:
        ensure_namespace(self.catalog, self.target.namespace, COMMIT_ATTEMPTS)
        iceberg_schema = assign_fresh_schema_ids(_pyarrow_to_schema_without_ids(schema))
        fields = []
        for i, (source, transform, name) in enumerate(
            rules.partition_fields(self.target.partitioning)
        ):
            fields.append(
                PartitionField(
                    source_id=iceberg_schema.find_field(source).field_id,
                    field_id=1000 + i,
                    transform=parse_transform(transform),
                    name=name,
                )
            )
        try:
            return self.catalog.create_table(
                self.identifier,
                schema=iceberg_schema,
                location=self.location,
                partition_spec=PartitionSpec(*fields),
                properties={
                    **NO_LIBRARY_RETRY,
                    "format-version": FORMAT_VERSION,
                    "lakeop.partitioning": json.dumps(self.target.partitioning.to_dict()),
                },
            )
        except TableAlreadyExistsError:  # a racing creator won: use its table
            return self._require()
        except OperationalError:  # SQLite busy with a racing creator
            time.sleep(0.5)
            return self._require()

    def file_schema(self, schema: pa.Schema) -> pa.Schema:
        """The schema the run's files are written with: the Iceberg columns (with the
        label column of a range/list table, without the Hive keys) and their field ids."""
        if self._file_schema is None:
            raise TerminalError("iceberg: ensure() the table before writing")
        return self._file_schema

    # ------------------------------------------------------------------ the commit point

    def commit(self, commit: Commit, schema: pa.Schema) -> tuple[Commit, bool]:
        table = self._no_library_retry(self._require())
        found = self._find(table, commit.run_id)
        if found is not None:
            self._drop_files(commit.files)
            return found, False
        files = self._iceberg_files(table, commit.files)
        record = replace(commit, files=[], removed=[], seq=0)
        props = {
            PREFIX + "run-id": commit.run_id,
            PREFIX + "job": commit.job,
            PREFIX + "schema-version": str(commit.schema_version),
            PREFIX + "record": json.dumps(record.to_dict(), default=str, sort_keys=True),
        }
        touched = {partition_key(f.partition) for f in files}
        for attempt in range(COMMIT_ATTEMPTS):
            if attempt:
                table = self._no_library_retry(self._require())
                found = self._find(table, commit.run_id)
                if found is not None:  # a process with this run id committed first
                    self._drop_files(commit.files)
                    return found, False
            tx = table.transaction()
            removes = []
            if commit.mode == "overwrite-partitions":
                removes = [
                    f for f in live_data_files(table) if partition_key(f.partition) in touched
                ]
            if removes:
                with tx.update_snapshot(snapshot_properties=props).overwrite() as op:
                    for f in removes:
                        op.delete_data_file(f)
                    for f in files:
                        op.append_data_file(f)
            else:
                with tx.update_snapshot(snapshot_properties=props).fast_append() as fa:
                    for f in files:
                        fa.append_data_file(f)
            try:
                tx.commit_transaction()
            except (CommitFailedException, OperationalError) as e:
                logger.info(
                    "iceberg commit of run %s lost a race (%s); reloading", commit.run_id, e
                )
                time.sleep(random.uniform(0.01, 0.05 * min(attempt + 1, 10)))
                continue
            mine = self.find(commit.run_id)
            if mine is None:
                raise TransientError(f"iceberg commit of run {commit.run_id}: not found after it")
            return mine, True
        raise TransientError(
            f"iceberg commit of run {commit.run_id}: still losing races after "
            f"{COMMIT_ATTEMPTS} attempts"
        )

    def _iceberg_files(self, table: Table, files: list[DataFile]) -> list[IcebergDataFile]:
        """Each written file as an Iceberg data file: its partition value (from the Hive keys
        it was grouped by) and its column metrics (from its footer)."""
        meta = table.metadata
        schema = meta.schema()
        plan = compute_statistics_plan(schema, meta.properties)
        mapping = parquet_path_to_id_mapping(schema)
        spec = meta.spec()

        def one(f: DataFile) -> IcebergDataFile:
            md = pq.read_metadata(self.storage.open_input(f.path))
            stats = data_file_statistics_from_parquet_metadata(md, plan, mapping)
            values = hive_values(f.partition)
            part = (
                Record(rules.transform_value(self.target.partitioning, values))
                if len(spec.fields)
                else Record()
            )
            return IcebergDataFile.from_args(
                content=DataFileContent.DATA,
                file_path=f"{self.location}/{f.path}",
                file_format=FileFormat.PARQUET,
                partition=part,
                file_size_in_bytes=f.bytes,
                sort_order_id=None,
                spec_id=meta.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                **stats.to_serialized_dict(),
            )

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, files))

    def _drop_files(self, files: list[DataFile]) -> None:
        """A losing attempt's own files (its tag is in their names: never the winner's)."""
        for f in files:
            try:
                self.storage.delete(f.path)
            except (OSError, TransientError) as e:
                logger.info("could not remove %s: %s", f.path, e)

    def publish(self, commit: Commit) -> None:
        """Files are in place already: drop the run's other attempts' quarantined records,
        its staging directory (shares' manifests) and marker. Replaced files stay: older
        snapshots still read them."""
        publish_run(self.storage, commit)

    def recover(self, current_run: str, now_ms: int) -> list[str]:
        """Finish interrupted publishes, then sweep killed attempts' orphan data files
        (:mod:`lakeop.engine.formats.iceberg_orphans`)."""
        done = recover(self.storage, self, current_run, now_ms, finish=publish_run)
        return done + sweep(self.storage, self._table, self.location, current_run, now_ms)

    # ------------------------------------------------------------------ status

    def live_files(self) -> dict[str, DataFile]:
        table = self._table()
        if table is None:
            return {}
        out = [self._data_file(f) for f in live_data_files(table)]
        return {f.path: f for f in out}

    def totals(self) -> dict[str, Any]:
        table = self._table()
        snap = None if table is None else table.current_snapshot()
        if table is None or snap is None:
            return {"rows": 0, "files": 0, "bytes": 0, "partitions": 0, "lastCommitTime": None}
        s = snap.summary.additional_properties if snap.summary else {}
        partitions = {partition_key(f.partition) for f in live_data_files(table)}
        return {
            "rows": int(s.get("total-records", 0)),
            "files": int(s.get("total-data-files", 0)),
            "bytes": int(s.get("total-files-size", 0)),
            "partitions": len(partitions),
            "lastCommitTime": iso(snap.timestamp_ms),
        }

    def snapshot(self) -> Snapshot | None:
        table = self._table()
        snap = None if table is None else table.current_snapshot()
        return None if snap is None else Snapshot(str(snap.snapshot_id), iso(snap.timestamp_ms))

    def delete(self) -> bool:
        """Drop the table from the catalog and purge its location."""
        dropped = False
        try:
            self.catalog.drop_table(self.identifier)
            dropped = True
        except NoSuchTableError:
            pass
        if self.storage.list_files(""):
            self.storage.delete_dir("")
            dropped = True
        return dropped
