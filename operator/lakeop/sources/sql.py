"""SQL sources: claimed intervals, split ranges, server-side streaming, fixed-size batches.

The query is wrapped as a subquery so that a run adds its own ``WHERE`` without parsing the
user's SQL. An incremental run reads exactly the intervals its claim holds
(``lower < <incrementalColumn> <= upper``, OR-ed; see :mod:`lakeop.core.lake.inputs`), ordered by
the incremental column; a share of a scaled-out run adds its key range on the split column
(``low <= <splitColumn> < high``, NULL keys to the first share). :func:`claim_sql` reads the
facts a claim is made of, once, in the claimer: the new interval's upper bound
(``max(<incrementalColumn>)`` above the lower one) and the split column's bounds over the
claimed rows. SQLAlchemy checks the query and reads the claim's facts; the rows of PostgreSQL
and SQLite arrive as Arrow through ADBC (:mod:`lakeop.sources.sql_arrow`: binary COPY, record
batches as they arrive), other databases' with ``stream_results`` (a server-side cursor) turned
into Arrow; either way in batches of at most ``batchSize`` rows, so memory stays bounded
whatever the table size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakeop.core.lake.inputs import Interval, SqlClaim, splittable, sql_intervals
from lakeop.core.lake.sharding import KeyRange
from lakeop.errors import InvalidSpecError, SourceNotFoundError, StorageUnavailableError
from lakeop.sources.readers import RawBatch
from lakeop.sources.sql_arrow import arrow_batches, arrow_reader

if TYPE_CHECKING:  # sqlalchemy is imported where used: file sources never pay for it
    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError


@dataclass
class SqlProgress:
    """The highest incremental value seen so far (the next watermark)."""

    watermark: Any = None


def _quote(engine: sa.Engine, name: str) -> str:
    return str(engine.dialect.identifier_preparer.quote(name))


def check_url(url: str, where: str) -> None:
    """Refuse, as bad input and before any claim or connection, a URL whose dialect or
    driver this lakeop cannot load (``mysql+pymysql://`` without the ``pymysql`` module).
    ``where`` names the Secret key the URL came from; the URL itself (it may hold a
    password) is never part of the message."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError  # noqa: PLC0415

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        raise InvalidSpecError(f"{where}: not a database URL (dialect+driver://...)") from e
    name = parsed.drivername
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError as e:
        raise InvalidSpecError(f"{where}: unknown database dialect {name!r}") from e
    except ImportError as e:
        raise InvalidSpecError(
            f"{where}: the driver for {name!r} is not installed ({e}); use a driver this "
            "image has, or an image with it"
        ) from e


def _engine(url: str) -> sa.Engine:
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    try:
        return sa.create_engine(url)
    except ImportError as e:
        raise InvalidSpecError(f"sql source: the database driver is not installed: {e}") from e
    except (SQLAlchemyError, ValueError) as e:
        raise SourceNotFoundError(f"sql source: cannot use the URL from the secret: {e}") from e


def _subquery(query: str) -> str:
    return f"SELECT * FROM ({query.strip().rstrip(';')}) AS lakeop_src"


def _connect(engine: sa.Engine) -> sa.Connection:
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    try:
        return engine.connect()
    except DBAPIError as e:
        engine.dispose()
        raise StorageUnavailableError(f"sql source: cannot connect: {e.orig}") from e


def _db_error(e: DBAPIError) -> Exception:
    if e.connection_invalidated:
        return StorageUnavailableError(f"sql source: connection lost: {e.orig}")
    return SourceNotFoundError(f"sql source: query failed: {e.orig}")


def interval_filter(
    col: str, intervals: Sequence[Interval], params: dict[str, Any], tag: str = "i"
) -> str:
    """SQL for "the key is in one of the intervals" (no interval: false); binds into
    ``params``. An interval without lower bound also takes NULL keys."""
    parts = []
    for n, iv in enumerate(intervals):
        terms = []
        if iv.lower is not None:
            params[f"lakeop_{tag}{n}_lo"] = iv.lower
            terms.append(f"{col} > :lakeop_{tag}{n}_lo")
        if iv.upper is not None:
            params[f"lakeop_{tag}{n}_hi"] = iv.upper
            terms.append(f"{col} <= :lakeop_{tag}{n}_hi")
        cond = " AND ".join(terms) or "1 = 1"
        parts.append(f"({cond} OR {col} IS NULL)" if iv.lower is None else f"({cond})")
    return "(" + " OR ".join(parts) + ")" if parts else "(1 = 0)"


def range_filter(col: str, key_range: KeyRange[Any], params: dict[str, Any]) -> str:
    """SQL for ``key_range.contains(<col>)``; binds into ``params``."""
    terms = []
    if key_range.lower is not None:
        params["lakeop_range_lo"] = key_range.lower
        terms.append(f"{col} >= :lakeop_range_lo")
    if key_range.upper is not None:
        params["lakeop_range_hi"] = key_range.upper
        terms.append(f"{col} < :lakeop_range_hi")
    cond = " AND ".join(terms) or "1 = 1"
    return f"({cond} OR {col} IS NULL)" if key_range.include_null else f"({cond})"


def claim_sql(
    url: str,
    query: str,
    *,
    incremental_column: str | None,
    lower: Any,
    adopted: Sequence[Interval],
    split_column: str | None,
) -> SqlClaim:
    """The SQL part of a new claim: adopted intervals plus ``(lower, max(<incremental>)]``
    (an incremental query), or the whole query (one unbounded interval); with a
    ``split_column``, its min and max over the claimed rows (what the shares cut)."""
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    engine = _engine(url)
    conn = _connect(engine)
    try:
        with conn:
            _check_columns(conn, query, incremental_column, split_column)
            if incremental_column:
                col = _quote(engine, incremental_column)
                params: dict[str, Any] = {}
                sql = f"SELECT max({col}) FROM ({_subquery(query)}) AS lakeop_q"
                if lower is not None:
                    sql += f" WHERE {col} > :lakeop_lower"
                    params["lakeop_lower"] = lower
                upper = conn.execute(sa.text(sql), params).scalar()
                intervals = sql_intervals(adopted, lower, upper)
            else:
                intervals = (Interval(None, None),)
            if not split_column or not intervals:
                return SqlClaim(incremental_column, intervals)
            low, high = _bounds(conn, engine, query, incremental_column, intervals, split_column)
            return SqlClaim(incremental_column, intervals, split_column, low, high)
    except DBAPIError as e:
        raise _db_error(e) from e
    finally:
        engine.dispose()


def _bounds(  # noqa: PLR0917
    conn: sa.Connection,
    engine: sa.Engine,
    query: str,
    incremental_column: str | None,
    intervals: Sequence[Interval],
    split_column: str,
) -> tuple[Any, Any]:
    """min and max of ``split_column`` over the claimed rows, checked to be splittable."""
    import sqlalchemy as sa  # noqa: PLC0415

    col = _quote(engine, split_column)
    params: dict[str, Any] = {}
    sql = f"SELECT min({col}), max({col}) FROM ({_subquery(query)}) AS lakeop_q"
    if incremental_column:
        sql += " WHERE " + interval_filter(_quote(engine, incremental_column), intervals, params)
    row = conn.execute(sa.text(sql), params).one()
    low, high = row[0], row[1]
    for value in (low, high):
        if value is not None and not splittable(value):
            raise InvalidSpecError(
                f"sql source: cannot split the query's rows on column {split_column!r}: its "
                f"values are of type {type(value).__name__} (e.g. {value!r}); "
                "spec.source.sql.splitColumn (or incrementalColumn) must be an integer, date "
                "or timestamp column to split a run over spec.parallelism pods"
            )
    return low, high


def read_sql(
    url: str,
    query: str,
    *,
    incremental_column: str | None,
    intervals: Sequence[Interval] | None,
    key_range: tuple[str, KeyRange[Any]] | None = None,
    batch_rows: int,
    columns: tuple[str, ...],
    progress: SqlProgress,
) -> Iterator[RawBatch]:
    """Yield batches of the query's rows turned into Arrow: with an incremental column, the
    rows in ``intervals`` (None: all rows), ordered by it; with ``key_range`` (column, range)
    only the rows whose key is in the range."""
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    engine = _engine(url)
    sql = _subquery(query)
    params: dict[str, Any] = {}
    where = []
    if incremental_column and intervals is not None:
        where.append(interval_filter(_quote(engine, incremental_column), intervals, params))
    if key_range is not None:
        where.append(range_filter(_quote(engine, key_range[0]), key_range[1], params))
    if where:
        sql += " WHERE " + " AND ".join(where)
    if incremental_column:
        sql += f" ORDER BY {_quote(engine, incremental_column)}"
    conn = _connect(engine)
    try:
        with conn:
            _check_columns(conn, query, incremental_column, key_range[0] if key_range else None)
            opened = arrow_reader(engine.url, sql, params)
            if opened is not None:  # PostgreSQL, SQLite: columnar, no Python objects
                yield from _arrow(opened, incremental_column, batch_rows, columns, progress)
                return
            result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
                sa.text(sql), params
            )
            yield from _batches(result, incremental_column, batch_rows, columns, progress)
    except DBAPIError as e:
        raise _db_error(e) from e
    finally:
        engine.dispose()


def _check_columns(
    conn: sa.Connection, query: str, incremental_column: str | None, split_column: str | None
) -> None:
    import sqlalchemy as sa  # noqa: PLC0415

    names = list(conn.execute(sa.text(f"{_subquery(query)} WHERE 1 = 0")).keys())
    for field, column in (("incrementalColumn", incremental_column), ("splitColumn", split_column)):
        if column and column not in names:
            raise SourceNotFoundError(
                f"sql source: {field} {column!r} is not a column of "
                f"the query (columns: {', '.join(names)})"
            )


def _arrow(
    opened: Any,
    incremental_column: str | None,
    batch_rows: int,
    columns: tuple[str, ...],
    progress: SqlProgress,
) -> Iterator[RawBatch]:
    done = 0
    for batch, high in arrow_batches(opened, batch_rows, columns, incremental_column):
        if high is not None:
            progress.watermark = high
        yield RawBatch(batch, "sql", done + 1)
        done += batch.num_rows


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
