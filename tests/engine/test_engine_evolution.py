"""Files written under v1 read as v2: by lakeop's reader and by DuckDB union_by_name."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from enginekit import csv_source, duck, plan, run, write_csv

from lakeop.core.schema.parse import parse_fields
from lakeop.engine.reader import read_table

V1 = ({"name": "id", "type": "int", "nullable": False}, {"name": "score", "type": "float"})
V2 = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "score", "type": "double"},
    {"name": "note", "type": "string", "nullable": True},
)


def test_v1_and_v2_files_read_as_v2(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", "id,score", [f"{i},{i}.25" for i in range(5)])
    run(plan(lake, csv_source(a), fields=V1, version=1, run_id="r1"))
    b = write_csv(tmp_path / "b.csv", "id,score,note", [f"{i},{i}.5,n{i}" for i in range(5, 8)])
    run(plan(lake, csv_source(b), fields=V2, version=2, run_id="r2"))

    types = {str(pq.read_schema(f).field("id").type) for f in lake.glob("*.parquet")}
    assert types == {"int32", "int64"}  # really two file schemas

    table = read_table(f"file://{lake}", parse_fields(list(V2))).sort_by("id")
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("score").type == pa.float64()
    assert table.column("note").to_pylist() == [None] * 5 + ["n5", "n6", "n7"]
    assert table.column("score").to_pylist()[:2] == [0.25, 1.25]

    got = duck(lake, "SELECT id, score, note FROM t ORDER BY id")
    assert [r[0] for r in got] == list(range(8))
    assert got[0] == (0, 0.25, None) and got[7] == (7, 7.5, "n7")


def test_read_table_sees_only_committed_files(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", "id,score", ["1,1.0", "2,2.0"])
    run(plan(lake, csv_source(a), fields=V1, run_id="r1"))
    stray = lake / "part-stray.parquet"  # e.g. a file copied in by hand: not in the log
    pq.write_table(pa.table({"id": pa.array([99], pa.int32()), "score": [1.0]}), stray)
    table = read_table(str(lake), parse_fields(list(V1)))
    assert sorted(table.column("id").to_pylist()) == [1, 2]
