"""``format: delta``: the data files of attempts that never committed (a killed run, a
racer that could not remove its own) are removed by the table's VACUUM once older than the
retention, and never earlier (a run in flight writes in place before its commit)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltakit import duck_delta
from deltalake import DeltaTable
from enginekit import csv_source, plan, run, write_csv

from lakeop.engine.delta_maintenance import MIN_VACUUM_HOURS, expire_delta
from lakeop.storage import open_storage

FIELDS = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "country", "type": "string"},
)
SPEC = {"strategy": "list", "column": "country", "values": {"eu": ["de"]}, "default": "o"}


def _orphan(lake: Path, name: str, age_hours: float) -> Path:
    """A file like a killed attempt's: in a partition directory, named by no version."""
    path = lake / "country_group=eu" / name
    pq.write_table(pa.table({"id": [99], "country": ["de"]}), path)
    then = time.time() - age_hours * 3600
    os.utime(path, (then, then))
    return path


def test_vacuum_removes_unnamed_attempt_files_after_the_retention(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    src = write_csv(tmp_path / "a.csv", "id,country", ["1,de", "2,us", "3,de"])
    run(plan(lake, csv_source(src), fields=FIELDS, table_format="delta", partitioning=SPEC))
    live = set(DeltaTable(str(lake)).file_uris())
    dead = _orphan(lake, "part-killed-a0b1c2-00000.parquet", MIN_VACUUM_HOURS + 2)
    fresh = _orphan(lake, "part-inflight-a3d4e5-00000.parquet", 0.1)
    storage = open_storage("file://" + str(lake), {})

    result = expire_delta(storage, 0, 7 * 86400, progress=None)

    assert not dead.exists()
    assert fresh.exists()  # younger than the shortest retention: a run may still commit it
    assert result.files_deleted == 1 and result.bytes_freed > 0
    assert set(DeltaTable(str(lake)).file_uris()) == live
    assert all(Path(u.removeprefix("file://")).exists() for u in live)
    assert duck_delta(lake, "SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]
