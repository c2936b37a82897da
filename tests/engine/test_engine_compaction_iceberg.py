"""Compaction and expiry of an Iceberg table: 200 small runs into a date-partitioned table
compacted into files near the target in one replace snapshot (the same multiset through
DuckDB's ``iceberg_scan`` and pyiceberg), older schema versions rewritten under the current
one, and expiry: a reader pinned to a snapshot inside the retention still reads it, the
files of expired snapshots are deleted, nothing a live snapshot names is, and the expired
runs' records stay known."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from enginekit import EVENTS, csv_source, plan, run, write_csv
from icebergkit import duck_rows, pyiceberg_rows, table
from test_engine_compaction import COLUMNS, DAILY, HEADER, rows

from lakeop.engine.compaction import CompactionPolicy
from lakeop.engine.formats import open_format
from lakeop.engine.formats.iceberg import IcebergFormat
from lakeop.engine.formats.iceberg_catalog import read_target
from lakeop.engine.iceberg_expiry import expire_iceberg, referenced
from lakeop.engine.iceberg_maintenance import compact_iceberg
from lakeop.storage import open_storage

DAY_S = 86_400


def iceberg(loc: Path) -> IcebergFormat:
    """The Iceberg table at ``loc``, opened from its location as ``lakeop compact`` does."""
    storage = open_storage(f"file://{loc}")
    storage.format_target = read_target(storage)
    fmt = open_format(storage, "iceberg")
    assert isinstance(fmt, IcebergFormat)
    return fmt


def ingest(
    tmp: Path,
    loc: Path,
    run_id: str,
    first: int,
    n: int,
    *,
    days: tuple[int, ...] = (1, 2, 3, 4, 5),
) -> None:
    src = write_csv(tmp / "src" / f"{run_id}.csv", HEADER, rows(first, n, days))
    p = plan(
        loc, csv_source(src), partitioning=DAILY, run_id=run_id, job=run_id, table_format="iceberg"
    )
    result = run(p)
    assert result.error is None, result.error


def scanned(loc: Path, columns: str = COLUMNS) -> Counter[tuple[Any, ...]]:
    meta = iceberg(loc).metadata_location()
    assert meta is not None
    return Counter(duck_rows(meta, f"SELECT {columns} FROM t"))


def per_partition(loc: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for f in iceberg(loc).live_files().values():
        out.setdefault(f.partition, []).append(f.bytes)
    return out


def test_two_hundred_small_runs_compact_into_one_replace_snapshot(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(200):
        ingest(tmp_path, loc, f"r{i:03d}", i * 40, 40)
    before = scanned(loc)
    assert sum(before.values()) == 8000
    parts = per_partition(loc)
    assert len(parts) == 5 and all(len(v) == 200 for v in parts.values())
    snapshots = len(table(loc).metadata.snapshots)
    target = 64 * 1024

    res = compact_iceberg(iceberg(loc), 1, CompactionPolicy(target, 5), "compact-1", progress=None)

    assert res.files_before == 1000 and res.partitions == sorted(parts)
    after = per_partition(loc)
    for partition, sizes in after.items():
        limit = math.ceil(sum(parts[partition]) / target)
        assert len(sizes) <= limit, (partition, len(sizes), limit)
    assert res.files_after == sum(len(v) for v in after.values()) < 1000
    assert scanned(loc) == before
    by_pyiceberg = pyiceberg_rows(loc).select(["id", "user", "ts", "amount", "country"])
    assert Counter(zip(*by_pyiceberg.to_pydict().values(), strict=True)) == before
    # one snapshot swapped them: the inputs deleted, the outputs added
    tbl = table(loc)
    assert len(tbl.metadata.snapshots) == snapshots + 1
    snap = tbl.current_snapshot()
    assert snap is not None and snap.summary is not None
    summary = snap.summary.additional_properties
    assert summary["lakeop.run-id"] == "compact-1"
    assert int(summary["deleted-data-files"]) == 1000
    assert int(summary["added-data-files"]) == res.files_after
    assert int(summary["total-records"]) == 8000
    # a retry under the same run id reports the snapshot, a new compaction has nothing to do
    again = compact_iceberg(
        iceberg(loc), 1, CompactionPolicy(target, 5), "compact-1", progress=None
    )
    assert (again.files_after, again.seq) == (res.files_after, res.seq)
    other = compact_iceberg(
        iceberg(loc), 1, CompactionPolicy(target, 5), "compact-2", progress=None
    )
    assert other.seq == 0 and len(table(loc).metadata.snapshots) == snapshots + 1
    assert scanned(loc) == before


def test_files_of_an_older_schema_are_rewritten_under_the_current_one(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(4):
        ingest(tmp_path, loc, f"v1-{i}", i * 10, 10, days=(1,))
    v2 = (*EVENTS, {"name": "note", "type": "string"})
    src = write_csv(
        tmp_path / "src" / "v2.csv",
        HEADER + ",note",
        [r + ",hello" for r in rows(100, 10, (1,))],
    )
    p = plan(
        loc,
        csv_source(src),
        fields=v2,
        version=2,
        partitioning=DAILY,
        run_id="v2",
        job="v2",
        table_format="iceberg",
    )
    assert run(p).error is None
    before = scanned(loc, COLUMNS + ", note")
    assert sum(1 for r in before.elements() if r[-1] is None) == 40

    res = compact_iceberg(iceberg(loc), 2, CompactionPolicy(1 << 20, 5), "c", progress=None)

    assert res.files_before == 5 and res.files_after == 1
    assert scanned(loc, COLUMNS + ", note") == before
    (path,) = iceberg(loc).live_files()
    schema = pq.read_schema(loc / path)
    ids = {f.name: f.metadata[b"PARQUET:field_id"] for f in schema}
    current = table(loc).schema()
    assert ids == {f.name: str(f.field_id).encode() for f in current.fields}


def test_expiry_keeps_pinned_snapshots_inside_retention(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(6):
        ingest(tmp_path, loc, f"r{i}", i * 50, 50)
    before = scanned(loc)
    tbl = table(loc)
    pinned = tbl.current_snapshot()
    assert pinned is not None
    replaced = set(iceberg(loc).live_files())
    records = {c.run_id for c in iceberg(loc).commits()}
    compact_iceberg(iceberg(loc), 1, CompactionPolicy(1 << 20, 5), "c", progress=None)
    # the replaced files look written two days ago: only the snapshot retention keeps them
    old = time.time() - 2 * DAY_S
    for p in replaced:
        os.utime(loc / p, (old, old))

    res = expire_iceberg(iceberg(loc), DAY_S, 30 * DAY_S, progress=None)

    assert res.files_deleted == 0 and not res.commits_expired
    assert all((loc / p).exists() for p in replaced)
    at_pin = table(loc).scan(snapshot_id=pinned.snapshot_id).to_arrow()
    assert at_pin.num_rows == sum(before.values())

    # two days later the compaction's snapshot is older than the retention: the six runs'
    # snapshots expire and their replaced files go; what the current snapshot names stays
    res = expire_iceberg(
        iceberg(loc), DAY_S, 30 * DAY_S, clock=lambda: time.time() + 2 * DAY_S, progress=None
    )

    assert len(res.commits_expired) == 6
    assert not any((loc / p).exists() for p in replaced)
    assert res.files_deleted >= len(replaced)
    tbl = table(loc)
    assert [s.snapshot_id for s in tbl.metadata.snapshots] == [tbl.current_snapshot().snapshot_id]
    assert scanned(loc) == before
    keep = referenced(tbl)
    for f in iceberg(loc).live_files():
        assert (loc / f).exists() and f"file://{loc}/{f}" in keep
    # the expired runs' records are still the table's (a file-source job must not re-take)
    assert records <= {c.run_id for c in iceberg(loc).commits()}
    # nothing outside _lakeop/ is left that the table does not name
    on_disk = {
        str(p.relative_to(loc)) for p in loc.rglob("*") if p.is_file() and "_lakeop" not in p.parts
    }
    assert on_disk <= {k.removeprefix(f"file://{loc}/") for k in keep}
