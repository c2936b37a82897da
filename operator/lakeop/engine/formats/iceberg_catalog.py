"""An Iceberg table's catalog and its lakeop records: which SQL catalog, the table's target
(identifier and partitioning, recorded under its location without the catalog's URL), and
reading lakeop's records and live files back from snapshots."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError
from pyiceberg.manifest import DataFile as IcebergDataFile
from pyiceberg.table import Table
from pyiceberg.typedef import Record
from sqlalchemy.exc import IntegrityError, OperationalError

from lakeop.core.lake import iceberg as rules
from lakeop.core.lake.partitioning import NULL_PARTITION
from lakeop.core.spec.fields import ObjectKey
from lakeop.core.spec.layout import PartitionSpec as LakeopPartitioning
from lakeop.core.spec.layout import parse_partitioning
from lakeop.engine.commitlog import STAGING_DIR
from lakeop.engine.commits import Commit
from lakeop.engine.publish import marker_path
from lakeop.engine.write import remove_rejected
from lakeop.errors import InvalidSpecError, TransientError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

#: the snapshot-summary keys lakeop writes start with this
PREFIX = "lakeop."

#: under the location: the Iceberg identifier and partitioning (never the catalog's URL), so
#: that a caller knowing only the location finds the table
TARGET_FILE = "_lakeop/iceberg.json"


def read_target(storage: Storage) -> IcebergTarget | None:
    """The table's target as :data:`TARGET_FILE` records it, the catalog's URL from the
    opener's environment; None when the location holds no Iceberg table."""
    raw = storage.read_bytes(TARGET_FILE)
    if raw is None:
        return None
    d = json.loads(raw)
    partitioning = parse_partitioning(ObjectKey("Table", "-", "-"), d.get("partitioning"))
    return IcebergTarget(
        str(d["namespace"]), str(d["name"]), partitioning, storage.iceberg_catalog_uri
    )


@dataclass(frozen=True)
class IcebergTarget:
    """What a run knows of its Iceberg table besides its location."""

    namespace: str
    name: str
    partitioning: LakeopPartitioning
    catalog_uri: str | None = None  # None: the embedded SQLite catalog (file:// only)
    table: str = ""  # the Table's name, for messages


def catalog_uri(target: IcebergTarget, storage: Storage) -> str:
    """The SQLAlchemy URL of the table's catalog (never printed)."""
    uri = target.catalog_uri
    if uri:
        if uri.startswith("postgresql://") or uri.startswith("postgres://"):
            uri = "postgresql+psycopg://" + uri.split("://", 1)[1]  # psycopg 3
        return uri
    if not storage.is_local:
        raise InvalidSpecError(rules.no_catalog_message(target.table, storage.url))
    storage.make_dirs("_lakeop")
    return f"sqlite:///{storage.full(rules.EMBEDDED_CATALOG)}"


_catalogs: dict[tuple[str, str], SqlCatalog] = {}
_catalogs_lock = threading.Lock()


def open_catalog(uri: str, options: dict[str, str]) -> SqlCatalog:
    key = (uri, json.dumps(options, sort_keys=True))
    with _catalogs_lock:
        # an embedded catalog goes with its table's directory (deleted with it): not kept
        cat = None if uri.startswith("sqlite:") else _catalogs.get(key)
        if cat is None:
            for attempt in range(5):  # racing creators of the catalog's own tables
                try:
                    cat = SqlCatalog(rules.CATALOG_NAME, uri=uri, **options)
                    break
                except OperationalError:
                    if attempt == 4:
                        raise
                    time.sleep(0.2 + random.random() * 0.5)
            assert cat is not None
            if not uri.startswith("sqlite:"):
                _catalogs[key] = cat
        return cat


def ensure_namespace(catalog: SqlCatalog, namespace: str, attempts: int) -> None:
    """Create ``namespace`` unless it is there. The SQL catalog checks, then inserts: two
    creators at once both pass the check and the later insert breaks the unique key
    (IntegrityError) or finds SQLite busy (OperationalError). Either way a namespace that
    is there now is the outcome wanted; one that is not is tried again."""
    for _ in range(attempts):
        try:
            catalog.create_namespace(namespace)
            return
        except NamespaceAlreadyExistsError:
            return
        except (IntegrityError, OperationalError):
            with contextlib.suppress(OperationalError):
                if catalog.namespace_exists(namespace):
                    return
            time.sleep(random.uniform(0.01, 0.1))
    raise TransientError(f"iceberg namespace {namespace}: cannot create it in the catalog")


def publish_run(storage: Storage, commit: Commit) -> None:
    if commit.quarantine is not None:
        remove_rejected(storage, commit.run_id, keep=commit.quarantine)
    storage.delete_dir(f"{STAGING_DIR}/{commit.run_id}")
    storage.delete(marker_path(commit.run_id))


def record_of(snap: Any) -> Commit | None:
    props = snap.summary.additional_properties if snap.summary else {}
    raw = props.get(PREFIX + "record")
    if not isinstance(raw, str):
        return None
    try:
        commit = Commit.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        logger.warning("iceberg snapshot %s: unreadable lakeop record", snap.snapshot_id)
        return None
    return replace(commit, seq=int(snap.sequence_number or 0))


def records(table: Table) -> list[Commit]:
    """The lakeop records of the table's snapshots, in commit order."""
    snaps = sorted(table.metadata.snapshots, key=lambda s: (s.sequence_number or 0, s.timestamp_ms))
    return [r for r in (record_of(s) for s in snaps) if r is not None]


def live_data_files(table: Table) -> list[IcebergDataFile]:
    snap = table.current_snapshot()
    if snap is None:
        return []
    out: list[IcebergDataFile] = []
    for m in snap.manifests(table.io):
        out.extend(e.data_file for e in m.fetch_manifest_entry(table.io, discard_deleted=True))
    return out


def partition_key(partition: Record) -> tuple[Any, ...]:
    return tuple(partition[i] for i in range(len(partition)))


def hive_values(partition: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for part in partition.split("/") if partition else []:
        key, _, value = part.partition("=")
        out[key] = None if value == NULL_PARTITION else value
    return out


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
