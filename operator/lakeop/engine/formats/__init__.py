"""Table formats behind one interface (:class:`~lakeop.engine.formats.base.TableFormat`):
``parquet`` (lakeop's directories and commit log) and ``delta`` (Delta Lake)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.engine.formats.base import Snapshot, TableFormat
from lakeop.engine.formats.parquet import ParquetFormat
from lakeop.errors import InvalidSpecError
from lakeop.storage import Storage, open_storage, retrying

__all__ = [
    "DELTA_LOG",
    "ParquetFormat",
    "Snapshot",
    "TableFormat",
    "detect",
    "open_format",
    "table_status",
]

#: a Delta table's log directory: its presence tells a Delta table from a parquet one
DELTA_LOG = "_delta_log"


def open_format(storage: Storage, name: str = "parquet") -> TableFormat:
    """The table format ``name`` of the table at ``storage``."""
    if name == "parquet":
        return ParquetFormat(storage)
    if name == "delta":
        from lakeop.engine.formats.delta import DeltaFormat  # noqa: PLC0415  (deltalake is heavy)

        return DeltaFormat(storage)
    raise InvalidSpecError(f"table format {name!r}: one of parquet, delta")


def detect(storage: Storage) -> TableFormat:
    """The format of an existing table, told from its files (for callers that know only
    the location: claims, the operator's release of a run): a Delta log makes it ``delta``.
    A storage whose ``table_format`` its opener set is not probed."""
    if storage.table_format is not None:
        return open_format(storage, storage.table_format)
    if retrying(lambda: storage.list_files(DELTA_LOG, recursive=False)):
        return open_format(storage, "delta")
    return ParquetFormat(storage)


def table_status(
    location: str,
    storage_env: Mapping[str, str],
    prefix: str,
    table_format: str | None = None,
    small_below: float | None = None,
) -> dict[str, Any]:
    """For the operator: the committed totals (``rows, files, bytes, partitions,
    lastCommitTime``) and ``snapshot`` (``{id, timestamp}``) of the table at ``location``,
    from its format's metadata. ``table_format`` None: told from the table's files."""
    storage = open_storage(location, storage_env, prefix)
    storage.table_format = table_format
    fmt = detect(storage)
    out = dict(fmt.totals())
    snap = fmt.snapshot()
    if snap is not None:
        out["snapshot"] = snap.to_status()
    if small_below is not None:  # status.smallFiles: files under 75% of the compaction target
        out["smallFiles"] = sum(1 for f in fmt.live_files().values() if f.bytes < small_below)
    return out
