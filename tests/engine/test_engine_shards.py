"""Scale-out: N share processes of one run commit exactly once, with exactly the source rows.

Shares run as real ``lakeop ingest --plan-env`` subprocesses with ``JOB_COMPLETION_INDEX``, as
the pods of an Indexed Job do. A share's first attempt fails for real: the place its manifest
goes is occupied by a directory, so it cannot complete; once that is cleared its retry redoes
its share only and the run commits.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from enginekit import csv_source, duck, plan, run, visible_parquet, write_csv

from lakeop.core.runs.plan import RunPlan
from lakeop.core.spec.sources import SecretKeyRef, SqlSourceSpec
from lakeop.core.timestamps import format_epoch as iso
from lakeop.engine.claims import read_log
from lakeop.engine.commitlog import COMMITS_DIR, STAGING_DIR, CommitLog
from lakeop.engine.run_commit import commit_shares  # what the last pods run
from lakeop.engine.shards import INDEX_ENV, build_commit, read_manifests
from lakeop.storage import open_storage

HEADER = "id,user,ts,amount,country"
INGEST = [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "LAKEOP_PLAN", "--output", "json"]


def make_files(src: Path, count: int = 9) -> int:
    """``count`` CSV files of different sizes with distinct ids; returns the row total."""
    src.mkdir()
    next_id = 0
    for n in range(count):
        rows = [
            f"{next_id + i},u{i % 7},2026-04-{1 + i % 28:02d} 12:00:00,{i * 0.5},DE"
            for i in range(100 * (n + 1))
        ]
        write_csv(src / f"part-{n}.csv", HEADER, rows)
        next_id += len(rows)
    return next_id


def scaled(lake: Path, src: Path, count: int, **kw: object) -> RunPlan:
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="run-9", **kw)  # type: ignore[arg-type]
    return dataclasses.replace(p, parallelism=count)


def share(p: RunPlan, index: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKEOP_PLAN": p.to_json(), INDEX_ENV: str(index)}
    return subprocess.run(
        INGEST,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def in_process(p: RunPlan, index: int) -> dict[str, object]:
    return run(p, {**os.environ, INDEX_ENV: str(index)}).summary().to_dict()


def commits(lake: Path) -> list[str]:
    return sorted(f.name for f in (lake / COMMITS_DIR).glob("*.json"))


def test_three_shares_one_failing_once_commit_exactly_the_source(tmp_path: Path) -> None:
    total = make_files(tmp_path / "src")
    lake = tmp_path / "lake"
    p = scaled(lake, tmp_path / "src", 3)
    blocker = lake / STAGING_DIR / p.run_id / "shards" / "1.json"
    (blocker / "occupied").mkdir(parents=True)  # share 1 cannot replace its manifest

    procs = [
        subprocess.Popen(
            INGEST,
            env={**os.environ, "LAKEOP_PLAN": p.to_json(), INDEX_ENV: str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outs = [proc.communicate(timeout=120) for proc in procs]
    codes = [proc.returncode for proc in procs]
    assert codes == [0, 1, 0], outs
    failed = json.loads(outs[1][0])
    assert failed["error"]["reason"] == "StorageError"
    assert commits(lake) == []  # two of three shares: nothing committed
    assert visible_parquet(lake) == []

    blocker.joinpath("occupied").rmdir()
    blocker.rmdir()
    retry = share(p, 1)
    assert retry.returncode == 0, retry.stderr
    summary = json.loads(retry.stdout)
    assert summary["shard"] == {"index": 1, "count": 3, "committed": True}

    assert len(commits(lake)) == 1
    assert duck(lake, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t") == [
        (total, total, 0, total - 1)
    ]
    commit = CommitLog(open_storage(f"file://{lake}")).commits()[0]
    assert [s["index"] for s in commit.shards] == [0, 1, 2]
    assert sum(s["rowsWritten"] for s in commit.shards) == total == commit.rows
    assert len(commit.sources) == 9
    assert not (lake / STAGING_DIR / p.run_id).exists()  # published and cleaned up

    # every share's report adds up to the run (the operator sums the termination messages)
    reports = [json.loads(o[0]) for i, o in enumerate(outs) if i != 1] + [summary]
    assert sum(r["rowsWritten"] for r in reports) == total


def test_retried_share_replaces_its_earlier_files(tmp_path: Path) -> None:
    total = make_files(tmp_path / "src")
    lake = tmp_path / "lake"
    p = scaled(lake, tmp_path / "src", 3)
    first = in_process(p, 0)
    assert first["shard"] == {"index": 0, "count": 3, "committed": False}
    # share 0 again (a pod that died after its manifest), plus a leftover of a killed attempt
    leftover = lake / STAGING_DIR / p.run_id / f"part-{p.run_id}-s0-00099.parquet.staged"
    leftover.write_bytes(b"not parquet")
    again = in_process(p, 0)
    assert again["rowsWritten"] == first["rowsWritten"]
    # the earlier attempts' files stay staged (an overlapping attempt may still need its
    # own): only the files the share's manifest names are committed
    assert leftover.exists()
    in_process(p, 2)
    last = in_process(p, 1)
    assert last["shard"] == {"index": 1, "count": 3, "committed": True}
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(total, total)]
    assert not leftover.exists() and not list(lake.rglob("*.staged"))  # gone with the publish

    # a share retried after the commit reports its own part and writes nothing
    late = in_process(p, 0)
    assert late["rowsWritten"] == first["rowsWritten"]
    assert late["shard"] == {"index": 0, "count": 3, "committed": True}
    assert len(commits(lake)) == 1


def test_shares_finishing_together_write_one_commit(tmp_path: Path) -> None:
    """Both of the last two shares see all manifests: they build the same commit."""
    total = make_files(tmp_path / "src", 4)
    lake = tmp_path / "lake"
    p = scaled(lake, tmp_path / "src", 2)
    in_process(p, 0)
    in_process(p, 1)  # commits
    storage = open_storage(f"file://{lake}")
    claim = read_log(storage, p.job, []).of_run(p.run_id)
    assert claim is not None
    assert commit_shares(p, storage, CommitLog(storage), claim) is False  # staging is gone
    assert len(commits(lake)) == 1
    assert duck(lake, "SELECT count(*) FROM t") == [(total,)]


def test_more_shares_than_files_and_incremental_rerun(tmp_path: Path) -> None:
    total = make_files(tmp_path / "src", 2)
    lake = tmp_path / "lake"
    p = scaled(lake, tmp_path / "src", 3)
    reports = [in_process(p, i) for i in range(3)]
    assert [r["shard"]["committed"] for r in reports] == [False, False, True]  # type: ignore[index]
    assert sorted(r["rowsWritten"] for r in reports) == [0, 100, 200]  # type: ignore[type-var]
    assert duck(lake, "SELECT count(*) FROM t") == [(total,)]
    # the next run of the same job finds nothing new in any share: no second commit
    nxt = dataclasses.replace(p, run_id="run-10")
    assert [in_process(nxt, i)["rowsWritten"] for i in range(3)] == [0, 0, 0]
    assert len(commits(lake)) == 1
    assert not (lake / STAGING_DIR / "run-10").exists()


def test_a_file_landing_between_shares_goes_to_the_next_run(tmp_path: Path) -> None:
    """Share 0 claimed the run's files; a file landing before share 1 starts is not in the
    claim: the run still commits (no ShardsDisagree), and the next run ingests the file."""
    total = make_files(tmp_path / "src", 3)
    lake = tmp_path / "lake"
    p = scaled(lake, tmp_path / "src", 2)
    in_process(p, 0)
    write_csv(tmp_path / "src" / "late.csv", HEADER, ["9999,u,2026-04-01 00:00:00,1.0,DE"])
    assert in_process(p, 1)["shard"] == {"index": 1, "count": 2, "committed": True}
    assert duck(lake, "SELECT count(*), count(*) FILTER (id = 9999) FROM t") == [(total, 0)]
    nxt = dataclasses.replace(p, run_id="run-10")
    reports = [in_process(nxt, i) for i in range(2)]
    assert sorted(r["rowsWritten"] for r in reports) == [0, 1]  # type: ignore[type-var]
    assert len(commits(lake)) == 2
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(total + 1, total + 1)]


def test_index_outside_the_plan_is_bad_input(tmp_path: Path) -> None:
    make_files(tmp_path / "src", 1)
    p = scaled(tmp_path / "lake", tmp_path / "src", 2)
    proc = share(p, 5)
    assert proc.returncode == 2
    assert "JOB_COMPLETION_INDEX" in proc.stderr + proc.stdout


def test_the_commit_is_a_function_of_the_manifests(tmp_path: Path) -> None:
    """Whichever pod builds it, whenever: same name, same bytes (so a double write is one)."""
    make_files(tmp_path / "src", 4)
    lake = tmp_path / "lake"
    p = scaled(lake, tmp_path / "src", 2)
    in_process(p, 0)
    # share 1's manifest as well, without letting it commit: write it from a copy of share 0's
    storage = open_storage(f"file://{lake}")
    manifests = read_manifests(storage, p.run_id)
    (only,) = manifests.values()
    other = {**only, "index": 1, "files": [], "sources": [], "finishedMs": 1}
    built = [
        build_commit(
            run_id=p.run_id,
            job=p.job,
            schema_version=1,
            mode="append",
            chosen=chosen,
            commits=[],
            iso=iso,
        )
        for chosen in ([only, other], [only, other])
    ]
    assert built[0].name == built[1].name
    assert built[0].to_json() == built[1].to_json()
    assert built[0].committed_ms == only["finishedMs"]
    assert [s["index"] for s in built[0].shards] == [0, 1]


def test_sql_shares_read_disjoint_ranges_of_one_claim(tmp_path: Path) -> None:
    """Three shares of an incremental SQL run each read a nonempty part of the claimed rows;
    one commit holds them all once, with the claim's upper bound as watermark."""
    url = f"sqlite:///{tmp_path}/src.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        conn.execute(
            sa.text("INSERT INTO t (id, v) VALUES (:i, :v)"),
            [{"i": i, "v": f"v{i}"} for i in range(1000)],
        )
    engine.dispose()
    fields = ({"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "string"})
    src = SqlSourceSpec(SecretKeyRef("db", "url"), "SELECT * FROM t", "id")
    lake = tmp_path / "lake"
    env = {**os.environ, "LAKEOP_SOURCE_SQL_URL": url}
    for run_id in ("q1", "q2"):  # q2: nothing new, so nothing committed
        p = dataclasses.replace(plan(lake, src, fields=fields, run_id=run_id), parallelism=3)
        reports = [run(p, {**env, INDEX_ENV: str(i)}).summary().to_dict() for i in (1, 0, 2)]
        rows = [r["rowsWritten"] for r in reports]
        if run_id == "q1":
            assert sum(rows) == 1000 and all(rows), rows
        else:
            assert rows == [0, 0, 0]
    commits = CommitLog(open_storage(f"file://{lake}")).commits()
    assert [(c.run_id, c.watermark, c.rows) for c in commits] == [("q1", 999, 1000)]
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(1000, 1000)]
    # each share's files hold one contiguous key range, disjoint from the others'
    got = duck(
        lake,
        "SELECT regexp_extract(filename, '-s(\\d)-', 1) AS s, min(id), max(id), count(*) "
        "FROM t GROUP BY s ORDER BY s",
    )
    assert [g[0] for g in got] == ["0", "1", "2"]
    assert all(a[2] < b[1] for a, b in itertools.pairwise(got))


def test_a_share_overlapping_its_own_retry_commits_once(tmp_path: Path) -> None:
    """Two pods of share 0 at once (a retried pod beside a zombie one) and share 1: one
    commit holding each source row once, whichever pod of share 0 lands in it, and only
    the committed attempts' quarantined records: each invalid source record once."""
    src = tmp_path / "src"
    src.mkdir()
    total = 0
    invalid = []
    for n in range(4):  # large enough that the two pods of share 0 write at the same time
        rows = []
        for i in range(60_000):
            bad = i % 997 == 3
            invalid += [total + i] if bad else []
            amount = "x" if bad else str(i)
            rows.append(f"{total + i},u{i % 7},2026-04-{1 + i % 28:02d} 12:00:00,{amount},DE")
        write_csv(src / f"big-{n}.csv", HEADER, rows)
        total += len(rows)
    lake = tmp_path / "lake"
    p = scaled(lake, src, 2, policy="quarantine")
    procs = [
        subprocess.Popen(
            INGEST,
            env={**os.environ, "LAKEOP_PLAN": p.to_json(), INDEX_ENV: str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 0, 1)
    ]
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outs
    assert len(commits(lake)) == 1
    valid = total - len(invalid)
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(valid, valid)]
    (commit,) = CommitLog(open_storage(f"file://{lake}")).commits()
    assert sorted(s["index"] for s in commit.shards) == [0, 1] and commit.rows == valid
    assert not list(lake.rglob("*.staged"))
    assert commit.rows_rejected == len(invalid)
    assert sorted(int(r["data"]["id"]) for r in quarantined(lake, p.run_id)) == invalid


def test_a_retried_share_keeps_only_the_committed_attempts_records(tmp_path: Path) -> None:
    """A share run twice (a pod that died after its manifest) and leftovers of killed
    attempts: once the run commits, only the records of the attempts it names remain."""
    src = tmp_path / "src"
    src.mkdir()
    for n in range(3):
        rows = [
            f"{n * 10 + i},u{i},2026-04-0{1 + i % 3} 12:00:00,{'x' if i == n else i},DE"
            for i in range(10)
        ]
        write_csv(src / f"part-{n}.csv", HEADER, rows)
    lake = tmp_path / "lake"
    p = scaled(lake, src, 2, policy="quarantine")
    first = in_process(p, 0)
    killed = lake / "_rejected" / p.run_id / "rejected-s1-a0000ff-00000.jsonl"
    older = lake / "_rejected" / p.run_id / "shard-1" / "rejected-00000.jsonl"
    for leftover in (killed, older):
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_text('{"source": "killed", "data": {"id": 99}}\n')
    in_process(p, 0)  # its retry: its records stay beside the first attempt's until the commit
    assert len(quarantined(lake, p.run_id)) == 2 * int(str(first["rowsRejected"])) + 2
    last = in_process(p, 1)
    assert last["shard"] == {"index": 1, "count": 2, "committed": True}
    (commit,) = CommitLog(open_storage(f"file://{lake}")).commits()
    assert commit.rows_rejected == 3 and len(commit.quarantine or []) == 2
    assert sorted(int(r["data"]["id"]) for r in quarantined(lake, p.run_id)) == [0, 11, 22]
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(27, 27)]


def quarantined(lake: Path, run_id: str) -> list[dict[str, Any]]:
    """Every quarantined record of the run, at any depth under ``_rejected/<run>/``."""
    return [
        json.loads(line)
        for f in sorted((lake / "_rejected" / run_id).rglob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
