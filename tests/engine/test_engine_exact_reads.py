"""Valid files read exactly: every value written is the value in the source, each row once.

Each case generates valid files of a different shape and size, ingests them (several runs,
several block sizes, the fast path and its fallback to the careful reader in the middle of
a file), reads the table back with DuckDB and compares it, value by value, with the source
as Python's own csv and json modules read it. This is the test that catches a reader handing
the pipeline bytes from the wrong place (a buffer or a file position shared with a read
still in flight), which no row count would show.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from enginekit import csv_source, duck, plan, run

from lakeop.core.spec.sources import SourceSpec
from lakeop.sources import csv_reader, json_reader

FIELDS = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "ts", "type": "timestamp"},
    {"name": "name", "type": "string"},
)
DAY = {"strategy": "date", "column": "ts", "granularity": "day"}
HASH = {"strategy": "hash", "column": "id", "buckets": 4}
Row = tuple[int, int | None, str | None]


def epoch_us(text: str | None) -> int | None:
    if text is None or text in ("", "NULL", "null"):
        return None
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return (stamp - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def table_rows(lake: Path) -> list[Row]:
    rows = duck(lake, "SELECT id, epoch_us(ts), name FROM t ORDER BY id")
    return [(int(i), ts, name) for i, ts, name in rows]


def csv_rows(paths: list[Path]) -> list[Row]:
    """The source as Python's csv module reads it (empty fields are nulls)."""
    out: list[Row] = []
    for p in paths:
        with p.open(newline="") as f:
            for rec in csv.DictReader(f):
                name = rec["name"] or None
                out.append((int(rec["id"]), epoch_us(rec["ts"] or None), name))
    return sorted(out)


def json_rows(paths: list[Path]) -> list[Row]:
    """The source as Python's json module reads it: every object, however the lines fall."""
    out: list[Row] = []
    decoder = json.JSONDecoder()
    for p in paths:
        text = p.read_text()
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            rec, pos = decoder.raw_decode(text, pos)
            name = rec.get("name")  # a number in the string field is taken as its text
            shown = name if name is None or isinstance(name, str) else json.dumps(name)
            out.append((int(rec["id"]), epoch_us(rec.get("ts")), shown))
    return sorted(out)


def issue_csv(path: Path, n: int) -> Path:
    """The shape of the report: id,ts,name with Z stamps."""
    with path.open("w") as f:
        f.write("id,ts,name\n")
        for i in range(n):
            f.write(f"{i},2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,n{i % 997}\n")
    return path


def mixed_csv(path: Path, start: int, n: int, rng: random.Random, *, zulu_from: int) -> Path:
    """Quoted names with commas and quotes, empty fields, naive stamps, then (from row
    ``zulu_from``) stamps with offsets, which the fast path's parser refuses mid-file."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "ts", "name"])
        for k in range(n):
            i = start + k
            sec = rng.randrange(0, 86_400 * 60)
            stamp = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=sec, microseconds=i % 1000)
            ts = stamp.isoformat(sep=" ") if k < zulu_from else stamp.isoformat() + "+02:00"
            if i % 37 == 0:
                ts = ""
            name = rng.choice(["plain", 'say "hi", then go', "é,ü", "x" * rng.randrange(1, 60)])
            w.writerow([i, ts, "" if i % 41 == 0 else f"{name}-{i}"])
    return path


def json_file(path: Path, start: int, n: int, rng: random.Random) -> Path:
    """JSON lines with blank lines, several objects on one line and keys in any order; a
    number in the string field two thirds in sends the fast reader to the careful one."""
    with path.open("w") as f:
        line: list[str] = []
        for k in range(n):
            i = start + k
            rec: dict[str, Any] = {"id": i, "ts": f"2026-02-{1 + i % 28:02d}T{i % 24:02d}:07:00Z"}
            if i % 13:
                rec["name"] = f"n{i}-" + "é" * (i % 3)
            if k == 2 * n // 3:
                rec["name"] = i
            if i % 5 == 0:
                rec = dict(reversed(list(rec.items())))
            line.append(json.dumps(rec, ensure_ascii=i % 2 == 0))
            if rng.random() < 0.7:
                f.write(" ".join(line) + "\n")
                line = []
            if rng.random() < 0.05:
                f.write("\n   \n")
        if line:
            f.write(" ".join(line) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(4))
def test_the_reported_csv_reads_exactly(tmp_path: Path, attempt: int) -> None:
    src = issue_csv(tmp_path / "a.csv", 250_000)
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), fields=FIELDS, partitioning=DAY))
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (250_000,) * 2 + (0,)
    assert table_rows(lake) == csv_rows([src])


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        # with a timestampFormat, offsets send the fast reader to the careful one
        (64 << 10, 3, 30_000, 10_000, True),  # mid-file, many blocks in flight
        (256 << 10, 1, 120_000, 60_000, True),
        (1 << 20, 4, 20_000, 20_000, True),  # never falls back
        (64 << 10, 2, 50_000, 0, True),  # on the first block
        # without: stamps that all carry offsets are parsed again with them, on the fast
        # path; a file mixing both goes careful from the block where they change
        (64 << 10, 3, 30_000, 10_000, False),
        (1 << 20, 2, 50_000, 0, False),
    ],
)
def test_generated_csv_files_read_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[int, int, int, int, bool]
) -> None:
    block, files, rows, zulu_from, custom = case
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_SIZE", block)
    rng = random.Random(block + files)
    (tmp_path / "in").mkdir()
    paths = [
        mixed_csv(tmp_path / "in" / f"p{k}.csv", k * rows, rows, rng, zulu_from=zulu_from)
        for k in range(files)
    ]
    lake = tmp_path / "lake"
    options = {"timestampFormat": "%Y-%m-%d %H:%M:%S.%f"} if custom else {}
    source = csv_source(tmp_path / "in" / "*.csv", **options)
    for k, partitioning in enumerate([HASH, None]):
        result = run(plan(lake / str(k), source, fields=FIELDS, partitioning=partitioning))
        assert result.rows_rejected == 0
        assert table_rows(lake / str(k)) == csv_rows(paths)


@pytest.mark.slow
@pytest.mark.parametrize(("block", "files", "rows"), [(64 << 10, 3, 25_000), (1 << 20, 1, 80_000)])
def test_generated_json_files_read_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, files: int, rows: int
) -> None:
    monkeypatch.setattr(json_reader, "JSON_BLOCK_SIZE", block)
    rng = random.Random(block)
    (tmp_path / "in").mkdir()
    paths = [json_file(tmp_path / "in" / f"p{k}.jsonl", k * rows, rows, rng) for k in range(files)]
    lake = tmp_path / "lake"
    source = SourceSpec(f"file://{tmp_path}/in/*.jsonl", "json", {})
    result = run(plan(lake, source, fields=FIELDS, partitioning=DAY))
    assert (result.rows_read, result.rows_rejected) == (files * rows, 0)
    assert table_rows(lake) == json_rows(paths)
