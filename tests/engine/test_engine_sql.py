"""SQL sources: SQLite and a real PostgreSQL, batches, types and the incremental watermark."""

from __future__ import annotations

import datetime as dt
import decimal
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from enginekit import duck, plan, run

from lakeop.core.spec.sources import SecretKeyRef, SqlSourceSpec
from lakeop.engine.commitlog import CommitLog
from lakeop.errors import SourceNotFoundError
from lakeop.storage import open_storage

FIELDS = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "updated_at", "type": "timestamp"},
    {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
)


def source(query: str = "SELECT * FROM events", incremental: str | None = "id") -> SqlSourceSpec:
    return SqlSourceSpec(SecretKeyRef("db", "url"), query, incremental)


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "LAKEOP_SOURCE_SQL_URL": url}


def fill(engine: sa.Engine, start: int, count: int) -> None:
    sqlite = engine.dialect.name == "sqlite"  # stores text; exercises casts from strings

    def text(v: object) -> object:
        if not sqlite:
            return v
        return v.isoformat() if isinstance(v, dt.datetime) else str(v)

    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO events (id, name, updated_at, amount) VALUES (:i, :n, :u, :a)"),
            [
                {
                    "i": i,
                    "n": f"n{i}",
                    "u": text(base + dt.timedelta(minutes=i)),
                    "a": text(decimal.Decimal(i) / 4),
                }
                for i in range(start, start + count)
            ],
        )


def check_incremental(tmp_path: Path, url: str, engine: sa.Engine) -> None:
    lake = tmp_path / "lake"
    fill(engine, 0, 2500)
    first = run(plan(lake, source(), fields=FIELDS, run_id="s1", batch_size=300), env_for(url))
    assert first.rows_written == 2500
    fill(engine, 2500, 40)
    second = run(plan(lake, source(), fields=FIELDS, run_id="s2", batch_size=300), env_for(url))
    assert second.rows_written == 40
    nothing = run(plan(lake, source(), fields=FIELDS, run_id="s3"), env_for(url))
    assert nothing.rows_written == 0 and nothing.files_written == 0
    count, distinct, amount = duck(lake, "SELECT count(*), count(DISTINCT id), sum(amount) FROM t")[
        0
    ]
    assert (count, distinct) == (2540, 2540)
    assert amount == sum(decimal.Decimal(i) / 4 for i in range(2540))
    commits = CommitLog(open_storage(str(lake))).commits()
    assert [c.watermark for c in commits] == [2499, 2539]
    got = duck(lake, "SELECT epoch(updated_at)::BIGINT FROM t WHERE id = 60")[0][0]
    assert got == int(dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC).timestamp())


def test_sqlite_incremental(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/src.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, "
                "updated_at TEXT, amount TEXT)"
            )
        )
    check_incremental(tmp_path, url, engine)
    engine.dispose()


def test_sql_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/src.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id INTEGER)"))
    engine.dispose()
    lake = tmp_path / "lake"
    with pytest.raises(SourceNotFoundError, match=r"LAKEOP_SOURCE_SQL_URL .* is not set"):
        run(plan(lake, source(), fields=FIELDS), {})
    with pytest.raises(SourceNotFoundError, match="query failed: no such table: nope"):
        run(plan(lake, source("SELECT * FROM nope"), fields=FIELDS), env_for(url))
    with pytest.raises(SourceNotFoundError, match="incrementalColumn 'ts' is not a column"):
        run(plan(lake, source(incremental="ts"), fields=FIELDS), env_for(url))


@pytest.mark.postgres
def test_postgres_incremental_and_types(tmp_path: Path, postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS events"))
        conn.execute(
            sa.text(
                "CREATE TABLE events (id BIGINT PRIMARY KEY, name TEXT, "
                "updated_at TIMESTAMPTZ, amount NUMERIC(10,2), "
                "props JSONB, tags TEXT[])"
            )
        )
    check_incremental(tmp_path, postgres_url, engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE events SET props = '{\"k\": \"v\"}', tags = ARRAY['a','b'] WHERE id = 7"
            )
        )
    nested = (
        *FIELDS,
        {"name": "props", "type": "map", "values": "string"},
        {"name": "tags", "type": "array", "items": "string"},
    )
    lake = tmp_path / "nested"
    q = source("SELECT * FROM events WHERE id < 10", incremental="updated_at")
    result = run(plan(lake, q, fields=nested, run_id="n1", batch_size=4), env_for(postgres_url))
    assert result.rows_written == 10
    got = duck(lake, "SELECT props['k'], tags FROM t WHERE id = 7")
    assert got == [("v", ["a", "b"])]
    (commit,) = CommitLog(open_storage(str(lake))).commits()
    assert commit.watermark["type"] == "datetime"
    engine.dispose()
