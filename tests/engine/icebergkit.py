"""Helpers for Iceberg engine tests: plans for ``format: iceberg`` and independent readers
(DuckDB 1.4's ``iceberg_scan`` with the extension wheels loaded by path, pyiceberg's scan)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from lakeop.core.lake.iceberg import CATALOG_NAME, EMBEDDED_CATALOG

EXTENSIONS = Path(duckdb.__file__).parent.parent / "duckdb_ext" / "extensions"


def extension(name: str) -> Path:
    found = sorted(EXTENSIONS.glob(f"*/*/{name}.duckdb_extension"))
    if not found:
        raise FileNotFoundError(f"duckdb extension {name} is not installed")
    return found[-1]


def catalog(location: str | Path, uri: str | None = None) -> SqlCatalog:
    loc = str(location).removeprefix("file://")
    return SqlCatalog(
        CATALOG_NAME, uri=uri or f"sqlite:///{loc}/{EMBEDDED_CATALOG}", init_catalog_tables="false"
    )


def table(location: str | Path, uri: str | None = None, ident: str = "t.events") -> Table:
    """The table as loaded now (scans need only its FileIO: the catalog is closed)."""
    cat = catalog(location, uri)
    try:
        return cat.load_table(ident)
    finally:
        cat.engine.dispose()


def pyiceberg_rows(location: str | Path, uri: str | None = None, **kw: Any) -> pa.Table:
    return table(location, uri, **kw).scan().to_arrow()


def duck_connect(s3: dict[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension('avro')}'")
    con.execute(f"LOAD '{extension('iceberg')}'")
    if s3:
        con.execute(f"LOAD '{extension('httpfs')}'")
        con.execute(
            "CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?, URL_STYLE 'path', "
            "USE_SSL false, REGION 'us-east-1')",
            [s3["key"], s3["secret"], s3["endpoint"]],
        )
    return con


def duck_rows(
    metadata_location: str, query: str = "SELECT * FROM t", s3: dict[str, str] | None = None
) -> list[tuple[Any, ...]]:
    """``query`` over the table as DuckDB's ``iceberg_scan`` reads it at a metadata file."""
    con = duck_connect(s3)
    con.execute(f"CREATE VIEW t AS SELECT * FROM iceberg_scan('{metadata_location}')")
    return con.sql(query).fetchall()
