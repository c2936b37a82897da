"""SQL rows as Arrow without Python objects: PostgreSQL and SQLite through ADBC.

:func:`lakeop.sources.sql.read_sql` hands the data query here once SQLAlchemy has checked it
(columns, incremental and split column). PostgreSQL runs it through ``adbc-driver-postgresql``
(binary ``COPY (query) TO STDOUT``, read as it arrives: record batches stream, the result is
never held whole), SQLite through ``adbc-driver-sqlite``. Any other URL, a missing driver or
parameter values this module does not render keep SQLAlchemy's path (:func:`arrow_reader`
returns None); so does a query with a column type whose Arrow form differs from what the
SQLAlchemy path gives (intervals, types ADBC does not know), decided from the result schema
before a single row is read, so no row is read twice or lost.

What the batches hold matches the SQLAlchemy path column by column: values of plain types
as Arrow gives them (conform casts them to the declared types), arrays and composite values as
JSON text, UUIDs as text, columns the schema does not declare as nulls. Bound values (the
claim's intervals, a share's key range) are rendered as literals by the driver's own rules
(psycopg's for PostgreSQL, so typed exactly as psycopg binds them). The URL, which may hold a
password, never appears in an error.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import closing, suppress
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakeop.errors import SourceNotFoundError, StorageUnavailableError

if TYPE_CHECKING:
    import sqlalchemy as sa


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _pg_literal(value: Any) -> str | None:
    if not _available("psycopg"):
        return None
    from psycopg import sql as psql  # noqa: PLC0415

    return str(psql.Literal(value).as_string())


def _sqlite_literal(value: Any) -> str | None:
    """Values pysqlite binds as themselves (others: SQLAlchemy's path)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None


def _render(sql: str, params: Mapping[str, Any], literal: Any) -> str | None:
    """``sql`` with each ``:name`` of ``params`` replaced by its literal; None if one has
    none (the caller keeps SQLAlchemy's binding)."""
    rendered: dict[str, str] = {}
    for name, value in params.items():
        text = literal(value)
        if text is None:
            return None
        rendered[name] = text
    if not rendered:
        return sql
    names = "|".join(re.escape(n) for n in sorted(rendered, key=len, reverse=True))
    return re.sub(rf":({names})\b", lambda m: rendered[m.group(1)], sql)


def _scrub(message: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def arrow_reader(url: sa.URL, sql: str, params: Mapping[str, Any]) -> _Opened | None:
    """An open ADBC connection and the query's batch reader, or None where this module does
    not take the query (then nothing was read). Raises what the SQLAlchemy path raises for a
    connection that fails (StorageUnavailableError) or a query that does (SourceNotFoundError)."""
    backend = url.get_backend_name()
    secrets = (url.render_as_string(hide_password=False), str(url.password or ""))
    if backend == "postgresql" and _available("adbc_driver_postgresql"):
        text = _render(sql, params, _pg_literal)
        if text is None:
            return None
        import adbc_driver_postgresql.dbapi as driver  # noqa: PLC0415

        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connect: Any = lambda: driver.connect(uri)  # noqa: E731
    elif backend == "sqlite" and _available("adbc_driver_sqlite") and url.database:
        text = _render(sql, params, _sqlite_literal)
        if text is None or url.query:
            return None
        import adbc_driver_sqlite.dbapi as driver  # noqa: PLC0415

        database = url.database
        connect = lambda: driver.connect(database)  # noqa: E731
    else:
        return None
    import adbc_driver_manager as adbc  # noqa: PLC0415

    try:
        conn = connect()
    except adbc.Error as e:
        message = _scrub(str(e), secrets)
        raise StorageUnavailableError(f"sql source: cannot connect: {message}") from None
    opened = _Opened(conn, secrets)
    try:
        opened.cursor = conn.cursor()
        opened.cursor.execute(text)
        opened.reader = opened.cursor.fetch_record_batch()
    except adbc.Error as e:
        opened.close()
        raise _error(e, secrets) from None
    except BaseException:
        opened.close()
        raise
    if not all(_kept(f.type) for f in opened.reader.schema):
        opened.close()
        return None
    return opened


class _Opened:
    """An ADBC connection, its cursor and the result's batch reader, closed together."""

    def __init__(self, conn: Any, secrets: tuple[str, ...]) -> None:
        self.conn = conn
        self.secrets = secrets
        self.cursor: Any = None
        self.reader: Any = None

    def close(self) -> None:
        for part in (self.reader, self.cursor, self.conn):
            if part is not None:
                with suppress(Exception):  # closing is best effort
                    part.close()


def _error(e: Exception, secrets: tuple[str, ...]) -> Exception:
    import adbc_driver_manager as adbc  # noqa: PLC0415

    message = _scrub(str(e).split("\nQuery was:", 1)[0].strip(), secrets)
    if isinstance(e, adbc.OperationalError) and "connection" in message.lower():
        return StorageUnavailableError(f"sql source: connection lost: {message}")
    return SourceNotFoundError(f"sql source: query failed: {message}")


def _plain(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    )


def _nested(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t))


def _uuid(t: pa.DataType) -> bool:
    return isinstance(t, pa.ExtensionType) and t.extension_name == "arrow.uuid"


def _kept(t: pa.DataType) -> bool:
    return _plain(t) or _nested(t) or _uuid(t)


def _as_sqlalchemy_gives(array: pa.Array) -> pa.Array:
    """A column as the SQLAlchemy path turns it into Arrow: arrays and records as JSON
    text, UUIDs as text, the rest as it is."""
    t = array.type
    if _nested(t):
        values = array.to_pylist()
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in values], pa.string()
        )
    if _uuid(t):
        return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())
    return array


def arrow_batches(
    opened: _Opened,
    batch_rows: int,
    wanted: tuple[str, ...],
    incremental_column: str | None,
) -> Iterator[tuple[pa.RecordBatch, Any]]:
    """(batch of at most ``batch_rows`` rows, its highest incremental value or None) as
    the rows arrive; the connection is closed when the batches end or the caller stops."""
    import adbc_driver_manager as adbc  # noqa: PLC0415

    names = opened.reader.schema.names
    with closing(opened):
        try:
            for raw in opened.reader:
                for lo in range(0, raw.num_rows, batch_rows):
                    part = raw.slice(lo, batch_rows)
                    arrays = [
                        _as_sqlalchemy_gives(part.column(i))
                        if name in wanted
                        else pa.nulls(part.num_rows)
                        for i, name in enumerate(names)
                    ]
                    high = None
                    if incremental_column:
                        col = part.column(names.index(incremental_column))
                        if col.null_count < len(col):
                            high = pc.max(col).as_py()
                    yield pa.RecordBatch.from_arrays(arrays, names=names), high
        except adbc.Error as e:
            raise _error(e, opened.secrets) from None
