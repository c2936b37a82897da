"""Iceberg tables under crashes and races, checked by a reader polling DuckDB's
``iceberg_scan`` at the metadata location the catalog names (read from the SQLite catalog's
``iceberg_tables`` row, as any engine attached to the catalog would).

* Random kills: a real ``lakeop ingest -f`` into an Iceberg table killed (SIGKILL, SIGTERM,
  SIGINT) at a moment drawn over a run's measured duration (seeded, ``LAKEOP_KILL_SEED``
  replays it), then retried under the same run id or a new one: each source row is read
  exactly once, one snapshot holds the run, and the polling reader never sees a partial
  run. ``LAKEOP_ICEBERG_KILLS`` sets the number of kills (default 6).
* Four processes with one run id: one snapshot of the run, every row once, all four
  report it, the losers' files removed.
* Two jobs' runs committing into one table at the same moment, three times: all land,
  each run's rows exactly once (the losing committer reloads and retries).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from icebergkit import duck_connect, duck_rows, table
from test_engine_delta_races import (
    EXITS,
    FILES,
    LEASE_S,
    ROWS,
    ROWS_PER_FILE,
    SIGNALS,
    SKEW_S,
    finish,
    ingest,
    write_source,
)
from test_engine_delta_races import manifests as delta_manifests

KILLS = int(os.environ.get("LAKEOP_ICEBERG_KILLS", "6"))
DAY = "{strategy: date, column: ts, granularity: day}"
IDENT = ("default", "events")


def manifests(  # noqa: PLR0917
    path: Path, lake: Path, src: Path, partitioning: str, mode: str = "append", job: str = "load"
) -> Path:
    delta_manifests(path, lake, src, partitioning, mode, job)
    path.write_text(path.read_text().replace("format: delta", "format: iceberg"))
    return path


def current_metadata(lake: Path) -> str | None:
    """The table's current metadata location as its catalog row names it."""
    db = lake / "_lakeop" / "iceberg-catalog.db"
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute(
                "SELECT metadata_location FROM iceberg_tables "
                "WHERE table_namespace = ? AND table_name = ?",
                IDENT,
            ).fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:  # the catalog's tables not created yet
        return None
    return None if row is None else str(row[0])


class Poller:
    def __init__(self, lake: Path, query: str) -> None:
        self.lake, self.query = lake, query
        self.seen: list[Any] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        con = duck_connect()
        while not self.stop.is_set():
            meta = current_metadata(self.lake)
            if meta is None:
                self.seen.append(None)
                time.sleep(0.01)
                continue
            try:
                rows = con.sql(self.query.format(t=f"iceberg_scan('{meta}')")).fetchall()
            except duckdb.Error as e:  # a table created without a snapshot yet
                if "snapshot" not in str(e).lower():
                    raise
                rows = [(0, 0)]
            self.seen.append(rows)
        con.close()


@contextmanager
def polling(lake: Path, query: str) -> Iterator[Poller]:
    poller = Poller(lake, query)
    poller.thread.start()
    try:
        yield poller
    finally:
        poller.stop.set()
        poller.thread.join(timeout=60)


def expect_once(lake: Path, what: str) -> None:
    meta = current_metadata(lake)
    assert meta is not None, what
    got = duck_rows(meta, "SELECT count(*), count(DISTINCT id), sum(id) FROM t")[0]
    assert got == (ROWS, ROWS, ROWS * (ROWS - 1) // 2), f"{what}: iceberg_scan read {got}"
    assert table(lake, ident="default.events").scan().to_arrow().num_rows == ROWS, what


def snapshots(lake: Path) -> list[dict[str, str]]:
    tbl = table(lake, ident="default.events")
    return [dict(s.summary.additional_properties) for s in tbl.metadata.snapshots if s.summary]


def kill_and_retry(  # noqa: PLR0917
    lake: Path, m: Path, cycle: int, at: float, seed: int, partial: list[Any]
) -> str:
    sig = SIGNALS[cycle % 3]
    same = (cycle // 3) % 2 == 0
    what = f"seed {seed}, cycle {cycle}: {sig.name} at {at:.2f} s, then {same=}"
    run_id = f"killed-{cycle}"
    with polling(lake, "SELECT count(*), count(DISTINCT id) FROM {t}") as poller:
        proc = ingest(m, run_id)
        time.sleep(at)
        proc.send_signal(sig)
        written = len(list(lake.rglob("*.parquet")))
        _, err = proc.communicate(timeout=60)
        code = proc.returncode
        text = err.decode(errors="replace")
        in_startup = code == 1 and "KeyboardInterrupt" in text and "lakeop" not in text
        assert code in EXITS[sig] or in_startup, f"{what}: exit {code}\n{text[-3000:]}"
        if same:
            finish(ingest(m, run_id), f"{what}: retry")
        else:
            if sig == signal.SIGKILL and code != 0:
                time.sleep(LEASE_S + SKEW_S + 0.3)  # the killed run's claim lapses
            finish(ingest(m), f"{what}: new run")
        time.sleep(0.2)
    expect_once(lake, what)
    assert len(snapshots(lake)) == 1, what
    reads = [s[0] for s in poller.seen if s is not None]
    partial += [(what, r) for r in reads if r not in ((0, 0), (ROWS, ROWS))]
    assert reads and reads[-1] == (ROWS, ROWS), what
    return f"{sig.name}@{at:.2f}:{code}:{written}files"


@pytest.mark.slow
def test_random_kills_then_retries_on_iceberg(tmp_path: Path) -> None:
    seed = int(os.environ.get("LAKEOP_KILL_SEED") or random.randrange(1 << 32))
    print(f"random-kill seed: {seed} (LAKEOP_KILL_SEED={seed} replays it)")
    rng = random.Random(seed)
    base = tmp_path / "base"
    write_source(base)

    def fresh(cycle: int) -> tuple[Path, Path]:
        root = tmp_path / f"c{cycle}"
        src = root / "src"
        src.mkdir(parents=True)
        for f in base.iterdir():
            os.link(f, src / f.name)
        return root / "lake", manifests(root / "m.yaml", root / "lake", src, DAY)

    lake, m = fresh(0)
    with polling(lake, "SELECT count(*) FROM {t}"):
        t0 = time.monotonic()
        finish(ingest(m), "measuring run")
        duration = time.monotonic() - t0
    expect_once(lake, "measuring run")
    print(f"a full run takes {duration:.2f} s")

    outcomes: list[str] = []
    partial: list[Any] = []
    for cycle in range(1, KILLS + 1):
        at = rng.uniform(0, duration)
        lake, m = fresh(cycle)
        outcomes.append(kill_and_retry(lake, m, cycle, at, seed, partial))
        shutil.rmtree(lake.parent)
    print("kills:", " ".join(outcomes))
    assert partial == []
    assert sum(":0:" not in o for o in outcomes) * 2 >= KILLS, outcomes


@pytest.mark.slow
def test_four_processes_one_run_id_one_snapshot(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    write_source(src)
    m = manifests(tmp_path / "m.yaml", lake, src, DAY)
    with polling(lake, "SELECT count(*), count(DISTINCT id) FROM {t}") as poller:
        procs = [ingest(m, "same") for _ in range(4)]
        summaries = [finish(p, f"racer {i}") for i, p in enumerate(procs)]
        time.sleep(0.2)
    keys = ("runId", "rowsRead", "rowsWritten", "filesWritten", "bytesWritten", "partitions")
    assert len({json.dumps([s[k] for k in keys]) for s in summaries}) == 1, summaries
    assert summaries[0]["rowsWritten"] == ROWS
    assert [s["lakeop.run-id"] for s in snapshots(lake)] == ["same"]
    expect_once(lake, "four racers")
    reads = [s[0] for s in poller.seen if s is not None]
    assert reads and all(r in ((0, 0), (ROWS, ROWS)) for r in reads), set(reads)
    # the losers dropped their files: what is on disk is what the snapshot names
    live = {t.file.file_path for t in table(lake, ident="default.events").scan().plan_files()}
    on_disk = {f"file://{p}" for p in lake.rglob("*.parquet")}
    assert on_disk == live
    assert summaries[0]["filesWritten"] == len(live) >= FILES


@pytest.mark.slow
def test_concurrent_runs_of_two_jobs_both_land(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for round_ in range(3):
        procs = []
        for job in ("load-a", "load-b"):
            src = tmp_path / f"{job}-{round_}"
            write_source(src, files=1, tag=f"{job}-")
            m = manifests(tmp_path / f"{job}-{round_}.yaml", lake, src, DAY, job=job)
            procs.append(ingest(m))
        for i, p in enumerate(procs):
            assert finish(p, f"round {round_}, job {i}")["rowsWritten"] == ROWS_PER_FILE
    jobs = sorted(s["lakeop.job"] for s in snapshots(lake))
    assert jobs == ["load-a"] * 3 + ["load-b"] * 3
    meta = current_metadata(lake)
    assert meta is not None
    got = duck_rows(
        meta, "SELECT substr(name, 1, 6), count(*), count(DISTINCT id) FROM t GROUP BY 1 ORDER BY 1"
    )
    # each job's three runs wrote ids 0..ROWS_PER_FILE three times: every row exactly once
    assert got == [
        ("load-a", 3 * ROWS_PER_FILE, ROWS_PER_FILE),
        ("load-b", 3 * ROWS_PER_FILE, ROWS_PER_FILE),
    ]
