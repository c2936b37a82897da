"""A SQL source far larger than memory allows streams: the columnar path (ADBC) reads
PostgreSQL's and SQLite's rows batch by batch, never the whole result.

Each read runs in its own process, which reports the rows it saw and its peak RSS (VmHWM).
The interpreter with pyarrow and SQLAlchemy takes about 120 MiB; the results are 600 MB of
text (PostgreSQL, bound 350 MiB) and 240 MB (SQLite, which makes rows slowly; bound 250 MiB),
so holding either whole would break its bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PG_QUERY = (
    "SELECT g AS id, repeat('x', 590) || g::text AS payload FROM generate_series(1, 1000000) g"
)
SQLITE_QUERY = (
    "WITH RECURSIVE g(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM g WHERE id < 400000) "
    f"SELECT id, '{'x' * 590}' || id AS payload FROM g"
)
READ = """
import json, sys
import lakeop.sources.sql as sql
url, query = sys.argv[1], sys.argv[2]
columnar = []
opener = sql.arrow_reader
def spy(*args):
    opened = opener(*args)
    columnar.append(opened is not None)
    return opened
sql.arrow_reader = spy
rows = 0
progress = sql.SqlProgress()
for raw in sql.read_sql(url, query, incremental_column="id", intervals=None, batch_rows=50_000,
                        columns=("id", "payload"), progress=progress):
    rows += raw.batch.num_rows
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"rows": rows, "watermark": progress.watermark, "columnar": columnar,
                  "peak_mib": int(hwm.split()[1]) / 1024}))
"""


def read_in_child(url: str, query: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", READ, url, query], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def check(result: dict[str, object], rows: int, peak_mib: float) -> None:
    assert result["columnar"] == [True]
    assert result["rows"] == rows
    assert result["watermark"] == rows
    assert isinstance(result["peak_mib"], float) and result["peak_mib"] < peak_mib, result


@pytest.mark.slow
@pytest.mark.postgres
def test_a_huge_postgres_result_streams_in_bounded_memory(postgres_url: str) -> None:
    check(read_in_child(postgres_url, PG_QUERY), 1_000_000, 350)


@pytest.mark.slow
def test_a_huge_sqlite_result_streams_in_bounded_memory(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    check(read_in_child(f"sqlite:///{db}", SQLITE_QUERY), 400_000, 250)
