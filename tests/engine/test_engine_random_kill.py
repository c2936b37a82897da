"""Runs killed at random moments, then retried: the table always ends with each source row once.

Each cycle ingests a multi-file CSV source (480,000 rows in 8 files) into a fresh table with a
real ``lakeop ingest -f`` subprocess and kills it at a moment drawn uniformly over a run's
measured duration (seeded; the seed is printed, ``LAKEOP_KILL_SEED`` replays it), with
SIGKILL, SIGTERM or SIGINT. Then one of:

* a retry with a new run id (what a user does after a dead ``lakeop ingest -f``);
* a retry with the same run id (``--run-id``: what a retried Job pod does);
* an incremental run with a new run id after new files landed.

After each, DuckDB (an independent reader, listing the directories) must read exactly the
source's rows, each id once, and lakeop's own ``read_table`` (the commit log) must agree. A
SIGTERM or SIGINT the run saw must have released its claim (exit 143 / 130); after a SIGKILL
the claim's lease must lapse (2 s here) before a run with another id can take its inputs,
which the test waits for. ``LAKEOP_KILLS`` sets the number of kills (default 30). A smaller
variant (``LAKEOP_S3_KILLS``, default 6, half the source) runs the same on MinIO; DuckDB then
reads a copy of the bucket's listing.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from engine_services import S3Server
from enginekit import duck, spawn

from lakeop.core.schema.parse import parse_fields
from lakeop.engine import claimlog, leases
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.reader import read_table
from lakeop.storage import open_storage

ROWS_PER_FILE = 60_000
EXTRA_FILES = 2
KILLS = int(os.environ.get("LAKEOP_KILLS", "30"))
S3_KILLS = int(os.environ.get("LAKEOP_S3_KILLS", "6"))
LEASE_S, SKEW_S = 2.0, 0.2
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
MODES = ("new-run-id", "same-run-id", "incremental")
FIELDS = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "ts", "type": "timestamp"},
    {"name": "name", "type": "string"},
]
#: exit codes a killed run may end with: finished (0), the signal seen (128 + n), or the
#: signal's default action before lakeop installed its handlers (-n)
EXITS = {
    signal.SIGKILL: {0, -signal.SIGKILL},
    signal.SIGTERM: {0, 128 + signal.SIGTERM, -signal.SIGTERM},
    signal.SIGINT: {0, 128 + signal.SIGINT, -signal.SIGINT},
}


def write_source(path: Path, first_id: int, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("id,ts,name\n")
        for i in range(first_id, first_id + rows):
            out.write(f"{i},2026-01-{1 + i % 4:02d}T{i % 24:02d}:00:00Z,n{i % 997}\n")


@dataclass(frozen=True)
class Lake:
    """Where a cycle's table lives: its URL, the storage variables, and a local directory
    DuckDB can read (the table itself, or a copy of what listing the bucket shows)."""

    url: str
    env: Mapping[str, str] = field(default_factory=dict)
    local: Callable[[], Path] | None = None

    def view(self) -> Path:
        return self.local() if self.local else Path(self.url.removeprefix("file://"))


def manifests(path: Path, lake: Lake, src: Path) -> Path:
    fields = "\n".join(
        f"    - {{name: {f['name']}, type: {f['type']}, "
        f"nullable: {str(f.get('nullable', True)).lower()}}}"
        for f in FIELDS
    )
    path.write_text(
        f"""apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {{name: events, namespace: default}}
spec:
  location: "{lake.url}"
  partitioning: {{strategy: date, column: ts, granularity: day}}
---
apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {{name: events-v1, namespace: default}}
spec:
  tableRef: events
  version: 1
  fields:
{fields}
---
apiVersion: lakeop.io/v1alpha1
kind: IngestionJob
metadata: {{name: load, namespace: default}}
spec:
  tableRef: events
  source: {{uri: "file://{src}/*.csv", format: csv}}
  batchSize: 20000
"""
    )
    return path


def ingest(m: Path, lake: Lake, run_id: str | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "lakeop", "ingest", "-f", str(m), "--output", "json"]
    if run_id:
        args += ["--run-id", run_id]
    env = {
        **os.environ,
        **lake.env,
        leases.LEASE_ENV: str(LEASE_S),
        leases.SKEW_ENV: str(SKEW_S),
        "LAKEOP_MAX_ROWS_PER_FILE": "40000",  # several files per partition: more moments to die
    }
    return spawn(args, env)


def finish(proc: subprocess.Popen[bytes], what: str) -> None:
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{err.decode()[-3000:]}"


def expect(lake: Lake, ids: Sequence[range], what: str) -> None:
    """DuckDB over the directories and read_table over the commit log: each id once."""
    want_rows = sum(len(r) for r in ids)
    want_sum = sum(sum(r) for r in ids)
    got = duck(lake.view(), "SELECT count(*), count(DISTINCT id), sum(id) FROM t")[0]
    assert got == (want_rows, want_rows, want_sum), f"{what}: DuckDB read {got}"
    table = read_table(lake.url, parse_fields(FIELDS), lake.env)
    mine = (table.num_rows, pc.count_distinct(table["id"]).as_py(), pc.sum(table["id"]).as_py())
    assert mine == got, f"{what}: read_table {mine} != DuckDB {got}"


def live_claim_of(lake: Lake, run_id: str) -> str | None:
    """The state of the run's claim if it is still live and uncommitted, else None."""
    storage = open_storage(lake.url, lake.env, "LAKEOP_STORAGE_")
    log = claimlog.read_log(storage, "load", CommitLog(storage).commits())
    own = log.of_run(run_id)
    return None if own is None or log.state(own) != "live" else f"claim {own.seq} live"


def follow_up(  # noqa: PLR0917
    mode: str, m: Path, lake: Lake, src: Path, run_id: str, cycle: int, *, lapse: bool
) -> list[range]:
    """What follows a kill; the ids of the files it added. ``lapse``: the killed run died
    without releasing its claim, so a run with another id waits for its lease to lapse."""
    if mode == "same-run-id":
        finish(ingest(m, lake, run_id), f"cycle {cycle}: retry of {run_id}")
        return []
    ids = []
    if mode == "incremental":
        for k in range(EXTRA_FILES):
            first = 10_000_000 + cycle * 100_000 + k * 1_000
            write_source(src / f"new-{k}.csv", first, 1_000)
            ids.append(range(first, first + 1_000))
    if lapse:  # nothing frees a SIGKILLed run's claim but its lease
        time.sleep(LEASE_S + SKEW_S + 0.3)
    finish(ingest(m, lake), f"cycle {cycle}: {mode} run after {run_id}")
    return ids


def random_kills(tmp_path: Path, make_lake: Callable[[int], Lake], files: int, kills: int) -> None:
    """The cycles of the module doc over ``files`` source files, ``kills`` times."""
    seed = int(os.environ.get("LAKEOP_KILL_SEED") or random.randrange(1 << 32))
    print(f"random-kill seed: {seed} (LAKEOP_KILL_SEED={seed} replays it)")
    rng = random.Random(seed)
    base = tmp_path / "base"
    for n in range(files):
        write_source(base / f"part-{n}.csv", n * ROWS_PER_FILE, ROWS_PER_FILE)
    base_ids = [range(n * ROWS_PER_FILE, (n + 1) * ROWS_PER_FILE) for n in range(files)]

    def fresh(cycle: int) -> tuple[Lake, Path, Path]:
        root = tmp_path / f"c{cycle}"
        src = root / "src"
        src.mkdir(parents=True)
        for f in base.iterdir():
            os.link(f, src / f.name)  # the same bytes, this cycle's own file identities
        lake = make_lake(cycle)
        return lake, src, manifests(root / "m.yaml", lake, src)

    # the duration a run takes here (warm: the second of two), to draw kill moments over
    for warm in (-1, 0):
        lake, src, m = fresh(warm)
        t0 = time.monotonic()
        finish(ingest(m, lake), "measuring run")
        duration = time.monotonic() - t0
        expect(lake, base_ids, "measuring run")
        shutil.rmtree(src.parent)
    print(f"a full run takes {duration:.2f} s")

    outcomes: list[str] = []
    for cycle in range(1, kills + 1):
        sig = SIGNALS[cycle % 3]
        mode = MODES[(cycle // 3) % 3]
        at = rng.uniform(0, duration)
        lake, src, m = fresh(cycle)
        what = f"seed {seed}, cycle {cycle}: {sig.name} at {at:.2f} s, then {mode}"
        run_id = f"killed-{cycle}"
        proc = ingest(m, lake, run_id)
        time.sleep(at)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        code = proc.returncode
        text = err.decode(errors="replace")
        # SIGINT while the interpreter itself starts (before any lakeop code, so before any
        # claim) ends in Python's own exit 1 with a KeyboardInterrupt in its bootstrap
        in_startup = code == 1 and "KeyboardInterrupt" in text and "lakeop" not in text
        assert code in EXITS[sig] or in_startup, f"{what}: exit {code}\n{text[-3000:]}"
        outcomes.append(f"{sig.name}@{at:.2f}:{code}")
        if code > 0:  # lakeop saw the signal: it released its claim on the way out
            assert live_claim_of(lake, run_id) is None, what
        lapse = sig == signal.SIGKILL and code != 0
        ids = follow_up(mode, m, lake, src, run_id, cycle, lapse=lapse)
        expect(lake, [*base_ids, *ids], what)
        shutil.rmtree(src.parent)
    print("kills:", " ".join(outcomes))
    assert len(outcomes) == kills
    # drawn over the whole run, most kills land while it runs (not after it finished)
    assert sum(not o.endswith(":0") for o in outcomes) * 2 >= kills, outcomes


@pytest.mark.slow
def test_random_kills_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    random_kills(tmp_path, lambda c: Lake(f"file://{tmp_path}/c{c}/lake"), files=8, kills=KILLS)


@pytest.mark.slow
@pytest.mark.s3
def test_random_kills_on_minio(tmp_path: Path, s3: S3Server) -> None:
    fs = pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint_override=s3.endpoint.split("://")[1],
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir("randomkill")

    def make_lake(cycle: int) -> Lake:
        prefix = f"randomkill/c{cycle}"

        def local() -> Path:
            copy = tmp_path / f"view-{cycle}-{time.monotonic_ns()}"
            pafs.copy_files(prefix, str(copy), source_filesystem=fs)
            return copy

        return Lake(f"s3://{prefix}", s3.env(), local)

    random_kills(tmp_path, make_lake, files=4, kills=S3_KILLS)
