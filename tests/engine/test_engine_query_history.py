"""``lakeop query`` and ``lakeop history`` on all three formats, from manifests: two runs
(the second under schema v2, which adds a column), the results equal to an independent
DuckDB read of the same table, and one history line per commit."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from enginekit import write_csv
from icebergkit import duck_rows
from icebergkit import extension as ext

from lakeop.cli import main
from lakeop.cli.query import render_table

FORMATS = ["parquet", "delta", "iceberg"]
META = {"namespace": "demo"}
V1 = [{"name": "id", "type": "long", "nullable": False}, {"name": "country", "type": "string"}]
V2 = [*V1, {"name": "amount", "type": "double"}]


def sv(version: int, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "SchemaVersion",
        "metadata": {**META, "name": f"events-v{version}"},
        "spec": {"tableRef": "events", "version": version, "fields": fields},
    }


def make_table(tmp_path: Path, fmt: str) -> tuple[Path, Path, str]:
    """Two committed runs on a table of ``fmt``: the manifests folder, the source folder and
    the table's location."""
    location = f"file://{tmp_path}/lake/events"
    src = tmp_path / "in"
    docs = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {**META, "name": "events"},
            "spec": {
                "location": location,
                "format": fmt,
                "partitioning": {
                    "strategy": "list",
                    "column": "country",
                    "values": {"eu": ["DE", "FR"]},
                    "default": "row",
                },
            },
        },
        sv(1, V1),
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "IngestionJob",
            "metadata": {**META, "name": "load"},
            "spec": {
                "tableRef": "events",
                "source": {"uri": f"file://{src}/*.csv", "format": "csv"},
            },
        },
    ]
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    write_csv(src / "a.csv", "id,country", ["1,DE", "2,US", "3,FR"])
    assert main(["ingest", "-f", str(folder), "--run-id", "first"]) == 0
    (folder / "v2.yaml").write_text(yaml.safe_dump(sv(2, V2)))
    write_csv(src / "b.csv", "id,country,amount", ["4,JP,1.5", "5,DE,2.5"])
    assert main(["ingest", "-f", str(folder), "--run-id", "second"]) == 0
    return folder, src, location


def independent(fmt: str, location: str, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` over view ``t``, read without lakeop: DuckDB's own readers of each format."""
    path = location.removeprefix("file://")
    if fmt == "iceberg":
        meta = sorted(Path(path, "metadata").glob("*.metadata.json"))[-1]
        return duck_rows(str(meta), sql)
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    if fmt == "delta":
        con.execute(f"LOAD '{ext('delta')}'")
        con.execute(f"CREATE VIEW t AS SELECT * FROM delta_scan('{path}')")
    else:
        con.execute(
            f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}/**/*.parquet', "
            "hive_partitioning = true, union_by_name = true)"
        )
    return con.sql(sql).fetchall()


def query(capsys: pytest.CaptureFixture[str], folder: Path, sql: str, *opts: str) -> str:
    capsys.readouterr()
    assert main(["query", "-f", str(folder), *opts, sql]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("fmt", FORMATS)
def test_query_equals_an_independent_read(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, location = make_table(tmp_path, fmt)
    sql = "SELECT id, country, amount FROM {} ORDER BY id"
    expected = independent(fmt, location, sql.format("t"))
    assert [r[0] for r in expected] == [1, 2, 3, 4, 5]
    assert expected[0][2] is None and expected[3][2] == 1.5  # v1 rows projected onto v2

    out = query(capsys, folder, sql.format("events"), "--output", "json")
    assert [tuple(r.values()) for r in json.loads(out)] == expected

    out = query(capsys, folder, sql.format("events"), "--output", "csv")
    got = list(csv.reader(io.StringIO(out)))
    assert got[0] == ["id", "country", "amount"]
    assert got[1:] == [[str(a), b, "" if c is None else str(c)] for a, b, c in expected]

    out = query(capsys, folder, sql.format("events"), "--output", "table")
    assert out == render_table(["id", "country", "amount"], expected)
    assert out.splitlines()[-1] == "(5 rows)" and "NULL" in out


def test_query_reads_only_committed_parquet_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A parquet file no commit names (a dead run's leftover, a stray copy) never shows,
    although a directory listing would read it."""
    folder, _, location = make_table(tmp_path, "parquet")
    root = Path(location.removeprefix("file://"))
    one = sorted(root.glob("country_group=eu/*.parquet"))[0]
    (one.parent / "stray.parquet").write_bytes(one.read_bytes())
    assert independent("parquet", location, "SELECT count(*) FROM t")[0][0] > 5
    assert query(capsys, folder, "SELECT count(*) AS n FROM events", "--output", "csv") == "n\n5\n"


def test_query_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _, _ = make_table(tmp_path, "parquet")
    assert main(["query", "-f", str(folder), "SELECT nope FROM events"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["query", "-f", str(folder), "--table", "other", "SELECT 1"]) == 2
    assert "need exactly one Table named other" in capsys.readouterr().err
    assert main(["query", "SELECT 1"]) == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_history_one_line_per_commit(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, location = make_table(tmp_path, fmt)
    capsys.readouterr()
    assert main(["history", "-f", str(folder), "--output", "json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [h["runId"] for h in history] == ["first", "second"]
    assert [h["job"] for h in history] == ["load", "load"]
    assert [h["schemaVersion"] for h in history] == [1, 2]
    assert [h["operation"] for h in history] == ["append", "append"]
    assert [h["rowsAdded"] for h in history] == [3, 2]
    assert [h["rowsRemoved"] for h in history] == [0, 0]
    assert all(h["filesAdded"] >= 1 and h["time"] for h in history)
    # the rows the history counts are the rows an independent reader sees
    assert (
        sum(h["rowsAdded"] for h in history)
        == independent(fmt, location, "SELECT count(*) FROM t")[0][0]
    )
    assert main(["history", "-f", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "first" in text and "second" in text and text.rstrip().endswith("(2 commits)")


def test_history_names_compaction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, src, _ = make_table(tmp_path, "parquet")
    for i in range(3):  # more small files in the eu partition
        write_csv(src / f"c{i}.csv", "id,country,amount", [f"{10 + i},FR,0.5"])
        assert main(["ingest", "-f", str(folder), "--run-id", f"more-{i}"]) == 0
    assert main(["compact", "-f", str(folder), "--min-input-files", "2"]) == 0
    capsys.readouterr()
    assert main(["history", "-f", str(folder), "--output", "json"]) == 0
    last = json.loads(capsys.readouterr().out)[-1]
    assert last["operation"] == "compaction"
    assert last["rowsAdded"] == last["rowsRemoved"] > 0 and last["filesRemoved"] >= 2
