"""PostgreSQL table -> date-partitioned snappy Parquet: ``lakeop ingest`` against DuckDB's
postgres extension (``postgres_scan``) doing the same work in the same run.

A throw-away PostgreSQL (Debian's packages, as the engine tests start it) gets the ingest
benchmark's generated events (``COPY ... FROM`` the CSV). lakeop reads it as a SQL source
(``SELECT * FROM events``, no incremental column: the whole table); DuckDB 1.4.4 loads the
postgres extension by path (the ``duckdb-ext-postgres`` wheel, no download) and runs
``COPY (SELECT *, year, month, day FROM postgres_scan(...)) TO ... (PARTITION_BY ...)``.
Each side runs in its own subprocess, interleaved; the best of ``--repeat`` is kept.

Usage: sql_bench.py [--rows N] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import duckdb
import ingest_bench as ib
from results import Row, record, table

sys.path[:0] = [str(ib.ROOT / "tests"), str(ib.ROOT / "tests" / "engine")]
from engine_services import postgres  # noqa: E402  (the tests' throw-away PostgreSQL)

from lakeop.duckext import extension_path  # noqa: E402

DUCKDB = """
import sys, duckdb
dsn, out, ext = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute(f"LOAD '{ext}'")
con.execute(f\"\"\"COPY (SELECT *, year("timestamp") AS year, month("timestamp") AS month,
    day("timestamp") AS day FROM postgres_scan('{dsn}', 'public', 'events'))
    TO '{out}' (FORMAT parquet, PARTITION_BY (year, month, day), COMPRESSION snappy)\"\"\")
"""


def load(url: str, csv: Path) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS events")
        c.execute(
            "CREATE TABLE events (user_id TEXT NOT NULL, event_type TEXT, "
            '"timestamp" TIMESTAMP, value DOUBLE PRECISION, country TEXT)'
        )
        with (
            csv.open("rb") as f,
            c.cursor().copy("COPY events FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        c.execute("VACUUM ANALYZE events")


def manifests(work: Path) -> Path:
    base = ib.manifests(work, "pg-date", work / "unused", "csv", {})
    docs = [json.loads(d) for d in base.read_text().split("---\n")]
    docs[0]["spec"]["partitioning"] = {"strategy": "date", "column": "timestamp"}
    docs[2]["spec"]["source"] = {
        "sql": {"urlSecretRef": {"name": "pg", "key": "url"}, "query": "SELECT * FROM events"}
    }
    base.write_text("---\n".join(json.dumps(d) + "\n" for d in docs))
    return base


def run_lakeop(work: Path, url: str) -> ib.Measured:
    m = manifests(work)
    summary = work / "pg-date.summary.json"
    env = {**os.environ, "LAKEOP_SOURCE_SQL_URL": url}
    cmd = [ib.LAKEOP, "ingest", "-f", str(m), "--output", "json", "--termination-log"]
    secs, rss = ib.measure([*cmd, str(summary)], env)
    return ib.Measured(secs, rss, int(json.loads(summary.read_text())["rowsWritten"]))


def run_duckdb(work: Path, url: str) -> ib.Measured:
    out = work / "duckdb_pg_out"
    shutil.rmtree(out, ignore_errors=True)
    dsn = url.replace("postgresql+psycopg", "postgresql")
    ext = str(extension_path("postgres_scanner"))
    secs, rss = ib.measure([ib.PY, "-c", DUCKDB, dsn, str(out), ext])
    got = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchall()
    shutil.rmtree(out, ignore_errors=True)
    return ib.Measured(secs, rss, int(got[0][0]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", default=str(ib.ROOT / ".bench" / "ingest"))
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    csv = ib.generate(work, args.rows, "csv")
    with postgres() as url:
        load(url, csv)
        ducks, lakes = [], []
        for _ in range(args.repeat):
            ducks.append(run_duckdb(work, url))
            lakes.append(run_lakeop(work, url))
    duck, lk = ib.best(ducks), ib.best(lakes)
    assert lk.rows == duck.rows == args.rows, (lk.rows, duck.rows, args.rows)
    print(f"sql bench: PostgreSQL table of {args.rows:,} rows, best of {args.repeat}")
    print(ib.line("duckdb postgres_scan COPY", duck))
    print(ib.line("lakeop sql -> date/day", lk, duck))
    record(
        Row(
            "PostgreSQL -> date/day",
            f"{args.rows:,}",
            lk.seconds,
            duck.seconds,
            lk.peak_rss_mib,
            duck.peak_rss_mib,
        )
    )
    shutil.rmtree(work / "lake", ignore_errors=True)
    if __name__ == "__main__":
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
