"""SQL sources through SQLAlchemy: server-side cursor, fixed-size batches, watermark.

The query is wrapped as a subquery so that an incremental run adds
``WHERE <incrementalColumn> > :watermark ORDER BY <incrementalColumn>`` without parsing the
user's SQL. Rows stream with ``stream_results`` (a named cursor on PostgreSQL) and are turned
into Arrow batches of ``batchSize`` rows, so memory stays bounded whatever the table size.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lakeop.errors import SourceNotFoundError, StorageUnavailableError
from lakeop.sources.readers import RawBatch


@dataclass
class SqlProgress:
    """The highest incremental value seen so far (the next watermark)."""

    watermark: Any = None


def encode_watermark(value: Any) -> Any:
    """A JSON-able form of a watermark value, decodable by :func:`decode_watermark`."""
    if isinstance(value, dt.datetime | dt.date):
        return {"type": type(value).__name__, "value": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"type": "decimal", "value": str(value)}
    return value


def decode_watermark(value: Any) -> Any:
    if isinstance(value, dict):
        kind, text = value.get("type"), value.get("value")
        if kind == "datetime":
            return dt.datetime.fromisoformat(str(text))
        if kind == "date":
            return dt.date.fromisoformat(str(text))
        if kind == "decimal":
            return decimal.Decimal(str(text))
    return value


def _quote(engine: sa.Engine, name: str) -> str:
    return str(engine.dialect.identifier_preparer.quote(name))


def read_sql(
    url: str,
    query: str,
    *,
    incremental_column: str | None,
    watermark: Any,
    batch_rows: int,
    columns: tuple[str, ...],
    progress: SqlProgress,
) -> Iterator[RawBatch]:
    """Yield batches of the query's rows as text-free Python values turned into Arrow."""
    try:
        engine = sa.create_engine(url)
    except (SQLAlchemyError, ValueError) as e:
        raise SourceNotFoundError(f"sql source: cannot use the URL from the secret: {e}") from e
    sql = f"SELECT * FROM ({query.strip().rstrip(';')}) AS lakeop_src"
    params: dict[str, Any] = {}
    if incremental_column:
        col = _quote(engine, incremental_column)
        if watermark is not None:
            sql += f" WHERE {col} > :lakeop_watermark"
            params["lakeop_watermark"] = watermark
        sql += f" ORDER BY {col}"
    progress.watermark = watermark
    try:
        conn = engine.connect()
    except DBAPIError as e:
        engine.dispose()
        raise StorageUnavailableError(f"sql source: cannot connect: {e.orig}") from e
    try:
        with conn:
            _check_columns(conn, query, incremental_column)
            result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
                sa.text(sql), params
            )
            yield from _batches(result, incremental_column, batch_rows, columns, progress)
    except DBAPIError as e:
        if e.connection_invalidated:
            raise StorageUnavailableError(f"sql source: connection lost: {e.orig}") from e
        raise SourceNotFoundError(f"sql source: query failed: {e.orig}") from e
    finally:
        engine.dispose()


def _check_columns(conn: sa.Connection, query: str, incremental_column: str | None) -> None:
    probe = f"SELECT * FROM ({query.strip().rstrip(';')}) AS lakeop_src WHERE 1 = 0"
    names = list(conn.execute(sa.text(probe)).keys())
    if incremental_column and incremental_column not in names:
        raise SourceNotFoundError(
            f"sql source: incrementalColumn {incremental_column!r} is not a column of "
            f"the query (columns: {', '.join(names)})"
        )


def _batches(
    result: sa.CursorResult[Any],
    incremental_column: str | None,
    batch_rows: int,
    columns: tuple[str, ...],
    progress: SqlProgress,
) -> Iterator[RawBatch]:
    names = list(result.keys())
    done = 0
    for part in result.partitions(batch_rows):
        rows = [tuple(r) for r in part]
        batch = _to_batch(names, rows, columns)
        if incremental_column:
            idx = names.index(incremental_column)
            values = [r[idx] for r in rows if r[idx] is not None]
            if values:
                progress.watermark = max(values)
        yield RawBatch(batch, "sql", done + 1)
        done += len(rows)


def _to_batch(
    names: list[str], rows: list[tuple[Any, ...]], wanted: tuple[str, ...]
) -> pa.RecordBatch:
    arrays = []
    out_names = []
    for i, name in enumerate(names):
        values = [r[i] for r in rows]
        out_names.append(name)
        arrays.append(_column(values) if name in wanted else pa.nulls(len(values)))
    return pa.RecordBatch.from_arrays(arrays, names=out_names)


def _column(values: list[Any]) -> pa.Array:
    """Arrow array from DB values. JSON documents and arrays travel as JSON text (conform
    parses them into the declared map/array/struct); mixed or exotic values as text."""
    if any(isinstance(v, dict | list | tuple) for v in values):
        return pa.array([None if v is None else json.dumps(v, default=str) for v in values])
    try:
        return pa.array(values, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
