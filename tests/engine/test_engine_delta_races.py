"""Delta tables under crashes and races, checked by a reader polling ``delta_scan``.

* Random kills: a real ``lakeop ingest -f`` into a Delta table killed (SIGKILL, SIGTERM,
  SIGINT) at a moment drawn over a run's measured duration (seeded, ``LAKEOP_KILL_SEED``
  replays it), then retried under the same run id or a new one: DuckDB reads each source
  row exactly once, and a reader polling ``delta_scan`` throughout never sees a partial run
  (only nothing, or every row). Every other kill waits for the run's first data file (a kill
  while it writes); ``LAKEOP_DELTA_KILLS`` sets the number of kills (default 9).
* Two jobs' runs committing into one table at the same moment, three times: all land.
* Four processes with one run id: one Delta commit of the run, every row once, all four
  report it.
* Overwrite-partitions while a reader polls: no snapshot holds old and new rows of one
  partition.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from deltakit import delta_table, duck_delta
from deltalake import DeltaTable
from enginekit import spawn

from lakeop.duckext import delta_extension
from lakeop.engine import leases

ROWS_PER_FILE = 150_000
FILES = 8
ROWS = FILES * ROWS_PER_FILE
KILLS = int(os.environ.get("LAKEOP_DELTA_KILLS", "9"))
LEASE_S, SKEW_S = 2.0, 0.2
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
EXITS = {
    signal.SIGKILL: {0, -signal.SIGKILL},
    signal.SIGTERM: {0, 128 + signal.SIGTERM, -signal.SIGTERM},
    signal.SIGINT: {0, 128 + signal.SIGINT, -signal.SIGINT},
}


def write_source(folder: Path, files: int = FILES, tag: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        with (folder / f"part-{n}.csv").open("w") as out:
            out.write("id,ts,name\n")
            for i in range(n * ROWS_PER_FILE, (n + 1) * ROWS_PER_FILE):
                out.write(f"{i},2026-01-{1 + i % 4:02d}T{i % 24:02d}:00:00Z,{tag}n{i % 997}\n")


def manifests(  # noqa: PLR0917
    path: Path, lake: Path, src: Path, partitioning: str, mode: str = "append", job: str = "load"
) -> Path:
    path.write_text(
        f"""apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {{name: events, namespace: default}}
spec:
  location: "file://{lake}"
  format: delta
  partitioning: {partitioning}
---
apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {{name: events-v1, namespace: default}}
spec:
  tableRef: events
  version: 1
  fields:
    - {{name: id, type: long, nullable: false}}
    - {{name: ts, type: timestamp}}
    - {{name: name, type: string}}
---
apiVersion: lakeop.io/v1alpha1
kind: IngestionJob
metadata: {{name: {job}, namespace: default}}
spec:
  tableRef: events
  mode: {mode}
  source: {{uri: "file://{src}/*.csv", format: csv}}
  batchSize: 20000
"""
    )
    return path


DAY = "{strategy: date, column: ts, granularity: day}"


def ingest(m: Path, run_id: str | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "lakeop", "ingest", "-f", str(m), "--output", "json"]
    if run_id:
        args += ["--run-id", run_id]
    env = {
        **os.environ,
        leases.LEASE_ENV: str(LEASE_S),
        leases.SKEW_ENV: str(SKEW_S),
        "LAKEOP_MAX_ROWS_PER_FILE": "40000",  # several files per partition
    }
    return spawn(args, env)


def finish(proc: subprocess.Popen[bytes], what: str) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{err.decode()[-3000:]}"
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


class Poller:
    """Reads the table with DuckDB's delta_scan in a loop; ``seen``: what each read saw."""

    def __init__(self, lake: Path, query: str) -> None:
        self.lake, self.query = lake, query
        self.seen: list[Any] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        con = duckdb.connect()
        con.execute(f"LOAD '{delta_extension()}'")
        while not self.stop.is_set():
            if not (self.lake / "_delta_log").exists():
                self.seen.append(None)
                time.sleep(0.01)
                continue
            try:
                rows = con.sql(self.query.format(t=f"delta_scan('{self.lake}')")).fetchall()
            except duckdb.Error as e:  # a table being created: no version yet
                if "version" not in str(e).lower() and "log" not in str(e).lower():
                    raise
                rows = None
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
    got = duck_delta(lake, "SELECT count(*), count(DISTINCT id), sum(id) FROM t")[0]
    assert got == (ROWS, ROWS, ROWS * (ROWS - 1) // 2), f"{what}: delta_scan read {got}"
    assert delta_table(lake).num_rows == ROWS, what


def lakeop_commits(lake: Path) -> list[str]:
    return [h["lakeop"] for h in DeltaTable(str(lake)).history() if "lakeop" in h]


def wait_for_file(lake: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if any(lake.rglob("*.parquet")):
            return
        time.sleep(0.005)


def kill_and_retry(  # noqa: PLR0917
    lake: Path, m: Path, cycle: int, at: float, seed: int, partial: list[Any]
) -> str:
    """One cycle: a run killed ``at`` seconds in, then its retry (same or new run id) while a
    reader polls; partial reads go to ``partial``. The outcome, for the log."""
    sig = SIGNALS[cycle % 3]
    same = (cycle // 3) % 2 == 0
    what = f"seed {seed}, cycle {cycle}: {sig.name} at {at:.2f} s, then {same=}"
    run_id = f"killed-{cycle}"
    with polling(lake, "SELECT count(*), count(DISTINCT id) FROM {t}") as poller:
        proc = ingest(m, run_id)
        if cycle % 2:  # at a random moment
            time.sleep(at)
        else:  # while it writes: once its first data file is there
            wait_for_file(lake, proc)
        proc.send_signal(sig)
        written = len(list(lake.rglob("*.parquet")))  # how far the run got
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
    assert len(lakeop_commits(lake)) == 1, what
    reads = [s[0] for s in poller.seen if s is not None]
    partial += [(what, r) for r in reads if r not in ((0, 0), (ROWS, ROWS))]
    assert reads and reads[-1] == (ROWS, ROWS), what
    moment = f"{at:.2f}" if cycle % 2 else "first-file"
    return f"{sig.name}@{moment}:{code}:{written}files"


@pytest.mark.slow
def test_random_kills_then_retries_on_delta(tmp_path: Path) -> None:
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

    durations = []
    for warm in (-1, 0):
        lake, m = fresh(warm)
        with polling(lake, "SELECT count(*) FROM {t}"):  # as loaded as the cycles are
            t0 = time.monotonic()
            finish(ingest(m), "measuring run")
            durations.append(time.monotonic() - t0)
        expect_once(lake, "measuring run")
    duration = durations[-1]
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
    # every other kill lands while the run writes (its first file is there)
    assert sum(":0:" not in o and not o.endswith(":0files") for o in outcomes) * 3 >= KILLS, (
        outcomes
    )


@pytest.mark.slow
def test_four_processes_one_run_id_one_delta_commit(tmp_path: Path) -> None:
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
    assert len(lakeop_commits(lake)) == 1
    expect_once(lake, "four racers")
    reads = [s[0] for s in poller.seen if s is not None]
    assert reads and all(r in ((0, 0), (ROWS, ROWS)) for r in reads), set(reads)
    # the losers' files are not part of the table: the commit names only the winner's
    record = json.loads(lakeop_commits(lake)[0])
    live = {a for a in DeltaTable(str(lake)).file_uris()}
    assert len(live) == len(record["files"])
    # and the losers removed their own files: the data files left are the winner's
    on_disk = {
        p.relative_to(lake).as_posix()
        for p in lake.rglob("*.parquet")
        if "_delta_log" not in p.parts and "_lakeop" not in p.parts
    }
    assert on_disk == {f["path"] for f in record["files"]}


@pytest.mark.slow
def test_overwrite_partitions_never_shows_old_and_new_rows(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    query = "SELECT ts::DATE, count(DISTINCT substr(name, 1, 2)) FROM {t} GROUP BY 1"
    with polling(lake, query) as poller:
        for gen in range(4):
            src = tmp_path / f"src{gen}"
            write_source(src, files=2, tag=f"g{gen}")
            mode = "overwrite-partitions" if gen else "append"
            m = manifests(tmp_path / f"m{gen}.yaml", lake, src, DAY, mode)
            finish(ingest(m, f"gen-{gen}"), f"generation {gen}")
    mixed = [s for s in poller.seen if s is not None and any(n != 1 for _, n in s)]
    assert mixed == []
    assert len([s for s in poller.seen if s]) > 10  # the reader read during the runs
    names = duck_delta(lake, "SELECT DISTINCT substr(name, 1, 2) FROM t")
    assert names == [("g3",)]
    assert duck_delta(lake, "SELECT count(*) FROM t")[0][0] == 2 * ROWS_PER_FILE


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
    records = [json.loads(r) for r in lakeop_commits(lake)]
    assert sorted(r["job"] for r in records) == ["load-a"] * 3 + ["load-b"] * 3
    got = duck_delta(lake, "SELECT substr(name, 1, 6), count(*) FROM t GROUP BY 1 ORDER BY 1")
    assert got == [("load-a", 3 * ROWS_PER_FILE), ("load-b", 3 * ROWS_PER_FILE)]
