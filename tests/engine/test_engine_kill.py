"""A run killed with SIGKILL mid-write, then retried: no partial file ever visible, exact count;
and ``lakeop ingest -f`` stopped by SIGTERM or SIGINT: an orderly stop that releases its claim.

The run is a real ``lakeop ingest --plan-env`` subprocess. While it writes, a watcher lists
the table the way DuckDB does (``**/*.parquet``) and the way pyarrow.dataset does; neither
may see anything before the kill. The retry with the same run id cleans the dead attempt's
staging directory and commits exactly the source rows once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pytest
from enginekit import csv_source, duck, plan, visible_parquet

from lakeop.engine import claimlog, leases
from lakeop.engine.commitlog import COMMITS_DIR, STAGING_DIR, CommitLog
from lakeop.storage import open_storage
from waiting import wait_for

ROWS = 2_000_000


def make_csv(path: Path) -> None:
    ids = pa.array(range(ROWS), pa.int64())
    day = pa.array([f"2026-04-{1 + i % 28:02d} 12:00:00" for i in range(ROWS)])
    table = pa.table(
        {
            "id": ids,
            "user": pa.array([f"u{i % 1000}" for i in range(ROWS)]),
            "ts": day,
            "amount": pa.array([i * 0.5 for i in range(ROWS)]),
            "country": pa.array(["DE"] * ROWS),
        }
    )
    pcsv.write_csv(table, path)


def start(p_json: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LAKEOP_PLAN": p_json, "LAKEOP_MIN_ROWS_PER_GROUP": "1000"}
    return subprocess.Popen(
        [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "LAKEOP_PLAN", "--output", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_mid_write_then_retry(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    make_csv(src)
    lake = tmp_path / "lake"
    p = plan(
        lake,
        csv_source(src),
        run_id="killme",
        batch_size=50_000,
        partitioning={"strategy": "date", "column": "ts", "granularity": "day"},
    )
    proc = start(p.to_json())
    staging = lake / STAGING_DIR / "killme"

    def staged_a_megabyte_or_exited() -> bool:
        staged = list(staging.rglob("*.staged")) if staging.exists() else []
        # what readers see while the run is writing: nothing
        assert visible_parquet(lake) == []
        if lake.exists():
            assert ds.dataset(str(lake), format="parquet").files == []
        return proc.poll() is not None or sum(f.stat().st_size for f in staged) > 1 << 20

    # the invariants above fail at once; only a staged file vanishing mid-stat is "not yet"
    wait_for(
        staged_a_megabyte_or_exited, 120, "1 MiB staged by run killme", 0.02, ignore=(OSError,)
    )
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert visible_parquet(lake) == []
    assert not (lake / COMMITS_DIR).exists()
    assert any(staging.rglob("*.staged"))  # the leftovers a retry must remove

    retry = start(p.to_json())
    _, err = retry.communicate(timeout=300)
    assert retry.returncode == 0, err.decode()
    assert b"removed uncommitted files of run killme" in err
    count, distinct, total = duck(lake, "SELECT count(*), count(DISTINCT id), sum(id) FROM t")[0]
    assert (count, distinct, total) == (ROWS, ROWS, ROWS * (ROWS - 1) // 2)
    assert not staging.exists()
    assert not list(lake.rglob("*.staged"))


def manifests(path: Path, lake: Path, src: Path) -> Path:
    path.write_text(
        f"""apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {{name: events, namespace: default}}
spec:
  location: "file://{lake}"
  partitioning: {{strategy: date, column: ts, granularity: day}}
---
apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {{name: events-v1, namespace: default}}
spec:
  tableRef: events
  version: 1
  fields:
    - {{name: id, type: long, nullable: false}}
    - {{name: user, type: string}}
    - {{name: ts, type: timestamp}}
---
apiVersion: lakeop.io/v1alpha1
kind: IngestionJob
metadata: {{name: load, namespace: default}}
spec:
  tableRef: events
  source: {{uri: "file://{src}", format: csv}}
  batchSize: 50000
"""
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_ingest_f_stopped_by_a_signal_releases_its_claim(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    src = tmp_path / "big.csv"
    make_csv(src)
    lake = tmp_path / "lake"
    m = manifests(tmp_path / "m.yaml", lake, src)
    cmd = [sys.executable, "-m", "lakeop", "ingest", "-f", str(m), "--output", "json"]
    proc = subprocess.Popen(
        [*cmd, "--run-id", "stopped"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    staging = lake / STAGING_DIR / "stopped"
    wait_for(
        lambda: proc.poll() is not None or any(staging.rglob("*.staged")),
        120,
        "a staged file of run stopped",
        0.02,
    )
    assert proc.poll() is None, "the run finished before it could be stopped"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err.decode()
    summary = json.loads(out)
    assert summary["error"]["reason"] == "Interrupted"
    assert sig.name in summary["error"]["message"]
    # an orderly stop: staging removed, the claim released, nothing visible, nothing committed
    assert not staging.exists()
    assert visible_parquet(lake) == []
    storage = open_storage(f"file://{lake}")
    log = claimlog.read_log(storage, "load", [])
    assert [log.state(c) for c in log.claims] == ["released"]
    # so the next run, under a new run id and without waiting for any lease, takes it all
    retry = subprocess.run(cmd, capture_output=True, check=False)
    assert retry.returncode == 0, retry.stderr.decode()
    count, distinct = duck(lake, "SELECT count(*), count(DISTINCT id) FROM t")[0]
    assert (count, distinct) == (ROWS, ROWS)


@pytest.mark.slow
def test_a_paused_run_whose_lease_lapsed_does_not_commit(tmp_path: Path) -> None:
    """SIGSTOP (a GC pause, a frozen VM) past the lease: another run takes the input over;
    the paused run, resumed, finds its lease lost and does not commit. Each row once."""
    src = tmp_path / "big.csv"
    make_csv(src)
    lake = tmp_path / "lake"
    m = manifests(tmp_path / "m.yaml", lake, src)
    cmd = [sys.executable, "-m", "lakeop", "ingest", "-f", str(m), "--output", "json"]
    env = {**os.environ, leases.LEASE_ENV: "1.5", leases.SKEW_ENV: "0.2"}
    paused = subprocess.Popen(
        [*cmd, "--run-id", "paused"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    staging = lake / STAGING_DIR / "paused"
    wait_for(
        lambda: paused.poll() is not None or any(staging.rglob("*.staged")),
        120,
        "a staged file of run paused",
        0.02,
    )
    assert paused.poll() is None, "the run finished before it could be paused"
    paused.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.5 + 0.2 + 0.5)  # its lease lapses
        taker = subprocess.run(
            [*cmd, "--run-id", "taker"], env=env, capture_output=True, check=False
        )
        assert taker.returncode == 0, taker.stderr.decode()
        assert b"its lease lapsed" in taker.stderr
    finally:
        paused.send_signal(signal.SIGCONT)
    out, err = paused.communicate(timeout=300)
    assert paused.returncode == 1, err.decode()
    assert json.loads(out)["error"]["reason"] in {"LeaseLost", "ClaimReleased"}
    count, distinct = duck(lake, "SELECT count(*), count(DISTINCT id) FROM t")[0]
    assert (count, distinct) == (ROWS, ROWS)
    commits = [c.run_id for c in CommitLog(open_storage(f"file://{lake}")).commits()]
    assert commits == ["taker"]


@pytest.mark.slow
def test_ingest_f_that_runs_out_of_space_releases_its_claim(tmp_path: Path) -> None:
    """A write refused by the OS (here a file-size limit: EFBIG, as a full disk gives
    ENOSPC) fails the run with exit 1, releases its claim, and the next run takes it all."""
    src = tmp_path / "big.csv"
    make_csv(src)
    lake = tmp_path / "lake"
    m = manifests(tmp_path / "m.yaml", lake, src)
    cmd = [sys.executable, "-m", "lakeop", "ingest", "-f", str(m), "--output", "json"]
    limited = "ulimit -f 100; trap '' XFSZ; exec " + " ".join(f"'{a}'" for a in cmd)
    full = subprocess.run(["bash", "-c", limited], capture_output=True, check=False)
    assert full.returncode == 1, full.stderr.decode()
    error = json.loads(full.stdout)["error"]
    assert "too large" in error["message"].lower(), error
    log = claimlog.read_log(open_storage(f"file://{lake}"), "load", [])
    assert [log.state(c) for c in log.claims] == ["released"]
    assert visible_parquet(lake) == []
    retry = subprocess.run(cmd, capture_output=True, check=False)
    assert retry.returncode == 0, retry.stderr.decode()
    count, distinct = duck(lake, "SELECT count(*), count(DISTINCT id) FROM t")[0]
    assert (count, distinct) == (ROWS, ROWS)
