"""``lakeop query (-f PATH | --table NS/NAME) "SQL"``: DuckDB over the table, any format.

The table appears in the SQL under its own name (``SELECT count(*) FROM events``; a name
with dashes is quoted: ``"user-events"``), as a view over what is *committed*:

- ``parquet``: the live files of lakeop's commit log (never a listing, so staged or
  half-published files of a running or dead run never show), read with ``union_by_name`` so
  files written under older schema versions are projected onto the current one (columns they
  lack read as NULL) and with the partition keys from the Hive paths;
- ``delta``: ``delta_scan`` of the table (its current version);
- ``iceberg``: ``iceberg_scan`` at the current metadata file (the Table's
  ``status.metadataLocation``, else the catalog's).

DuckDB and its extensions are the optional extra ``lakeop[query]``; the extensions load by
path from their pip wheels (:mod:`lakeop.duckext`), never downloaded at run time. Output: a
readable table on a terminal, CSV otherwise (``--output table|csv|json``).
Exit codes: 0 ok, 1 the query failed, 2 bad input (no such table, DuckDB not installed).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import yaml

from lakeop.cli.manifests import ManifestError
from lakeop.cli.options import counted
from lakeop.cli.tables import TableRef, add_table_arguments, table_of_args
from lakeop.core.constants import STORAGE_ENV_PREFIX
from lakeop.errors import LakeopError, TerminalError

OUTPUTS = ("table", "csv", "json")
INSTALL_HINT = "DuckDB is not installed: pip install 'lakeop[query]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_table_arguments(parser)
    parser.add_argument(
        "--output",
        choices=OUTPUTS,
        help="default: table on a terminal, else csv",
    )
    parser.add_argument("sql", metavar="SQL", help="the query; the table is named by its name")


def run(args: argparse.Namespace) -> int:
    try:
        ref = table_of_args(args, os.environ)
    except (LakeopError, ManifestError, OSError, yaml.YAMLError) as e:
        print(f"lakeop query: {e}", file=sys.stderr)
        return 2
    return show(ref, args.sql, args.output)


def show(ref: TableRef, sql: str, output: str | None) -> int:
    """Run ``sql`` over ``ref`` and print the result (``output`` None: table on a terminal,
    else csv)."""
    try:
        import duckdb  # noqa: PLC0415  (the optional extra)
    except ImportError:
        print(f"lakeop query: {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        con = connect(ref)
    except (LakeopError, OSError) as e:
        print(f"lakeop query: {e}", file=sys.stderr)
        return 2
    try:
        rel = con.sql(sql)
        if rel is None:  # a statement without a result
            return 0
        columns = list(rel.columns)
        rows = rel.fetchall()
    except duckdb.Error as e:
        print(f"lakeop query: {e}", file=sys.stderr)
        return 1
    write(sys.stdout, output or ("table" if sys.stdout.isatty() else "csv"), columns, rows)
    return 0


def connect(ref: TableRef) -> Any:
    """A DuckDB connection with the table as a view named by the table's name."""
    import duckdb  # noqa: PLC0415

    from lakeop.duckext import extension_path  # noqa: PLC0415

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    if ref.location.startswith("s3://"):
        con.execute(f"LOAD '{extension_path('httpfs')}'")
        _s3_secret(con, ref.env)
    source = scan_sql(ref, extension_path, con)
    con.execute(f"CREATE VIEW {quote(ref.name)} AS SELECT * FROM {source}")
    return con


def scan_sql(ref: TableRef, extension_path: Any, con: Any) -> str:
    """The table function that reads the committed table (loading its extension)."""
    if ref.format == "delta":
        con.execute(f"LOAD '{extension_path('delta')}'")
        return f"delta_scan({literal(local(ref.location))})"
    if ref.format == "iceberg":
        con.execute(f"LOAD '{extension_path('avro')}'")
        con.execute(f"LOAD '{extension_path('iceberg')}'")
        metadata = ref.metadata_location or getattr(ref.open(), "metadata_location", lambda: None)()
        if not metadata:
            raise TerminalError(f"{ref.label}: no Iceberg metadata yet (nothing committed)")
        return f"iceberg_scan({literal(local(metadata))})"
    files = sorted(ref.open().live_files())
    if not files:  # nothing committed: an empty relation, not an error
        return "(SELECT NULL AS no_rows WHERE false)"
    paths = ", ".join(literal(local(f"{ref.location}/{f}")) for f in files)
    return f"read_parquet([{paths}], hive_partitioning = true, union_by_name = true)"


def _s3_secret(con: Any, env: Mapping[str, str]) -> None:
    def get(key: str) -> str | None:
        return env.get(STORAGE_ENV_PREFIX + key) or env.get(key)

    parts = ["TYPE s3", "URL_STYLE 'path'"]
    params: list[str] = []
    for key, name in [
        ("AWS_ACCESS_KEY_ID", "KEY_ID"),
        ("AWS_SECRET_ACCESS_KEY", "SECRET"),
        ("AWS_SESSION_TOKEN", "SESSION_TOKEN"),
        ("AWS_REGION", "REGION"),
    ]:
        value = get(key)
        if value:
            parts.append(f"{name} ?")
            params.append(value)
    endpoint = get("AWS_ENDPOINT_URL")
    if endpoint:
        parts.append("ENDPOINT ?")
        params.append(endpoint.split("://", 1)[-1])
        parts.append("USE_SSL " + ("true" if endpoint.startswith("https") else "false"))
    con.execute(f"CREATE SECRET ({', '.join(parts)})", params)


def local(url: str) -> str:
    return url.removeprefix("file://")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------------------- output


def write(out: TextIO, fmt: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if fmt == "json":
        records = [dict(zip(columns, r, strict=True)) for r in rows]
        out.write(json.dumps(records, default=_plain, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        w.writerows([["" if v is None else _cell(v) for v in r] for r in rows])
    else:
        out.write(render_table(columns, rows))


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], noun: str = "row") -> str:
    """Columns padded to their widest cell, numbers right-aligned, NULL shown as such."""
    cells = [["NULL" if v is None else _cell(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float | decimal.Decimal) for r in rows)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str], header: bool = False) -> str:
        out = [
            v.rjust(w) if num and not header else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return " | ".join(out).rstrip() + "\n"

    text = line(columns, header=True) + "-+-".join("-" * w for w in widths) + "\n"
    text += "".join(line(r) for r in cells)
    return text + f"({counted(len(rows), noun)})\n"


def _cell(v: Any) -> str:
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list | dict):
        return json.dumps(v, default=_plain, ensure_ascii=False)
    return str(v)


def _plain(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return str(v)
