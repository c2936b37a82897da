"""Compaction beside real ``lakeop ingest`` processes, and killed at random moments, for
each format (parquet, delta, iceberg: the table read back by DuckDB over its own reader).

- Two ``lakeop compact`` processes race ten append runs and one ``overwrite-partitions``
  run: every row is in the table exactly once, and none of the overwritten rows comes back.
  (delta-rs lets two OPTIMIZEs of the same files both commit; lakeop's compaction lock makes
  a Delta table's compactions take turns, and the test of two racing them alone is below.)
- ``lakeop compact`` SIGKILLed at moments drawn uniformly over its run: the table holds its
  commit (snapshot, Delta OPTIMIZE commit) or not, the live file set is the old one or the
  new one, never a mix, and a retry completes the compaction with the same rows.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from enginekit import (
    DAILY,
    EVENTS,
    FORMATS,
    MAINT_HEADER,
    compacted,
    compaction_files,
    ingest_into,
    listed_rows,
    live_paths,
    maint_rows,
    read_rows,
    sizes_per_partition,
    write_csv,
)

TARGET = 1024 * 1024
KILLS = 6
RUNS = 24
ROWS = 10_000  # per run: the kill test's compaction takes about as long as the start-up


def manifests(
    tmp: Path, loc: Path, jobs: dict[str, tuple[Path, str]], table_format: str = "parquet"
) -> Path:
    spec: dict[str, Any] = {
        "location": f"file://{loc}",
        "format": table_format,
        # the Iceberg identifier of the tables enginekit.ingest_into seeds
        **({"iceberg": {"namespace": "t", "name": "events"}} if table_format == "iceberg" else {}),
        "partitioning": DAILY,
        "maintenance": {"compaction": {"targetFileSizeBytes": TARGET, "minInputFiles": 3}},
    }
    meta = {"namespace": "default"}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {**meta, "name": "events"},
            "spec": spec,
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "events-v1"},
            "spec": {"tableRef": "events", "version": 1, "fields": list(EVENTS)},
        },
    ]
    for name, (src, mode) in jobs.items():
        docs.append(
            {
                "apiVersion": "lakeop.io/v1alpha1",
                "kind": "IngestionJob",
                "metadata": {**meta, "name": name},
                "spec": {
                    "tableRef": "events",
                    "mode": mode,
                    "source": {"uri": f"file://{src}", "format": "csv"},
                },
            }
        )
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


#: a killed compaction's lock lapses this soon, so a retry of another run id waits briefly
SHORT_LOCK = {"LAKEOP_CLAIM_LEASE_SECONDS": "3", "LAKEOP_CLAIM_CLOCK_SKEW_SECONDS": "1"}


def lakeop(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lakeop", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def first_progress(p: subprocess.Popen[str]) -> float:
    """When the compaction printed its first progress line (its work has begun)."""
    assert p.stderr is not None
    line = p.stderr.readline()
    assert "compact: [1/" in line, line  # "lakeop: compact: [1/5] ..." (the engine log)
    return time.monotonic()


@pytest.mark.parametrize(
    "table_format",
    [
        "parquet",
        "delta",
        "iceberg",
    ],
)
def test_compaction_races_ten_appends_and_an_overwrite(tmp_path: Path, table_format: str) -> None:
    loc = tmp_path / "lake"
    for i in range(30):  # days 1..5, i % 5 == 0 on day 1
        ingest_into(tmp_path, loc, table_format, f"seed{i}", i * 20, 20)
    jobs: dict[str, tuple[Path, str]] = {}
    for k in range(10):  # appends to days 2..5 only
        src = write_csv(
            tmp_path / "race" / f"a{k}.csv",
            MAINT_HEADER,
            maint_rows(10_000 + k * 100, 100, (2, 3, 4, 5)),
        )
        jobs[f"append-{k}"] = (src, "append")
    ow = write_csv(tmp_path / "race" / "ow.csv", MAINT_HEADER, maint_rows(50_000, 33, (1,)))
    jobs["overwrite"] = (ow, "overwrite-partitions")
    m = manifests(tmp_path, loc, jobs, table_format)

    procs = {"compact-a": lakeop("compact", "-f", str(m), "--run-id", "compact-a")}
    for name in jobs:
        procs[name] = lakeop("ingest", "-f", str(m), "--job", name)
        if name == "append-5":
            procs["compact-b"] = lakeop("compact", "-f", str(m), "--run-id", "compact-b")
    outcomes = {}
    for name, p in procs.items():
        _, err = p.communicate(timeout=600)
        outcomes[name] = (p.returncode, err)
    for name, (code, err) in outcomes.items():
        if name.startswith("compact"):  # may give up after three refused commits
            assert code == 0 or (code == 1 and "CommitConflict" in err), (name, code, err[-2000:])
        else:
            assert code == 0, (name, code, err[-2000:])

    seed = [i for i in range(600) if i % 5 != 0]
    race = [10_000 + k * 100 + j for k in range(10) for j in range(100)]
    expected = Counter(seed + race + list(range(50_000, 50_033)))

    def check() -> None:
        assert Counter(r[0] for r in read_rows(loc, table_format)) == expected
        listed = listed_rows(loc, table_format)
        if listed is not None:
            assert Counter(r[0] for r in listed) == expected

    check()
    final = lakeop("compact", "-f", str(m))
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    check()
    for sizes in sizes_per_partition(loc, table_format).values():
        small = [s for s in sizes if s < 0.75 * TARGET]
        assert len(small) < 3
    assert compacted(loc, table_format)


def killed_state(
    loc: Path, table_format: str, run_id: str, old_live: set[str], before: Counter[Any]
) -> str:
    """After a kill: the old file set (no commit) or the compaction's (its commit), never a
    mix, every live file present and the same rows."""
    mine = compaction_files(loc, table_format, run_id)
    live = live_paths(loc, table_format)
    if mine is None:
        assert live == old_live
    else:
        assert live == mine and not live & old_live
    assert all((loc / f).exists() for f in live)
    assert Counter(read_rows(loc, table_format)) == before
    return "before" if mine is None else "after"


@pytest.mark.parametrize("table_format", FORMATS)
def test_random_sigkill_of_a_compaction_is_all_or_nothing(
    tmp_path: Path, table_format: str
) -> None:
    pristine = tmp_path / "pristine"

    def build(loc: Path) -> None:
        for i in range(RUNS):
            ingest_into(tmp_path, loc, table_format, f"r{i}", i * ROWS, ROWS)

    build(pristine)
    before = Counter(read_rows(pristine, table_format))
    assert sum(before.values()) == RUNS * ROWS

    def fresh(cycle: int) -> tuple[Path, Path, set[str]]:
        loc = tmp_path / f"t{cycle}"
        if table_format == "iceberg":  # its metadata names absolute paths: built again
            build(loc)
        else:
            shutil.copytree(pristine, loc)
        folder = tmp_path / f"m{cycle}"
        folder.mkdir()
        return loc, manifests(folder, loc, {}, table_format), live_paths(loc, table_format)

    loc, m, _ = fresh(0)
    t0 = time.monotonic()
    p = lakeop("compact", "-f", str(m), "--run-id", "k0")
    started = first_progress(p) - t0  # the interpreter's start-up and the table's read
    _, err = p.communicate(timeout=600)
    span = time.monotonic() - t0 - started  # rewriting, committing and publishing
    assert p.returncode == 0, err
    assert Counter(read_rows(loc, table_format)) == before

    rng = random.Random(14)
    outcomes: Counter[str] = Counter()
    for cycle in range(1, KILLS + 1):
        loc, m, old_live = fresh(cycle)
        run_id = f"k{cycle}"
        p = lakeop("compact", "-f", str(m), "--run-id", run_id, env=SHORT_LOCK)
        first_progress(p)
        time.sleep(rng.uniform(0, span))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        outcomes[killed_state(loc, table_format, run_id, old_live, before)] += 1
        # another run id: waits for the killed run's compaction lock (delta) to lapse
        retry = lakeop("compact", "-f", str(m), "--run-id", f"{run_id}-retry", env=SHORT_LOCK)
        _, err = retry.communicate(timeout=600)
        assert retry.returncode == 0, err
        assert Counter(read_rows(loc, table_format)) == before
        listed = listed_rows(loc, table_format)
        if listed is not None:
            assert Counter(listed) == before
        live = live_paths(loc, table_format)
        assert not live & old_live  # the retry completed the compaction
        for sizes in sizes_per_partition(loc, table_format).values():
            assert len(sizes) <= math.ceil(sum(sizes) / TARGET)
        shutil.rmtree(loc)
    print(f"{table_format}: outcomes over {KILLS} kills: {dict(outcomes)}")


def test_two_delta_compactions_racing_keep_each_row_once(tmp_path: Path) -> None:
    """delta-rs ``optimize.compact`` on a stale snapshot commits over a concurrent OPTIMIZE of
    the same files (no conflict is raised): without the compaction lock both rewrites stay
    live and every row is read twice."""
    loc = tmp_path / "lake"
    for i in range(30):
        ingest_into(tmp_path, loc, "delta", f"seed{i}", i * 20, 20)
    m = manifests(tmp_path, loc, {}, "delta")
    procs = [lakeop("compact", "-f", str(m), "--run-id", f"c{k}") for k in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    assert Counter(r[0] for r in read_rows(loc, "delta")) == Counter(range(600))
    assert compacted(loc, "delta")
