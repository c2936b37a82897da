"""Each partition strategy, checked by DuckDB and pyarrow.dataset against the source rows."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from enginekit import csv_source, dataset, duck, plan, run, write_csv

from lakeop.core.lake.partitioning import NULL_PARTITION, hash_python, range_index, range_labels

N = 3000


def make_rows(seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    base = dt.datetime(2026, 1, 30, 20, tzinfo=dt.UTC)
    rows = []
    for i in range(N):
        ts = base + dt.timedelta(seconds=rng.randrange(0, 5 * 86400))
        rows.append(
            {
                "id": i,
                "user": None if i % 97 == 0 else f"user-{rng.randrange(200)}",
                "ts": None if i % 101 == 0 else ts,
                "amount": None if i % 89 == 0 else round(rng.uniform(-20, 120), 2),
                "country": rng.choice(["DE", "FR", "US", "JP", None]),
            }
        )
    return rows


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    rows = make_rows()
    path = tmp_path_factory.mktemp("src") / "events.csv"
    write_csv(
        path,
        "id,user,ts,amount,country",
        [",".join(fmt(r[k]) for k in ("id", "user", "ts", "amount", "country")) for r in rows],
    )
    return path, rows


def ingest(tmp_path: Path, src: Path, partitioning: dict[str, Any] | None) -> Path:
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), partitioning=partitioning))
    assert result.error is None
    assert result.rows_written == N and result.rows_read == N and result.rows_rejected == 0
    return lake


def check_totals(lake: Path, rows: list[dict[str, Any]]) -> None:
    count, ids, amount = duck(lake, "SELECT count(*), sum(id), sum(amount) FROM t")[0]
    assert count == N and ids == sum(r["id"] for r in rows)
    assert amount == pytest.approx(sum(r["amount"] or 0 for r in rows))
    table = dataset(lake)
    assert table.num_rows == N
    assert sorted(table.column("id").to_pylist()) == list(range(N))


def part_of(filename: str, key: str) -> str:
    for piece in filename.split("/"):
        if piece.startswith(key + "="):
            return piece.split("=", 1)[1]
    raise AssertionError(f"{key} not in {filename}")


def by_id(lake: Path) -> dict[int, str]:
    return {int(i): str(f) for i, f in duck(lake, "SELECT id, filename FROM t")}


@pytest.mark.parametrize("granularity", ["year", "month", "day", "hour"])
def test_date(tmp_path: Path, source: tuple[Path, list[dict[str, Any]]], granularity: str) -> None:
    src, rows = source
    lake = ingest(tmp_path, src, {"strategy": "date", "column": "ts", "granularity": granularity})
    check_totals(lake, rows)
    files = by_id(lake)
    levels = ["year", "month", "day", "hour"][
        : ["year", "month", "day", "hour"].index(granularity) + 1
    ]
    for r in rows:
        for level in levels:
            got = part_of(files[r["id"]], level)
            want = NULL_PARTITION if r["ts"] is None else str(getattr(r["ts"], level))
            assert got == want, (r, level, files[r["id"]])
    # DuckDB reads the null partition back as NULL
    # (DuckDB 1.4 leaves the label in a column it reads as text; newer ones map it to NULL)
    where = f"year IS NULL OR year::VARCHAR = '{NULL_PARTITION}'"
    nulls = duck(lake, f"SELECT count(*) FROM t WHERE {where}")[0][0]
    assert nulls == sum(1 for r in rows if r["ts"] is None)


def test_hash(tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]) -> None:
    src, rows = source
    lake = ingest(tmp_path, src, {"strategy": "hash", "column": "user", "buckets": 16})
    check_totals(lake, rows)
    files = by_id(lake)
    for r in rows:
        want = NULL_PARTITION if r["user"] is None else str(hash_python(r["user"]) % 16)
        assert part_of(files[r["id"]], "bucket") == want
    assert len({part_of(f, "bucket") for f in files.values()}) == 17  # 16 buckets + null


def test_hash_on_long_column(tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]) -> None:
    src, rows = source
    lake = ingest(tmp_path, src, {"strategy": "hash", "column": "id", "buckets": 8})
    files = by_id(lake)
    for r in rows:
        assert part_of(files[r["id"]], "bucket") == str(hash_python(r["id"]) % 8)


def test_range(tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]) -> None:
    src, rows = source
    bounds = [0, 10.5, 100]
    lake = ingest(tmp_path, src, {"strategy": "range", "column": "amount", "boundaries": bounds})
    check_totals(lake, rows)
    labels = range_labels(bounds)
    assert labels == sorted(labels)
    files = by_id(lake)
    for r in rows:
        want = NULL_PARTITION if r["amount"] is None else labels[range_index(bounds, r["amount"])]
        assert part_of(files[r["id"]], "amount_range") == want
    got = {f.name for f in lake.iterdir() if f.name.startswith("amount_range=")}
    assert got == {f"amount_range={x}" for x in [*labels, NULL_PARTITION]}


def test_list(tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]) -> None:
    src, rows = source
    spec = {
        "strategy": "list",
        "column": "country",
        "values": {"eu": ["DE", "FR"], "us": ["US"]},
        "default": "other",
    }
    lake = ingest(tmp_path, src, spec)
    check_totals(lake, rows)
    files = by_id(lake)
    groups = {"DE": "eu", "FR": "eu", "US": "us", "JP": "other", None: NULL_PARTITION}
    for r in rows:
        assert part_of(files[r["id"]], "country_group") == groups[r["country"]]
    counts = dict(duck(lake, "SELECT country_group, count(*) FROM t GROUP BY ALL"))
    assert counts["eu"] == sum(1 for r in rows if r["country"] in ("DE", "FR"))


def test_unpartitioned_and_compression(
    tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]
) -> None:
    src, rows = source
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), compression="zstd"))
    assert result.files_written == 1 and result.partitions == [""]
    check_totals(lake, rows)
    (f,) = list(lake.glob("*.parquet"))
    meta = pq.ParquetFile(f).metadata
    col = meta.row_group(0).column(0)
    assert col.compression == "ZSTD" and col.statistics is not None
    assert col.statistics.min == 0 and col.statistics.max == N - 1
    ts_type = pq.read_schema(f).field("ts").type
    assert str(ts_type) == "timestamp[us, tz=UTC]"
