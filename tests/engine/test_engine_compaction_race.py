"""Compaction beside real ``lakeop ingest`` processes, and killed at random moments.

- Two ``lakeop compact`` processes race ten append runs and one ``overwrite-partitions``
  run: every row is in the table exactly once, and none of the overwritten rows comes back.
- ``lakeop compact`` SIGKILLed at moments drawn uniformly over its run: the log holds its
  commit or not, the live file set is the old one or the new one, never a mix, and a retry
  completes the compaction with the same rows.
"""

from __future__ import annotations

import math
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from enginekit import EVENTS, write_csv
from test_engine_compaction import (
    DAILY,
    HEADER,
    committed,
    ingest,
    listed,
    per_partition,
    rows,
    storage,
)

from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import live_files

TARGET = 1024 * 1024
KILLS = 6
ROWS = 10_000  # per run: the kill test's compaction takes about as long as the start-up


def manifests(tmp: Path, loc: Path, jobs: dict[str, tuple[Path, str]]) -> Path:
    spec: dict[str, Any] = {
        "location": f"file://{loc}",
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


def lakeop(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lakeop", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_progress(p: subprocess.Popen[str]) -> float:
    """When the compaction printed its first progress line (its work has begun)."""
    assert p.stderr is not None
    line = p.stderr.readline()
    assert "lakeop compact: [1/" in line, line
    return time.monotonic()


def test_compaction_races_ten_appends_and_an_overwrite(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(30):  # days 1..5, i % 5 == 0 on day 1
        ingest(tmp_path, loc, f"seed{i}", i * 20, 20)
    jobs: dict[str, tuple[Path, str]] = {}
    for k in range(10):  # appends to days 2..5 only
        src = write_csv(
            tmp_path / "race" / f"a{k}.csv", HEADER, rows(10_000 + k * 100, 100, (2, 3, 4, 5))
        )
        jobs[f"append-{k}"] = (src, "append")
    ow = write_csv(tmp_path / "race" / "ow.csv", HEADER, rows(50_000, 33, (1,)))
    jobs["overwrite"] = (ow, "overwrite-partitions")
    m = manifests(tmp_path, loc, jobs)

    procs = {"compact-a": lakeop("compact", "-f", str(m), "--run-id", "compact-a")}
    for name in jobs:
        procs[name] = lakeop("ingest", "-f", str(m), "--job", name)
        if name == "append-5":
            procs["compact-b"] = lakeop("compact", "-f", str(m), "--run-id", "compact-b")
    outcomes = {}
    for name, p in procs.items():
        _, err = p.communicate(timeout=300)
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
        assert Counter(r[0] for r in committed(loc)) == expected
        assert Counter(r[0] for r in listed(loc)) == expected

    check()
    final = lakeop("compact", "-f", str(m))
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    check()
    for sizes in per_partition(loc).values():
        small = [s for s in sizes if s < 0.75 * TARGET]
        assert len(small) < 3
    log = CommitLog(storage(loc)).commits()
    assert any(c.mode == "compact" for c in log)


def test_random_sigkill_of_a_compaction_is_all_or_nothing(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    for i in range(24):
        ingest(tmp_path, pristine, f"r{i}", i * ROWS, ROWS)
    before = Counter(committed(pristine))
    old_live = set(live_files(CommitLog(storage(pristine)).commits()))

    def fresh(cycle: int) -> tuple[Path, Path]:
        loc = tmp_path / f"t{cycle}"
        shutil.copytree(pristine, loc)
        folder = tmp_path / f"m{cycle}"
        folder.mkdir()
        return loc, manifests(folder, loc, {})

    loc, m = fresh(0)
    t0 = time.monotonic()
    p = lakeop("compact", "-f", str(m), "--run-id", "k0")
    started = first_progress(p) - t0  # the interpreter's start-up and the log read
    _, err = p.communicate(timeout=300)
    span = time.monotonic() - t0 - started  # rewriting, committing and publishing
    assert p.returncode == 0, err
    assert Counter(committed(loc)) == before

    rng = random.Random(14)
    outcomes: Counter[str] = Counter()
    for cycle in range(1, KILLS + 1):
        loc, m = fresh(cycle)
        run_id = f"k{cycle}"
        p = lakeop("compact", "-f", str(m), "--run-id", run_id)
        first_progress(p)
        time.sleep(rng.uniform(0, span))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        log = CommitLog(storage(loc))
        mine = log.find(run_id)
        live = set(live_files(log.commits()))
        if mine is None:
            outcomes["before"] += 1
            assert live == old_live
            assert all((loc / f).exists() for f in live)
            assert Counter(committed(loc)) == before
        else:
            outcomes["after"] += 1
            assert live == {f.path for f in mine.files} and not live & old_live
        retry = lakeop("compact", "-f", str(m), "--run-id", f"{run_id}-retry")
        _, err = retry.communicate(timeout=300)
        assert retry.returncode == 0, err
        assert Counter(committed(loc)) == before
        assert Counter(listed(loc)) == before
        parts = per_partition(loc)
        for sizes in parts.values():
            assert len(sizes) <= math.ceil(sum(sizes) / TARGET)
        shutil.rmtree(loc)
    print(f"outcomes over {KILLS} kills: {dict(outcomes)}")
