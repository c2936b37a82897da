"""Source formats: ndjson, parquet, gzip/zstd by extension, nested types from JSON."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from enginekit import dataset, duck, plan, run

from lakeop.core.spec.sources import SourceSpec

NESTED = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "ts", "type": "timestamp"},
    {"name": "props", "type": "map", "values": "string"},
    {"name": "tags", "type": "array", "items": "string"},
    {
        "name": "device",
        "type": "struct",
        "fields": [{"name": "os", "type": "string"}, {"name": "ver", "type": "int"}],
    },
)
RECORDS = [
    {
        "id": 1,
        "ts": "2026-03-01T10:00:00Z",
        "props": {"a": "1"},
        "tags": ["x", "y"],
        "device": {"os": "linux", "ver": 6},
        "extra": True,
    },
    {
        "id": 2,
        "ts": "2026-03-01T12:00:00+01:00",
        "props": {},
        "tags": [],
        "device": {"os": "mac", "ver": None},
    },
    {"id": 3, "ts": None, "props": None, "tags": None, "device": None},
]


def check_nested(lake: Path) -> None:
    t = dataset(lake).sort_by("id")
    assert t.column("id").to_pylist() == [1, 2, 3]
    assert t.column("props").to_pylist()[0] == [("a", "1")]
    assert t.column("tags").to_pylist() == [["x", "y"], [], None]
    assert t.column("device").to_pylist()[0] == {"os": "linux", "ver": 6}
    hours = duck(lake, "SELECT id, hour(ts AT TIME ZONE 'UTC') FROM t ORDER BY id")
    assert hours == [(1, 10), (2, 11), (3, None)]


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "jsonl.zst"])
def test_ndjson_with_nested_types(tmp_path: Path, suffix: str) -> None:
    body = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    src = tmp_path / f"in.{suffix}"
    if suffix.endswith(".gz"):
        body = gzip.compress(body)
    elif suffix.endswith(".zst"):
        with pa.CompressedOutputStream(str(src), "zstd") as out:
            out.write(body)
    if not suffix.endswith(".zst"):
        src.write_bytes(body)
    lake = tmp_path / "lake"
    result = run(plan(lake, SourceSpec(f"file://{src}", "json"), fields=NESTED))
    assert result.rows_written == 3 and result.extra_columns == ["extra"]
    check_nested(lake)


def test_csv_with_json_text_columns_gzip(tmp_path: Path) -> None:
    lines = [
        "id,ts,props,tags,device",
        '1,2026-03-01T10:00:00Z,"{""a"": ""1""}","[""x"", ""y""]",'
        '"{""os"": ""linux"", ""ver"": 6}"',
        '2,2026-03-01T12:00:00+01:00,{},[],"{""os"": ""mac""}"',
        "3,,,,",
    ]
    src = tmp_path / "in.csv.gz"
    src.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    lake = tmp_path / "lake"
    run(plan(lake, SourceSpec(f"file://{src}", "csv"), fields=NESTED))
    check_nested(lake)


def test_parquet_source_casts_and_reports(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array([1, 2, 3], pa.int32()),
                "ts": pa.array([0, 3_600_000_000, None], pa.timestamp("us")),
                "amount": pa.array([1.5, 2.5, None], pa.float32()),
                "junk": ["a", "b", "c"],
            }
        ),
        src,
    )
    fields = (
        {"name": "id", "type": "long"},
        {"name": "ts", "type": "timestamp"},
        {"name": "amount", "type": "double"},
        {"name": "note", "type": "string"},
    )
    lake = tmp_path / "lake"
    result = run(
        plan(
            lake,
            SourceSpec(f"file://{src}", "parquet"),
            fields=fields,
            partitioning={"strategy": "date", "column": "ts", "granularity": "hour"},
        )
    )
    assert result.rows_written == 3 and result.extra_columns == ["junk"]
    # DuckDB 1.4 reads a hive column holding the null partition as text, the label unmapped
    got = duck(lake, "SELECT id, TRY_CAST(hour AS INTEGER), amount, note FROM t ORDER BY id")
    assert got == [(1, 0, 1.5, None), (2, 1, 2.5, None), (3, None, None, None)]
    schema = dataset(lake).schema
    assert schema.field("id").type == pa.int64() and schema.field("ts").type.tz == "UTC"


def test_glob_over_folders(tmp_path: Path) -> None:
    for day in ("d1", "d2"):
        (tmp_path / "in" / day).mkdir(parents=True)
        (tmp_path / "in" / day / "x.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
        (tmp_path / "in" / day / "skip.txt").write_text("nope")
    lake = tmp_path / "lake"
    fields = ({"name": "id", "type": "long"},)
    result = run(plan(lake, SourceSpec(f"file://{tmp_path}/in/*/*.jsonl", "json"), fields=fields))
    assert result.rows_written == 4
    result = run(
        plan(tmp_path / "l2", SourceSpec(f"file://{tmp_path}/in/**.jsonl", "json"), fields=fields)
    )
    assert result.rows_written == 4


def test_https_style_single_file_over_http(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "a.csv").write_text("id\n1\n2\n3\n")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www")
    )
    handler.log_message = lambda *_: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_port}/a.csv"
        lake = tmp_path / "lake"
        fields = ({"name": "id", "type": "long"},)
        result = run(plan(lake, SourceSpec(uri, "csv"), fields=fields))
        assert result.rows_written == 3
        again = run(plan(lake, SourceSpec(uri, "csv"), fields=fields, run_id="r2"))
        assert again.rows_written == 0  # same size and Last-Modified: already taken
    finally:
        server.shutdown()
        server.server_close()
