"""Table formats behind one interface (:class:`~lakeop.engine.formats.base.TableFormat`):
``parquet`` (lakeop's directories and commit log) and ``delta`` (Delta Lake)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.lake.iceberg import CATALOG_ENV
from lakeop.core.runs.plan import PlanTable
from lakeop.engine.formats.base import Snapshot, TableFormat
from lakeop.engine.formats.parquet import ParquetFormat
from lakeop.errors import InvalidSpecError
from lakeop.storage import Storage, open_storage

__all__ = [
    "DELTA_LOG",
    "ParquetFormat",
    "Snapshot",
    "TableFormat",
    "detect",
    "open_format",
    "set_target",
    "table_status",
]

#: a Delta table's log directory: its presence tells a Delta table from a parquet one
DELTA_LOG = "_delta_log"


def set_target(storage: Storage, table: PlanTable, env: Mapping[str, str]) -> None:
    """Tell ``storage`` its table's format and what the format needs besides the location
    (an Iceberg table: its identifier, partitioning and the catalog URL from ``env``)."""
    storage.table_format = table.format
    if table.format == "iceberg" and table.iceberg is not None:
        from lakeop.engine.formats.iceberg_catalog import IcebergTarget  # noqa: PLC0415

        ns, name = table.iceberg
        uri = env.get(CATALOG_ENV) or storage.iceberg_catalog_uri
        storage.format_target = IcebergTarget(ns, name, table.partitioning, uri, table.name)


def open_format(storage: Storage, name: str = "parquet") -> TableFormat:
    """The table format ``name`` of the table at ``storage``; ``storage`` remembers it, so
    that what else opens the table through it (the claims) needs not tell it again."""
    storage.table_format = name
    if name == "parquet":
        return ParquetFormat(storage)
    if name == "delta":
        from lakeop.engine.formats.delta import DeltaFormat  # noqa: PLC0415  (deltalake is heavy)

        return DeltaFormat(storage)
    if name == "iceberg":
        from lakeop.engine.formats.iceberg import IcebergFormat  # noqa: PLC0415
        from lakeop.engine.formats.iceberg_catalog import IcebergTarget  # noqa: PLC0415

        target = storage.format_target
        if not isinstance(target, IcebergTarget):
            raise InvalidSpecError(f"iceberg table at {storage.url}: its catalog is not known")
        return IcebergFormat(storage, target)
    raise InvalidSpecError(f"table format {name!r}: one of parquet, delta, iceberg")


def detect(storage: Storage) -> TableFormat:
    """The format of an existing table, told from its files (for callers that know only
    the location: claims, the operator's release of a run): a Delta log makes it ``delta``,
    an Iceberg table's ``_lakeop/iceberg.json`` (its identifier, never its catalog's URL,
    which comes from the opener's environment) makes it ``iceberg``.
    A storage whose ``table_format`` its opener set is not probed."""
    if storage.table_format is not None and (
        storage.table_format != "iceberg" or storage.format_target is not None
    ):
        return open_format(storage, storage.table_format)
    if storage.table_format in {None, "iceberg"}:
        from lakeop.engine.formats.iceberg_catalog import read_target  # noqa: PLC0415

        target = read_target(storage)
        if target is not None:
            storage.format_target = target
            return open_format(storage, "iceberg")
    if storage.list_files(DELTA_LOG, recursive=False):
        return open_format(storage, "delta")
    return ParquetFormat(storage)


def table_status(
    location: str,
    storage_env: Mapping[str, str],
    prefix: str,
    table_format: str | None = None,
    small_below: float | None = None,
    *,
    table: PlanTable | None = None,
) -> dict[str, Any]:
    """For the operator: the committed totals (``rows, files, bytes, partitions,
    lastCommitTime``) and ``snapshot`` (``{id, timestamp}``) of the table at ``location``,
    from its format's metadata. ``table_format`` None: told from the table's files;
    ``table`` (the Table's spec): an Iceberg table's identifier, before any run wrote it."""
    storage = open_storage(location, storage_env, prefix)
    storage.table_format = table_format
    if table is not None:
        set_target(storage, table, storage_env)
    fmt = detect(storage)
    if isinstance(fmt, ParquetFormat):  # lakeop's own log: one fold per new commit
        out = fmt.status(small_below)
        snapshot = out.pop("snapshot", None)
        if snapshot is not None:
            out["snapshot"] = snapshot.to_status()
        return out
    out = dict(fmt.totals())
    snap = fmt.snapshot()
    if snap is not None:
        out["snapshot"] = snap.to_status()
    metadata = getattr(fmt, "metadata_location", None)  # iceberg: for any engine to read
    if metadata is not None:
        out["metadataLocation"] = metadata()
    if small_below is not None:  # status.smallFiles: files under 75% of the compaction target
        out["smallFiles"] = sum(1 for f in fmt.live_files().values() if f.bytes < small_below)
    return out
