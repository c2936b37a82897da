"""Independent readers of Delta tables for engine tests: DuckDB's ``delta_scan`` (the
extension loaded by path from its wheel: nothing is downloaded) and delta-rs's own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from lakeop.duckext import delta_extension, extension_path


def duck_delta(
    location: str | Path,
    query: str = "SELECT * FROM t",
    *,
    s3: dict[str, str] | None = None,
) -> list[tuple[Any, ...]]:
    """Run ``query`` over view ``t``: the table's current version as DuckDB reads it.
    ``s3``: endpoint, key and secret of an S3-compatible server for an ``s3://`` table."""
    con = duckdb.connect()
    try:
        con.execute(f"LOAD '{delta_extension()}'")
        if s3 is not None:
            con.execute(f"LOAD '{extension_path('httpfs')}'")
            con.execute(
                "CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?, URL_STYLE 'path', "
                "USE_SSL false, REGION 'us-east-1')",
                [s3["key"], s3["secret"], s3["endpoint"]],
            )
        con.execute(f"CREATE VIEW t AS SELECT * FROM delta_scan('{location}')")
        return con.sql(query).fetchall()
    finally:
        con.close()


def delta_table(location: str | Path, options: dict[str, str] | None = None) -> pa.Table:
    """The current version as delta-rs reads it."""
    table = DeltaTable(str(location), storage_options=options)
    return pa.table(table.to_pyarrow_table())
