"""Table formats behind one interface (:class:`~lakeop.engine.formats.base.TableFormat`):
``parquet`` (lakeop's directories and commit log) and ``delta`` (Delta Lake)."""

from __future__ import annotations

from lakeop.engine.formats.base import Snapshot, TableFormat
from lakeop.engine.formats.parquet import ParquetFormat
from lakeop.errors import InvalidSpecError
from lakeop.storage import Storage, retrying

__all__ = ["DELTA_LOG", "ParquetFormat", "Snapshot", "TableFormat", "detect", "open_format"]

#: a Delta table's log directory: its presence tells a Delta table from a parquet one
DELTA_LOG = "_delta_log"


def open_format(storage: Storage, name: str = "parquet") -> TableFormat:
    """The table format ``name`` of the table at ``storage``."""
    if name == "parquet":
        return ParquetFormat(storage)
    raise InvalidSpecError(f"table format {name!r}: one of parquet")


def detect(storage: Storage) -> TableFormat:
    """The format of an existing table, told from its files (for callers that know only
    the location: claims, the operator's release of a run): a Delta log makes it ``delta``.
    A storage whose ``table_format`` its opener set is not probed."""
    if storage.table_format is not None:
        return open_format(storage, storage.table_format)
    if retrying(lambda: storage.list_files(DELTA_LOG, recursive=False)):
        return open_format(storage, "delta")
    return ParquetFormat(storage)
