"""``format: iceberg``: every partition strategy written as one Iceberg snapshot and read back
row by row by DuckDB's ``iceberg_scan`` and by pyiceberg's scan, on the embedded SQLite
catalog and on PostgreSQL; each file's partition value checked against pyiceberg's own
transforms; retries, overwrites and the snapshot summary."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from enginekit import csv_source, plan, run, write_csv
from icebergkit import duck_rows, table
from pyiceberg.table import Table
from test_engine_delta import COLUMNS, STRATEGIES, fmt, spec_id
from test_engine_strategies import make_rows

from lakeop.core.lake.partitioning import range_index, range_labels
from lakeop.engine.formats import open_format, set_target
from lakeop.errors import InvalidSpecError, TerminalError
from lakeop.storage import open_storage

STRATEGIES_ICEBERG = [*STRATEGIES, {"strategy": "hash", "column": "id", "buckets": 7}]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    rows = make_rows(seed=13)
    path = tmp_path_factory.mktemp("src") / "events.csv"
    write_csv(path, ",".join(COLUMNS), [",".join(fmt(r[k]) for k in COLUMNS) for r in rows])
    return path, rows


def label(r: dict[str, Any], spec: dict[str, Any]) -> str | None:
    v = r[spec["column"]]
    if v is None:
        return None
    if spec["strategy"] == "range":
        return range_labels(spec["boundaries"])[range_index(spec["boundaries"], v)]
    groups = {m: g for g, ms in spec["values"].items() for m in ms}
    return str(groups.get(v, spec["default"]))


def check_rows(tbl: Table, rows: list[dict[str, Any]], spec: Any, s3: Any = None) -> None:
    """DuckDB's iceberg_scan (at the metadata location) and pyiceberg read exactly ``rows``."""
    cols = ", ".join(COLUMNS)
    got = duck_rows(tbl.metadata_location, f"SELECT {cols} FROM t ORDER BY id", s3=s3)
    assert len(got) == len(rows)
    for r, g in zip(rows, got, strict=True):
        assert g == tuple(r[c] for c in COLUMNS), (g, r)
    scanned = tbl.scan().to_arrow().sort_by("id")
    for c in COLUMNS:
        assert scanned.column(c).to_pylist() == [r[c] for r in rows], c
    if spec is not None and spec["strategy"] in {"range", "list"}:
        name = f"{spec['column']}_{'range' if spec['strategy'] == 'range' else 'group'}"
        assert scanned.column(name).to_pylist() == [label(r, spec) for r in rows]


def check_placement(tbl: Table, spec: Any) -> int:
    """Every row of every data file has the file's partition value under pyiceberg's own
    transform of the row (so engines prune correctly); returns the number of files."""
    pfields = tbl.spec().fields
    schema = tbl.schema()
    files = 0
    for task in tbl.scan().plan_files():
        files += 1
        if not pfields:
            continue
        (pf,) = pfields
        source = schema.find_field(pf.source_id)
        fn = pf.transform.transform(source.field_type)
        path = task.file.file_path
        with tbl.io.new_input(path).open() as f:
            values = pq.read_table(f, columns=[source.name]).column(0).to_pylist()
        want = task.file.partition[0]
        for value in values:
            v = value
            if isinstance(v, dt.datetime):
                v = int((v - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds() * 1e6)
            assert (None if v is None else fn(v)) == want, (path, v, want)
    return files


@pytest.mark.parametrize("spec", STRATEGIES_ICEBERG, ids=lambda s: s and spec_id(s) + s["column"])
def test_every_strategy_reads_back(
    tmp_path: Path, source: tuple[Path, list[dict[str, Any]]], spec: dict[str, Any] | None
) -> None:
    src, rows = source
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), partitioning=spec, table_format="iceberg"))
    assert result.error is None and result.rows_written == len(rows)
    tbl = table(lake)
    assert len(tbl.metadata.snapshots) == 1  # the run's one snapshot
    hidden = {f.name for f in tbl.schema().fields} - set(COLUMNS)
    if spec is None or spec["strategy"] in {"date", "hash"}:
        assert hidden == set()  # hidden partitioning: no extra column
    assert check_placement(tbl, spec) == result.files_written
    check_rows(tbl, rows, spec)
    summary = tbl.current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None
    assert summary["lakeop.run-id"] == "run-1" and summary["lakeop.schema-version"] == "1"
    record = json.loads(summary["lakeop.record"])
    assert record["sources"][0]["uri"] == f"file://{src}" and record["job"] == "job"
    storage = open_storage(f"file://{lake}")
    set_target(
        storage, plan(lake, csv_source(src), partitioning=spec, table_format="iceberg").table, {}
    )
    totals = open_format(storage, "iceberg").totals()
    assert totals["rows"] == len(rows) and totals["files"] == result.files_written
    assert totals["partitions"] == len(result.partitions)


def test_retry_commits_once_then_overwrite_replaces_touched_partitions(
    tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]
) -> None:
    src, rows = source
    lake = tmp_path / "lake"
    spec = STRATEGIES[2]  # day
    first = run(plan(lake, csv_source(src), partitioning=spec, table_format="iceberg"))
    again = run(plan(lake, csv_source(src), partitioning=spec, table_format="iceberg"))
    assert again.already_committed and again.rows_written == first.rows_written
    tbl = table(lake)
    assert len(tbl.metadata.snapshots) == 1
    # a new source file: a new run appends it
    day = [r for r in rows if r["ts"] is not None and r["ts"].day == rows[5]["ts"].day]
    extra = tmp_path / "in2" / "more.csv"
    extra.parent.mkdir()
    write_csv(extra, ",".join(COLUMNS), [",".join(fmt(r[k]) for k in COLUMNS) for r in day])
    over = plan(
        lake,
        csv_source(extra),
        partitioning=spec,
        table_format="iceberg",
        run_id="run-2",
        mode="overwrite-partitions",
        job="other",
    )
    result = run(over)
    assert result.error is None and result.rows_written == len(day)
    tbl = table(lake)
    assert len(tbl.metadata.snapshots) == 2
    assert str(tbl.current_snapshot().summary.operation.value) == "overwrite"  # type: ignore[union-attr]
    # the touched day holds exactly the new run's rows; the other days are untouched
    touched = rows[5]["ts"].day
    want = sorted(
        [r for r in rows if r["ts"] is None or r["ts"].day != touched] + day, key=lambda r: r["id"]
    )
    got = duck_rows(
        tbl.metadata_location, f"SELECT {', '.join(COLUMNS)} FROM t ORDER BY id, amount"
    )
    assert len(got) == len(want)
    assert sorted(g[0] for g in got) == sorted(r["id"] for r in want)
    # the older snapshot still reads the whole first run (time travel)
    first_snap = tbl.metadata.snapshots[0].snapshot_id
    assert tbl.scan(snapshot_id=first_snap).to_arrow().num_rows == len(rows)


def test_postgres_catalog(
    tmp_path: Path, source: tuple[Path, list[dict[str, Any]]], postgres_url: str
) -> None:
    src, rows = source
    lake = tmp_path / "lake"
    env = {**os.environ, "LAKEOP_ICEBERG_CATALOG_URI": postgres_url}
    spec = STRATEGIES[4]  # hash on user
    result = run(plan(lake, csv_source(src), partitioning=spec, table_format="iceberg"), env)
    assert result.error is None and result.rows_written == len(rows)
    assert not (lake / "_lakeop" / "iceberg-catalog.db").exists()
    tbl = table(lake, postgres_url)
    check_placement(tbl, spec)
    check_rows(tbl, rows, spec)
    again = run(plan(lake, csv_source(src), partitioning=spec, table_format="iceberg"), env)
    assert again.already_committed
    assert len(table(lake, postgres_url).metadata.snapshots) == 1


def test_s3_without_a_catalog_is_refused(source: tuple[Path, list[dict[str, Any]]]) -> None:
    src, _ = source
    env = {k: v for k, v in os.environ.items() if k != "LAKEOP_ICEBERG_CATALOG_URI"}
    with pytest.raises(InvalidSpecError) as e:
        run(plan("s3://bucket/lake", csv_source(src), table_format="iceberg"), env)
    assert "Table events: spec.iceberg.catalogSecretRef" in str(e.value)


V1 = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "qty", "type": "int"},
    {"name": "price", "type": "float"},
    {"name": "name", "type": "string"},
)
V2 = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "qty", "type": "long"},  # promoted
    {"name": "price", "type": "double"},  # promoted
    {"name": "label", "type": "string"},  # name renamed: dropped + added
    {"name": "note", "type": "string"},  # added
)


def test_schema_evolution_by_field_id_old_files_read_as_v2(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    one = tmp_path / "v1.csv"
    write_csv(one, "id,qty,price,name", [f"{i},{i * 2},{i}.5,n{i}" for i in range(50)])
    r1 = run(plan(lake, csv_source(one), fields=V1, table_format="iceberg", run_id="v1"))
    assert r1.error is None
    ids_before = {f.name: f.field_id for f in table(lake).schema().fields}
    two = tmp_path / "v2.csv"
    write_csv(
        two, "id,qty,price,label,note", [f"{i},{2**40 + i},{i}.25,l{i},x" for i in range(50, 80)]
    )
    r2 = run(plan(lake, csv_source(two), fields=V2, table_format="iceberg", run_id="v2", version=2))
    assert r2.error is None and r2.rows_written == 30
    tbl = table(lake)
    schema = {f.name: f for f in tbl.schema().fields}
    # field ids kept; promotions applied in place; the dropped name stays (old files keep it)
    for name in ("id", "qty", "price", "name"):
        assert schema[name].field_id == ids_before[name]
    assert str(schema["qty"].field_type) == "long" and str(schema["price"].field_type) == "double"
    assert {"label", "note"} <= set(schema)
    got = duck_rows(
        tbl.metadata_location, "SELECT id, qty, price, name, label, note FROM t ORDER BY id"
    )
    assert len(got) == 80
    assert got[3] == (3, 6, 3.5, "n3", None, None)  # a v1 row read as v2
    assert got[60] == (60, 2**40 + 60, 60.25, None, "l60", "x")
    scanned = tbl.scan().to_arrow().sort_by("id")
    assert scanned.column("qty").to_pylist()[:3] == [0, 2, 4]
    assert scanned.column("note").to_pylist()[:2] == [None, None]


def test_a_change_iceberg_cannot_make_is_refused_in_the_run(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    one = tmp_path / "v1.csv"
    write_csv(one, "id,qty,price,name", ["1,2,3.5,a"])
    assert run(plan(lake, csv_source(one), fields=V1, table_format="iceberg")).error is None
    two = tmp_path / "v2.csv"
    write_csv(two, "id,qty,price,name", ["2,x,3.5,b"])
    bad = ({**V1[0]}, {"name": "qty", "type": "string"}, V1[2], V1[3])
    with pytest.raises(TerminalError) as e:
        run(plan(lake, csv_source(two), fields=bad, table_format="iceberg", run_id="r2", version=2))
    assert e.value.reason == "FormatCannotEvolve"


def test_a_creator_that_loses_the_namespace_race_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQL catalog checks for the namespace, then inserts it: a creator whose check ran
    before a racing creator's insert breaks the unique key. It must go on with the namespace
    that is there (seen in CI: two jobs' first runs into one lake, one exited 1)."""
    from pyiceberg.catalog.sql import SqlCatalog  # noqa: PLC0415

    lake = tmp_path / "lake"
    src = write_csv(tmp_path / "a.csv", "id,user,ts,amount,country", ["1,u,2024-01-01,1.0,DE"])
    p = plan(lake, csv_source(src), table_format="iceberg")
    storage = open_storage(f"file://{lake}")
    set_target(storage, p.table, {})
    fmt = open_format(storage, "iceberg")
    fmt.catalog.create_namespace(fmt.target.namespace)  # the racing creator's insert
    real = SqlCatalog.namespace_exists
    calls: list[bool] = []

    def check_ran_before_it(self: SqlCatalog, ns: Any) -> bool:
        calls.append(True)
        return False if len(calls) == 1 else real(self, ns)

    monkeypatch.setattr(SqlCatalog, "namespace_exists", check_ran_before_it)
    fmt.ensure(pa.schema([("id", pa.int64()), ("user", pa.string())]), [])
    assert len(calls) >= 2  # the catalog's own check, then the creator's look after the clash
    assert fmt.metadata_location() is not None
