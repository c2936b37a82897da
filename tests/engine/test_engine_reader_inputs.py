"""Malformed input through ``lakeop ingest -f``: a clear message naming the place, the
documented exit code, nothing written that a reader would refuse, and - once the input is
fixed - a next run of the same job that ingests everything (counted with DuckDB)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from enginekit import duck, visible_parquet

from lakeop.cli import main
from lakeop.sources import csv_reader

ID_NAME = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "name", "type": "string"},
]
NESTED = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "tags", "type": "array", "items": "string", "itemsNullable": False},
    {
        "name": "dev",
        "type": "struct",
        "fields": [{"name": "os", "type": "string", "nullable": False}],
    },
]


def folder(
    tmp_path: Path, fmt: str, glob: str, fields: list[dict[str, Any]], policy: str = "fail"
) -> Path:
    meta = {"namespace": "demo"}
    docs = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {**meta, "name": "t"},
            "spec": {"location": f"file://{tmp_path}/lake"},
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "t-v1"},
            "spec": {"tableRef": "t", "version": 1, "fields": fields},
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "IngestionJob",
            "metadata": {**meta, "name": "load"},
            "spec": {
                "tableRef": "t",
                "onInvalidRecords": policy,
                "source": {"uri": f"file://{tmp_path}/in/{glob}", "format": fmt},
            },
        },
    ]
    out = tmp_path / f"manifests-{policy}"
    out.mkdir(exist_ok=True)
    (out / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return out


def ingest(manifests: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["ingest", "-f", str(manifests)])
    out, err = capsys.readouterr()
    return code, out + err


def count(tmp_path: Path) -> tuple[int, int]:
    rows = duck(tmp_path / "lake", "SELECT count(*), count(DISTINCT id) FROM t")[0]
    return int(rows[0]), int(rows[1])


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def csv_lines(start: int, n: int) -> bytes:
    return b"".join(b"%d,n%d\n" % (i, i) for i in range(start, start + n))


def test_duplicate_csv_header_is_bad_input_naming_file_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "in" / "a.csv", b"id,name,name\n1,a,b\n")
    m = folder(tmp_path, "csv", "*.csv", ID_NAME)
    code, out = ingest(m, capsys)
    assert code == 2
    assert f"source file://{src}: the CSV header names column 'name' 2 times" in out
    assert "Traceback" not in out
    write(src, b"id,name\n" + csv_lines(0, 100))
    assert ingest(m, capsys)[0] == 0
    assert count(tmp_path) == (100, 100)


@pytest.mark.parametrize("kind", ["gzip", "parquet"])
def test_corrupt_file_is_bad_input_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    good_csv = b"id,name\n" + csv_lines(0, 50_000)
    if kind == "gzip":
        data = gzip.compress(good_csv)
        bad = data[: len(data) // 2] + bytes(64) + data[len(data) // 2 :]
        src = write(tmp_path / "in" / "a.csv.gz", bad)
        m = folder(tmp_path, "csv", "*.csv.gz", ID_NAME)
        expected = "not valid gzip data"
    else:
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"id": list(range(50_000)), "name": ["x"] * 50_000}), sink)
        data = sink.getvalue().to_pybytes()
        src = write(tmp_path / "in" / "a.parquet", data[:-200] + bytes(100) + data[-100:])
        m = folder(tmp_path, "parquet", "*.parquet", ID_NAME)
        expected = "not a readable Parquet file"
    code, out = ingest(m, capsys)
    assert code == 2
    assert f"source file://{src}: {expected}" in out
    write(src, gzip.compress(good_csv) if kind == "gzip" else data)
    assert ingest(m, capsys)[0] == 0
    assert count(tmp_path) == (50_000, 50_000)


def utf8_json(bad: bool) -> bytes:
    lines = [json.dumps({"id": i, "name": f"n{i}"}).encode() for i in range(1_000)]
    if bad:
        lines[1] = b'{"id": 1, "name": "caf\xe9"}'  # latin-1, not UTF-8
    return b"\n".join(lines) + b"\n"


def test_invalid_utf8_in_json_fails_naming_file_line_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "in" / "a.jsonl", utf8_json(bad=True))
    m = folder(tmp_path, "json", "*.jsonl", ID_NAME)
    code, out = ingest(m, capsys)
    assert code == 1
    assert f"source file://{src}: line 2: field 'name': invalid UTF-8" in out
    assert visible_parquet(tmp_path / "lake") == []
    write(src, utf8_json(bad=False))
    assert ingest(m, capsys)[0] == 0
    assert count(tmp_path) == (1_000, 1_000)


@pytest.mark.parametrize("policy", ["skip", "quarantine"])
def test_invalid_utf8_in_json_is_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    write(tmp_path / "in" / "a.jsonl", utf8_json(bad=True))
    code, _ = ingest(folder(tmp_path, "json", "*.jsonl", ID_NAME, policy), capsys)
    assert code == 0
    assert count(tmp_path) == (999, 999)  # DuckDB reads the table: nothing invalid in it
    rejected = list((tmp_path / "lake" / "_rejected").rglob("*.jsonl"))
    if policy == "quarantine":
        (rec,) = [json.loads(line) for f in rejected for line in f.read_text().splitlines()]
        assert rec["line"] == 2 and "field 'name': invalid UTF-8" in rec["reason"]
    else:
        assert rejected == []


def test_invalid_utf8_in_csv_names_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "in" / "a.csv", b"id,name\n0,a\n1,caf\xe9\n2,c\n")
    m = folder(tmp_path, "csv", "*.csv", ID_NAME)
    code, out = ingest(m, capsys)
    assert code == 1
    assert f"source file://{src}: record 2 (line 3): field 'name'" in out
    write(src, b"id,name\n0,a\n1,caf\xc3\xa9\n2,c\n")
    assert ingest(m, capsys)[0] == 0
    assert duck(tmp_path / "lake", "SELECT name FROM t WHERE id = 1") == [("café",)]


def nested_json(bad: bool) -> bytes:
    recs: list[dict[str, Any]] = [
        {"id": i, "tags": ["a", "b"], "dev": {"os": "linux"}} for i in range(500)
    ]
    if bad:
        recs[3]["tags"] = ["a", None]
        recs[7]["dev"] = {"os": None}
    return "".join(json.dumps(r) + "\n" for r in recs).encode()


def test_null_in_non_nullable_nested_field_fails_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "in" / "a.jsonl", nested_json(bad=True))
    m = folder(tmp_path, "json", "*.jsonl", NESTED)
    code, out = ingest(m, capsys)
    assert code == 1
    assert f"source file://{src}: record 4 (line 4): field 'tags'" in out
    assert "null in non-nullable field 'tags.<item>'" in out
    assert "ArrowInvalid" not in out
    write(src, nested_json(bad=False))
    assert ingest(m, capsys)[0] == 0
    assert count(tmp_path) == (500, 500)


@pytest.mark.parametrize("policy", ["skip", "quarantine"])
def test_null_in_non_nullable_nested_field_is_an_invalid_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    write(tmp_path / "in" / "a.jsonl", nested_json(bad=True))
    assert ingest(folder(tmp_path, "json", "*.jsonl", NESTED, policy), capsys)[0] == 0
    assert count(tmp_path) == (498, 498)
    missing = duck(tmp_path / "lake", "SELECT list(id ORDER BY id) FROM t WHERE id IN (3, 7)")
    assert missing == [(None,)]
    if policy == "quarantine":
        rejected = list((tmp_path / "lake" / "_rejected").rglob("*.jsonl"))
        recs = [json.loads(line) for f in rejected for line in f.read_text().splitlines()]
        assert sorted((r["line"], r["reason"]) for r in recs) == [
            (4, "null in non-nullable field 'tags.<item>'"),
            (8, "null in non-nullable field 'dev.os'"),
        ]


def long_csv(long: bool) -> bytes:
    name = b"x" * (200 << 10) if long else b"short"
    return b"id,name\n" + csv_lines(0, 3_000) + b"3000," + name + b"\n" + csv_lines(3_001, 3_000)


def test_over_long_csv_line_fails_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_SIZE", 64 << 10)
    src = write(tmp_path / "in" / "a.csv", long_csv(long=True))
    m = folder(tmp_path, "csv", "*.csv", ID_NAME)
    code, out = ingest(m, capsys)
    assert code == 1
    assert f"source file://{src}: line 3002: line longer than 65,536 bytes" in out
    write(src, long_csv(long=False))
    assert ingest(m, capsys)[0] == 0
    assert count(tmp_path) == (6_001, 6_001)


@pytest.mark.parametrize("policy", ["skip", "quarantine"])
def test_over_long_csv_line_is_an_invalid_record(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
) -> None:
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_SIZE", 64 << 10)
    write(tmp_path / "in" / "a.csv", long_csv(long=True))
    assert ingest(folder(tmp_path, "csv", "*.csv", ID_NAME, policy), capsys)[0] == 0
    assert count(tmp_path) == (6_000, 6_000)
    assert duck(tmp_path / "lake", "SELECT count(*) FROM t WHERE id = 3000") == [(0,)]
    if policy == "quarantine":
        rejected = list((tmp_path / "lake" / "_rejected").rglob("*.jsonl"))
        (rec,) = [json.loads(line) for f in rejected for line in f.read_text().splitlines()]
        assert rec["line"] == 3002 and rec["text"].startswith("3000,xxx")


@pytest.mark.parametrize("shape", ["blank lines", "two per line"])
def test_json_record_failing_mid_batch_is_the_only_one_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    """The fast reader delivers whole batches, then falls back to the careful reader at the
    failing block: records, not lines, tell it where to resume."""
    recs = [json.dumps({"id": i, "name": f"n{i}"}) for i in range(60_000)]
    recs[45_000] = json.dumps({"id": "not a number", "name": "bad"})
    if shape == "blank lines":
        text = "".join(r + ("\n\n" if i % 3 == 0 else "\n") for i, r in enumerate(recs))
    else:
        text = "".join(" ".join(recs[i : i + 2]) + "\n" for i in range(0, len(recs), 2))
    write(tmp_path / "in" / "a.jsonl", text.encode())
    assert ingest(folder(tmp_path, "json", "*.jsonl", ID_NAME, "quarantine"), capsys)[0] == 0
    assert count(tmp_path) == (59_999, 59_999)
    got = duck(tmp_path / "lake", "SELECT min(id), max(id), sum(id) FROM t")
    assert got == [(0, 59_999, sum(range(60_000)) - 45_000)]
    rejected = list((tmp_path / "lake" / "_rejected").rglob("*.jsonl"))
    (rec,) = [json.loads(line) for f in rejected for line in f.read_text().splitlines()]
    line = 45_000 + 45_000 // 3 + 1 if shape == "blank lines" else 45_000 // 2 + 1
    assert (rec["record"], rec["line"], rec["field"]) == (45_001, line, "id")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.csv.gz", gzip.compress(b"id,name\n" + csv_lines(0, 9))[:40], "not valid gzip data"),
        ("a.csv.zst", b"\x28\xb5\x2f\xfd" + bytes(100), "not valid zstd data"),
        ("a.csv", b"id,name,o\xffx\n1,a,b\n", "the CSV header is not UTF-8"),
    ],
)
def test_unreadable_csv_is_bad_input_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes, expected: str
) -> None:
    src = write(tmp_path / "in" / name, data)
    m = folder(tmp_path, "csv", name, ID_NAME)
    code, out = ingest(m, capsys)
    assert code == 2
    assert f"source file://{src}: {expected}" in out
    assert "Traceback" not in out


def test_json_key_that_is_not_utf8_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "in" / "a.jsonl", b'{"id":1,"name":"a","k\xff":1}\n{"id":2,"name":"b"}\n')
    code, out = ingest(folder(tmp_path, "json", "*.jsonl", ID_NAME), capsys)
    assert code == 0
    assert "ignored source columns: k\\xff" in out
    assert count(tmp_path) == (2, 2)


def utf8_parquet(path: Path, bad: bool) -> Path:
    names = [f"n{i}".encode() for i in range(2_000)]
    if bad:
        names[1_500] = b"caf\xe9"
    table = pa.table({"id": range(2_000), "name": pa.array(names, pa.binary()).view(pa.string())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_parquet_strings_that_are_not_utf8_are_invalid_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    src = utf8_parquet(tmp_path / "in" / "a.parquet", bad=True)
    m = folder(tmp_path, "parquet", "*.parquet", ID_NAME, policy)
    code, out = ingest(m, capsys)
    if policy == "fail":
        assert code == 1
        assert f"source file://{src}: record 1501: field 'name': bytes that are not UTF-8" in out
        utf8_parquet(src, bad=False)
        assert ingest(m, capsys)[0] == 0
        assert count(tmp_path) == (2_000, 2_000)
    else:
        assert code == 0
        assert count(tmp_path) == (1_999, 1_999)  # DuckDB reads the table


def test_csv_header_longer_than_a_block_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_SIZE", 64 << 10)
    header = b"id,name," + b",".join(b"c%d" % i for i in range(20_000))
    src = write(tmp_path / "in" / "a.csv", header + b"\n1,a\n")
    m = folder(tmp_path, "csv", "*.csv", ID_NAME)
    code, out = ingest(m, capsys)
    assert code == 2  # was: read as an empty file, 0 rows, exit 0
    assert f"source file://{src}: no complete line in the first 65,536 bytes" in out
    write(src, b"id,name\n1,a\n")
    assert ingest(m, capsys)[0] == 0
    assert count(tmp_path) == (1, 1)


def test_invalid_json_ends_its_line_as_one_rejected_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [json.dumps({"id": i, "name": f"n{i}"}) for i in range(100)]
    lines[50] = '{"id": 50, "name": "a"} oops {"id": 1000, "name": "b"}'
    write(tmp_path / "in" / "a.jsonl", ("\n".join(lines) + "\n").encode())
    assert ingest(folder(tmp_path, "json", "*.jsonl", ID_NAME, "quarantine"), capsys)[0] == 0
    assert count(tmp_path) == (100, 100)  # record 51 (id 50) kept, the rest of its line not
    rejected = list((tmp_path / "lake" / "_rejected").rglob("*.jsonl"))
    (rec,) = [json.loads(line) for f in rejected for line in f.read_text().splitlines()]
    assert (rec["record"], rec["line"]) == (52, 51)
    assert rec["text"] == 'oops {"id": 1000, "name": "b"}'
