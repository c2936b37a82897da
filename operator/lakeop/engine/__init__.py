"""The ingestion engine: one run from a plan to a commit (see docs/ingestion.md).

``read_table`` reads a table's committed files under a schema version; the operator's totals
come from :func:`lakeop.engine.commitlog.table_totals`.
"""

from lakeop.engine.reader import read_table

__all__ = ["read_table"]
