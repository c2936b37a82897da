"""Orphan data files of an Iceberg table: a killed attempt's files (written in place, named by
no snapshot) are never read, and the next run's recovery removes them once they are older
than a dead run's marker age; files older snapshots still name, a live run's files and young
files stay. Counted with DuckDB's iceberg_scan and pyiceberg's scan."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from enginekit import csv_source, plan, run, write_csv
from icebergkit import duck_rows, table
from test_engine_delta import COLUMNS, STRATEGIES, fmt
from test_engine_strategies import make_rows

from lakeop.engine.commitlog import STAGING_DIR
from lakeop.engine.formats.iceberg_orphans import referenced
from lakeop.engine.publish import STALE_MS

DAY = STRATEGIES[2]  # date, day


def csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, ",".join(COLUMNS), [",".join(fmt(r[k]) for k in COLUMNS) for r in rows])
    return path


def age(path: Path, ms: int) -> None:
    then = time.time() - ms / 1000
    os.utime(path, (then, then))


def data_files(lake: Path) -> set[str]:
    return {
        str(p.relative_to(lake))
        for p in lake.rglob("*.parquet")
        if not str(p.relative_to(lake)).startswith(("_lakeop", "metadata"))
    }


def count(lake: Path) -> int:
    ((n,),) = duck_rows(table(lake).metadata_location, "SELECT count(*) FROM t")
    return int(n)


def test_a_killed_attempts_files_are_never_read_and_are_swept(tmp_path: Path) -> None:
    rows = make_rows(seed=21)
    lake = tmp_path / "lake"
    first = run(
        plan(
            lake,
            csv_source(csv(tmp_path / "a" / "1.csv", rows)),
            partitioning=DAY,
            table_format="iceberg",
        )
    )
    assert first.error is None
    # an overwrite of one day: the replaced files are named only by the older snapshot
    day = [r for r in rows if r["ts"] is not None and r["ts"].day == rows[5]["ts"].day]
    over = plan(
        lake,
        csv_source(csv(tmp_path / "b" / "2.csv", day)),
        partitioning=DAY,
        table_format="iceberg",
        run_id="run-2",
        mode="overwrite-partitions",
    )
    assert run(over).error is None
    committed = data_files(lake)
    live = count(lake)

    # killed attempts: run-3 died long ago (its marker and files are old), run-9 left files
    # with no marker, run-5 is running now (fresh marker), and one young file of a dead run
    some = lake / sorted(committed)[0]
    killed = {
        "old": some.with_name("part-run-3-a0dead0-00000.parquet"),
        "nomarker": some.with_name("part-run-9-a0dead1-00000.parquet"),
        "live": some.with_name("part-run-5-a0live0-00000.parquet"),
        "young": some.with_name("part-run-7-a0dead2-00000.parquet"),
    }
    for f in killed.values():
        shutil.copyfile(some, f)
    staging = lake / STAGING_DIR
    (staging / "run-3.started").write_text('{"runId": "run-3", "startedMs": 0}')
    (staging / "run-5.started").write_text('{"runId": "run-5", "startedMs": 0}')
    for key in ("old", "nomarker", "live"):
        age(killed[key], STALE_MS + 3_600_000)
    age(staging / "run-3.started", STALE_MS + 3_600_000)

    tbl = table(lake)
    named = referenced(tbl, tbl.location())
    orphaned = {str(f.relative_to(lake)) for f in killed.values()}
    assert not orphaned & named  # no snapshot ever names them
    assert count(lake) == live  # invisible to readers
    assert named == committed  # every committed file (replaced ones too) is named

    # the next run's recovery sweeps the dead ones
    more = [dict(r, id=r["id"] + 10_000) for r in rows[:50]]
    nxt = plan(
        lake,
        csv_source(csv(tmp_path / "c" / "3.csv", more)),
        partitioning=DAY,
        table_format="iceberg",
        run_id="run-4",
    )
    result = run(nxt)
    assert result.error is None
    left = data_files(lake)
    assert not killed["old"].exists() and not killed["nomarker"].exists()
    assert killed["live"].exists() and killed["young"].exists()
    assert not (staging / "run-3.started").exists()
    assert (staging / "run-5.started").exists()
    assert committed <= left  # the older snapshot's files stay: time travel still reads them
    assert count(lake) == live + len(more)
    tbl = table(lake)
    first_snap = tbl.metadata.snapshots[0].snapshot_id
    assert tbl.scan(snapshot_id=first_snap).to_arrow().num_rows == len(rows)
    assert not {str(killed[k].relative_to(lake)) for k in ("live", "young")} & referenced(
        tbl, tbl.location()
    )


@pytest.mark.parametrize("mode", ["append"])
def test_nothing_to_sweep_leaves_every_file(tmp_path: Path, mode: str) -> None:
    rows = make_rows(seed=22)
    lake = tmp_path / "lake"
    src = csv(tmp_path / "a" / "1.csv", rows)
    assert (
        run(plan(lake, csv_source(src), partitioning=DAY, table_format="iceberg", mode=mode)).error
        is None
    )
    before = data_files(lake)
    src2 = csv(tmp_path / "b" / "2.csv", [dict(r, id=r["id"] + 10_000) for r in rows])
    assert (
        run(
            plan(lake, csv_source(src2), partitioning=DAY, table_format="iceberg", run_id="run-2")
        ).error
        is None
    )
    assert before <= data_files(lake)
    assert count(lake) == 2 * len(rows)
