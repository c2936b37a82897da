"""``format: delta``: every partition strategy written as one Delta commit and read back
row by row by DuckDB's ``delta_scan`` and by delta-rs; retries and overwrites."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltakit import delta_table, duck_delta
from deltalake import DeltaTable
from enginekit import EVENTS, csv_source, plan, run, write_csv
from test_engine_strategies import make_rows

from lakeop.core.lake.partitioning import hash_python, range_index, range_labels
from lakeop.core.schema.parse import parse_fields
from lakeop.engine.formats import open_format
from lakeop.engine.formats.delta import DeltaFormat
from lakeop.engine.reader import read_table
from lakeop.errors import TerminalError
from lakeop.storage import open_storage

COLUMNS = ("id", "user", "ts", "amount", "country")


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    rows = make_rows(seed=11)
    path = tmp_path_factory.mktemp("src") / "events.csv"
    write_csv(path, ",".join(COLUMNS), [",".join(fmt(r[k]) for k in COLUMNS) for r in rows])
    return path, rows


def expected_key(r: dict[str, Any], spec: dict[str, Any] | None) -> tuple[Any, ...]:
    """The partition column values lakeop must give row ``r`` (None: the null partition)."""
    if spec is None:
        return ()
    s = spec["strategy"]
    if s == "date":
        levels = ["year", "month", "day", "hour"]
        levels = levels[: levels.index(spec["granularity"]) + 1]
        return tuple(None if r["ts"] is None else getattr(r["ts"], lv) for lv in levels)
    if s == "hash":
        v = r[spec["column"]]
        return (None if v is None else hash_python(v) % spec["buckets"],)
    if s == "range":
        v = r[spec["column"]]
        labels = range_labels(spec["boundaries"])
        return (None if v is None else labels[range_index(spec["boundaries"], v)],)
    groups = {m: g for g, ms in spec["values"].items() for m in ms}
    v = r[spec["column"]]
    return (None if v is None else groups.get(v, spec["default"]),)


def key_columns(spec: dict[str, Any] | None) -> list[str]:
    if spec is None:
        return []
    if spec["strategy"] == "date":
        levels = ["year", "month", "day", "hour"]
        return levels[: levels.index(spec["granularity"]) + 1]
    if spec["strategy"] == "hash":
        return ["bucket"]
    suffix = "_range" if spec["strategy"] == "range" else "_group"
    return [spec["column"] + suffix]


STRATEGIES: list[dict[str, Any] | None] = [
    None,
    {"strategy": "date", "column": "ts", "granularity": "year"},
    {"strategy": "date", "column": "ts", "granularity": "day"},
    {"strategy": "date", "column": "ts", "granularity": "hour"},
    {"strategy": "hash", "column": "user", "buckets": 16},
    {"strategy": "range", "column": "amount", "boundaries": [0, 10.5, 100]},
    {
        "strategy": "list",
        "column": "country",
        "values": {"eu": ["DE", "FR"], "us": ["US"]},
        "default": "other",
    },
]


def check_rows(location: str | Path, rows: list[dict[str, Any]], spec: Any, **kw: Any) -> None:
    """DuckDB's delta_scan and delta-rs read exactly ``rows``, each with its partition key."""
    keys = key_columns(spec)
    cols = ", ".join([*COLUMNS, *keys])
    got = duck_delta(location, f"SELECT {cols} FROM t ORDER BY id", s3=kw.get("s3"))
    assert len(got) == len(rows)
    for r, g in zip(rows, got, strict=True):
        want = tuple(r[c] for c in COLUMNS)
        assert g[:5] == want, (g, want)
        key = tuple(None if v is None else v for v in g[5:])
        assert key == expected_key(r, spec), (g, r)
    table = delta_table(location, kw.get("options")).sort_by("id")
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    assert table.column("user").to_pylist() == [r["user"] for r in rows]
    assert table.column("amount").to_pylist() == [r["amount"] for r in rows]
    for i, k in enumerate(keys):
        assert table.column(k).to_pylist() == [expected_key(r, spec)[i] for r in rows]


def spec_id(spec: dict[str, Any] | None) -> str:
    return "none" if spec is None else str(spec.get("granularity", spec["strategy"]))


@pytest.mark.parametrize("spec", STRATEGIES, ids=spec_id)
def test_every_strategy_reads_back(
    tmp_path: Path, source: tuple[Path, list[dict[str, Any]]], spec: dict[str, Any] | None
) -> None:
    src, rows = source
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), partitioning=spec, table_format="delta"))
    assert result.error is None and result.rows_written == len(rows)
    table = DeltaTable(str(lake))
    assert table.version() == 1  # created (0), then the run's one commit
    assert sorted(table.metadata().partition_columns) == sorted(key_columns(spec))
    check_rows(lake, rows, spec)
    # the commit carries the run's record and its application transaction
    record = json.loads(table.history(1)[0]["lakeop"])
    assert record["run_id"] == "run-1" and record["schema_version"] == 1
    assert record["sources"][0]["uri"] == f"file://{src}"
    assert table.transaction_version("lakeop-run-run-1") == 1
    totals = open_format(open_storage(f"file://{lake}"), "delta").totals()
    assert totals["rows"] == len(rows) and totals["files"] == result.files_written
    assert totals["partitions"] == len(result.partitions)


def test_retry_same_run_id_commits_once_and_new_files_append(
    tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]
) -> None:
    src, rows = source
    lake = tmp_path / "lake"
    spec = STRATEGIES[2]
    first = run(plan(lake, csv_source(src), partitioning=spec, table_format="delta"))
    again = run(plan(lake, csv_source(src), partitioning=spec, table_format="delta"))
    assert again.already_committed and again.rows_written == first.rows_written
    other = run(
        plan(lake, csv_source(src), partitioning=spec, table_format="delta", run_id="run-2")
    )
    assert other.rows_read == 0  # the file was taken by run-1's commit
    assert DeltaTable(str(lake)).version() == 1
    more = write_csv(
        tmp_path / "more.csv", ",".join(COLUMNS), ["900001,zed,2026-02-02 10:00:00,1.5,DE"]
    )
    new = run(plan(lake, csv_source(more), partitioning=spec, table_format="delta", run_id="r3"))
    assert new.rows_written == 1
    assert duck_delta(lake, "SELECT count(*) FROM t")[0][0] == len(rows) + 1
    # lakeop's own reader reads the Delta snapshot's files
    table = read_table(f"file://{lake}", parse_fields(list(EVENTS)))
    assert sorted(table.column("id").to_pylist()) == sorted([r["id"] for r in rows] + [900001])


def test_overwrite_partitions_replaces_only_touched(
    tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]
) -> None:
    src, rows = source
    lake = tmp_path / "lake"
    spec = {"strategy": "list", "column": "country", "values": {"eu": ["DE", "FR"]}, "default": "x"}
    run(plan(lake, csv_source(src), partitioning=spec, table_format="delta"))
    fresh = write_csv(
        tmp_path / "eu.csv", ",".join(COLUMNS), ["1000000,new,2026-02-01 00:00:00,2.0,FR"]
    )
    result = run(
        plan(
            lake,
            csv_source(fresh),
            partitioning=spec,
            table_format="delta",
            run_id="over",
            mode="overwrite-partitions",
        )
    )
    assert result.rows_written == 1
    counts = dict(duck_delta(lake, "SELECT country_group, count(*) FROM t GROUP BY ALL"))
    assert counts["eu"] == 1
    assert counts["x"] == sum(1 for r in rows if r["country"] not in ("DE", "FR", None))
    # the replaced files stay for readers of the older version (time travel)
    old = DeltaTable(str(lake), version=1)
    assert old.to_pyarrow_table().num_rows == len(rows)


V1 = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "user", "type": "string", "nullable": False, "default": ""},
    {"name": "amount", "type": "double"},
)
# v2: a field added (nullable) and a required field made nullable
V2 = (
    V1[0],
    {"name": "user", "type": "string"},
    V1[2],
    {"name": "score", "type": "int"},
)


def test_schema_evolution_v1_then_v2_read_as_v2(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", "id,user,amount", ["1,ann,1.5", "2,bob,2.5"])
    run(plan(lake, csv_source(a), fields=V1, table_format="delta", run_id="v1"))
    b = write_csv(tmp_path / "b.csv", "id,user,amount,score", ["3,,3.5,7", "4,dan,,8"])
    result = run(plan(lake, csv_source(b), fields=V2, version=2, table_format="delta", run_id="v2"))
    assert result.rows_written == 2
    table = DeltaTable(str(lake))
    schema = {f.name: f for f in table.schema().fields}
    assert schema["score"].nullable and schema["user"].nullable
    got = duck_delta(lake, "SELECT id, user, amount, score FROM t ORDER BY id")
    assert got == [
        (1, "ann", 1.5, None),
        (2, "bob", 2.5, None),
        (3, None, 3.5, 7),
        (4, "dan", None, 8),
    ]
    read = delta_table(lake).sort_by("id")
    assert read.column("score").to_pylist() == [None, None, 7, 8]
    assert read.column("user").to_pylist() == ["ann", "bob", None, "dan"]


def test_v1_then_v2_with_an_added_field_and_promotions_read_as_v2(tmp_path: Path) -> None:
    """v2 adds a field and promotes int→long, float→double and a decimal's precision: the
    table is rewritten under v2 in one Delta commit before v2's run commits; both readers
    read every row with v2's types, the v1 run's exactly-once record survives the rewrite."""
    v1 = (
        {"name": "id", "type": "long", "nullable": False},
        {"name": "n", "type": "int"},
        {"name": "x", "type": "float"},
        {"name": "price", "type": "decimal", "precision": 9, "scale": 2},
        {"name": "country", "type": "string"},
    )
    v2 = (
        v1[0],
        {"name": "n", "type": "long"},
        {"name": "x", "type": "double"},
        {"name": "price", "type": "decimal", "precision": 18, "scale": 2},
        v1[4],
        {"name": "note", "type": "string"},
    )
    spec = {"strategy": "list", "column": "country", "values": {"eu": ["de"]}, "default": "o"}
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", "id,n,x,price,country", ["1,5,1.5,2.25,de", "2,,,,us"])
    first = plan(
        lake, csv_source(a), fields=v1, table_format="delta", run_id="v1", partitioning=spec
    )
    run(first)
    b = write_csv(
        tmp_path / "b.csv", "id,n,x,price,country,note", ["3,3000000000,2.5,1234567.5,de,hi"]
    )
    second = plan(
        lake,
        csv_source(b),
        fields=v2,
        version=2,
        table_format="delta",
        run_id="v2",
        partitioning=spec,
    )
    assert run(second).rows_written == 1
    table = DeltaTable(str(lake))
    types = {f.name: str(f.type) for f in table.schema().fields}
    assert types["n"] == 'PrimitiveType("long")' and types["x"] == 'PrimitiveType("double")'
    assert "18,2" in types["price"].replace(" ", "")
    ops = [h["operation"] for h in reversed(table.history())]
    assert ops[-2:] == ["WRITE", "WRITE"]  # the rewrite, then the v2 run's commit
    want = [
        (1, 5, 1.5, "2.25", "de", None, "eu"),
        (2, None, None, None, "us", None, "o"),
        (3, 3000000000, 2.5, "1234567.50", "de", "hi", "eu"),
    ]
    got = duck_delta(
        lake,
        "SELECT id, n, x, CAST(price AS VARCHAR), country, note, country_group FROM t ORDER BY id",
    )
    assert got == want
    kinds = duck_delta(lake, "SELECT typeof(n), typeof(x), typeof(price) FROM t LIMIT 1")
    assert kinds == [("BIGINT", "DOUBLE", "DECIMAL(18,2)")]
    read = delta_table(lake).sort_by("id")
    assert read.schema.field("n").type == pa.int64()
    assert read.schema.field("x").type == pa.float64()
    assert read.schema.field("price").type == pa.decimal128(18, 2)
    assert read.column("n").to_pylist() == [5, None, 3000000000]
    assert read.column("note").to_pylist() == [None, None, "hi"]
    # exactly once across the rewrite: both runs' retries find their commits
    assert run(first).already_committed and run(second).already_committed
    assert duck_delta(lake, "SELECT count(*) FROM t")[0][0] == 3


def test_a_crash_between_widening_and_the_commit_leaves_a_readable_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", "id,user,amount,score", ["1,ann,1.5,4"])
    run(plan(lake, csv_source(a), fields=V2, table_format="delta", run_id="v1"))
    promoted = (*V2[:3], {"name": "score", "type": "long"})
    b = write_csv(tmp_path / "b.csv", "id,user,amount,score", ["2,bob,2.5,9"])
    second = plan(
        lake, csv_source(b), fields=promoted, version=2, table_format="delta", run_id="v2"
    )

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt("killed before the commit")

    monkeypatch.setattr(DeltaFormat, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        run(second)
    monkeypatch.undo()
    # widened, readable, the v1 row once, the v2 run not committed
    assert duck_delta(lake, "SELECT id, score, typeof(score) FROM t") == [(1, 4, "BIGINT")]
    assert run(second).rows_written == 1  # the retry finds no promotion left and commits
    assert duck_delta(lake, "SELECT id, score FROM t ORDER BY id") == [(1, 4), (2, 9)]
    assert run(second).already_committed


def test_a_run_of_the_older_version_after_the_widening_is_refused(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", "id,user,amount,score", ["1,ann,1.5,4"])
    run(plan(lake, csv_source(a), fields=V2, table_format="delta", run_id="v1"))
    promoted = (*V2[:3], {"name": "score", "type": "long"})
    b = write_csv(tmp_path / "b.csv", "id,user,amount,score", ["2,bob,2.5,9"])
    run(plan(lake, csv_source(b), fields=promoted, version=2, table_format="delta", run_id="v2"))
    c = write_csv(tmp_path / "c.csv", "id,user,amount,score", ["3,cy,3.5,1"])
    with pytest.raises(TerminalError, match="column score") as err:
        run(plan(lake, csv_source(c), fields=V2, table_format="delta", run_id="old"))
    assert err.value.reason == "FormatCannotEvolve"
    assert duck_delta(lake, "SELECT count(*) FROM t")[0][0] == 2


def test_a_change_delta_cannot_apply_is_refused_before_writing(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", "id,user,amount", ["1,ann,1.5"])
    run(plan(lake, csv_source(a), fields=V2, table_format="delta", run_id="v1"))
    narrowed = (*V2[:2], {"name": "amount", "type": "float"}, V2[3])
    b = write_csv(tmp_path / "b.csv", "id,user,amount,score", ["2,bob,2.5,9"])
    with pytest.raises(TerminalError, match="column amount") as err:
        run(
            plan(lake, csv_source(b), fields=narrowed, version=2, table_format="delta", run_id="v2")
        )
    assert err.value.reason == "FormatCannotEvolve"
    assert DeltaTable(str(lake)).version() == 1
    assert duck_delta(lake, "SELECT count(*) FROM t")[0][0] == 1
