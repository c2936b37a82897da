"""Overlapping runs of one job take disjoint inputs: each source file, each SQL row once.

Runs are real: in-process ``run_plan`` and ``lakeop ingest --plan-env`` subprocesses. A run
"in flight" is one that took its claim (``claims.take``, exactly what ``run_plan`` does at its
start) and has not read yet; it then runs for real and adopts that claim. Results are read
back from the Parquet files with DuckDB.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from enginekit import csv_source, duck, plan, run, write_csv

from lakeop.cli import main as cli_main
from lakeop.core.lake.inputs import Claim, Interval, LeaseTerms, SqlClaim
from lakeop.core.runs.plan import RunPlan
from lakeop.core.spec.sources import SecretKeyRef, SqlSourceSpec
from lakeop.engine import claimlog, claims, leases
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.shards import INDEX_ENV
from lakeop.errors import InvalidSpecError, TerminalError
from lakeop.storage import open_storage

HEADER = "id,user,ts,amount,country"
INGEST = [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "LAKEOP_PLAN", "--output", "json"]
SQL_FIELDS = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "v", "type": "string"},
)


def add_files(src: Path, first: int, count: int, rows: int = 50) -> None:
    for n in range(first, first + count):
        lines = [f"{n * 1000 + i},u,2026-04-01 12:00:00,1.0,DE" for i in range(rows)]
        write_csv(src / f"f{n:03d}.csv", HEADER, lines)


def in_flight(p: RunPlan, env: dict[str, str] | None = None) -> Claim:
    """What a run does first: take its claim (then it is "running")."""
    storage = open_storage(p.table.location)
    commits = CommitLog(storage).commits()
    env = dict(os.environ) if env is None else env
    return claims.take(storage, p, env, commits, split=False, now_ms=0)


def committed(lake: Path) -> list[Any]:
    return CommitLog(open_storage(f"file://{lake}")).commits()


def sources_of(lake: Path) -> list[str]:
    return [s["uri"] for c in committed(lake) for s in c.sources]


def claim_objects(lake: Path, job: str) -> list[str]:
    folder = lake / claimlog.CLAIMS_DIR / job
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def spawn(p: RunPlan, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "LAKEOP_PLAN": p.to_json(), **(extra or {})}
    return subprocess.Popen(
        INGEST, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# ------------------------------------------------------------------------------------ files


def test_overlapping_file_runs_take_each_file_once(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 4)
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="a")
    first = in_flight(p)
    assert len(first.files) == 4
    add_files(src, 4, 2)  # lands while run a is still running
    b = run(dataclasses.replace(p, run_id="b"))
    assert b.rows_written == 100  # only the two new files: a holds the others
    a = run(p)  # run a goes on with its claim
    assert a.rows_written == 200
    assert sorted(sources_of(lake)) == sorted(f"file://{f}" for f in src.glob("*.csv"))
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(300, 300)]
    # claims are the record: both runs' claims are still there, nothing free
    nothing = run(dataclasses.replace(p, run_id="c"))
    assert nothing.rows_written == 0 and len(committed(lake)) == 2


def test_concurrent_file_runs_in_processes(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 12, rows=400)
    p = plan(lake, csv_source(f"{src}/*.csv"))
    procs = [spawn(dataclasses.replace(p, run_id=f"r{i}")) for i in range(4)]
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, outs
    uris = sources_of(lake)
    assert len(uris) == len(set(uris)) == 12
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(4800, 4800)]
    # the runs' claims were compacted after they finished: only the highest seq stays
    assert claim_objects(lake, p.job) == ["00000004.json"]


def test_released_files_go_to_the_next_run(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 3)
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="dead")
    dead = in_flight(p)  # a run that claims, then dies for good
    assert run(dataclasses.replace(p, run_id="blocked")).rows_written == 0
    loc = p.table.location
    assert claims.release(loc, dict(os.environ), "", p.job, "dead") is True
    assert claims.release(loc, dict(os.environ), "", p.job, "dead") is True  # idempotent
    assert claims.release(loc, dict(os.environ), "", p.job, "never-ran") is False
    # the released run, if it went on, refuses to commit what it gave up
    storage = open_storage(loc)
    lease = leases.Lease(storage, p.job, dead, leases.lease_terms({}))
    assert lease.renew() is False
    with pytest.raises(TerminalError, match="lost"):
        lease.check("dead")
    taker = run(dataclasses.replace(p, run_id="taker"))
    assert taker.rows_written == 150
    assert claims.release(loc, dict(os.environ), "", p.job, "taker") is False  # committed
    # taker's commit compacted the released claim, its marker and blocked's empty claim
    assert claim_objects(lake, p.job) == ["00000003.json"]  # and the leases
    # and still so now that its claim and marker are gone (the run has no commit)
    assert claimlog.is_released(storage, p.job, dead) is True
    # a retry of it under its run id takes a new claim (here empty: taker has the files)
    assert run(p).rows_written == 0
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(150, 150)]


def test_a_released_run_retried_under_its_run_id_takes_its_inputs_again(
    tmp_path: Path,
) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 3)
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="again")
    first = in_flight(p)
    assert claims.release(p.table.location, dict(os.environ), "", p.job, "again") is True
    assert run(p).rows_written == 150  # the retry (lakeop ingest -f --run-id) re-takes
    log = claimlog.read_log(open_storage(p.table.location), p.job, committed(lake))
    (retake,) = [c for c in log.claims if c.seq != first.seq] or [log.of_run("again")]
    assert log.chain("again")[-1].after in (first.seq, None)
    assert log.state(retake) == "committed"
    assert run(dataclasses.replace(p, run_id="next")).rows_written == 0
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(150, 150)]


# ------------------------------------------------------------------------------------ leases

SHORT = LeaseTerms(lease_s=0.6, skew_s=0.1)
SHORT_ENV = {leases.LEASE_ENV: "0.6", leases.SKEW_ENV: "0.1"}


def test_a_lapsed_claim_is_taken_over_and_its_run_refuses_to_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 3)
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="dead")
    env = {**os.environ, **SHORT_ENV}
    storage = open_storage(p.table.location)
    dead = claims.take(storage, p, env, [], split=False, now_ms=0, terms=SHORT)  # then SIGKILL
    assert dead.lease_until_ms is not None
    assert run(dataclasses.replace(p, run_id="early"), env).rows_written == 0  # still held
    time.sleep(SHORT.lease_s + SHORT.skew_s + 0.1)
    assert run(dataclasses.replace(p, run_id="taker"), env).rows_written == 150
    assert "its lease lapsed, its inputs are free again" in capsys.readouterr().err
    # the dead run, were it only paused, finds its lease lost and does not commit
    lease = leases.Lease(storage, p.job, dead, SHORT)
    with pytest.raises(leases.LeaseLostError, match="taken over"):
        lease.check("dead")
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(150, 150)]


def test_the_heartbeat_keeps_a_slow_run_s_claim(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 2)
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="slow")
    env = {**os.environ, **SHORT_ENV}
    storage = open_storage(p.table.location)
    claim = claims.take(storage, p, env, [], split=False, now_ms=0, terms=SHORT)
    with leases.Lease(storage, p.job, claim, SHORT) as lease:
        time.sleep(SHORT.lease_s * 4)  # four leases long: renewed all along
        assert run(dataclasses.replace(p, run_id="other"), env).rows_written == 0
        lease.check("slow")  # may commit
    # the holder stopped renewing (it died): its inputs go to the next run once lapsed
    time.sleep(SHORT.lease_s + SHORT.skew_s + 0.1)
    assert run(dataclasses.replace(p, run_id="next"), env).rows_written == 100


def test_a_paused_run_retakes_its_lapsed_claim_if_nobody_took_it(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 2)
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="paused")
    env = {**os.environ, **SHORT_ENV}
    storage = open_storage(p.table.location)
    claim = claims.take(storage, p, env, [], split=False, now_ms=0, terms=SHORT)
    time.sleep(SHORT.lease_s + SHORT.skew_s + 0.1)  # paused past its lease
    lease = leases.Lease(storage, p.job, claim, SHORT)
    lease.check("paused")  # renews: nobody marked it, so it is the run's again
    expiry = claimlog.read_lease(storage, p.job, claim.seq)
    assert expiry is not None and expiry > time.time() * 1000
    assert run(dataclasses.replace(p, run_id="other"), env).rows_written == 0
    # and the same run id, retried, adopts it and commits it
    assert run(p, env).rows_written == 100


def test_a_taker_waits_out_a_lease_renewed_after_it_judged_it_lapsed(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 1)
    p = plan(lake, csv_source(f"{src}/*.csv"), run_id="late")
    storage = open_storage(p.table.location)
    claim = claims.take(storage, p, dict(os.environ), [], split=False, now_ms=0, terms=SHORT)
    leases.Lease(storage, p.job, claim, SHORT).renew()  # renewed just before the marker
    t0 = time.monotonic()
    claims.take_over(storage, p.job, [claim], SHORT)
    waited = time.monotonic() - t0
    assert waited >= SHORT.lease_s - 0.1  # until the renewed lease (and the skew) ran out
    assert storage.exists(claimlog.released_path(p.job, claim.seq))


def test_the_plan_s_lease_applies_unless_the_environment_sets_one(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 1)
    p = dataclasses.replace(
        plan(lake, csv_source(f"{src}/*.csv"), run_id="p1"), claim_lease_seconds=900.0
    )
    env = {k: v for k, v in os.environ.items() if k != leases.LEASE_ENV}
    storage = open_storage(p.table.location)
    run(p, env)
    (claim,) = claimlog.read_log(storage, p.job, []).claims
    assert claim.lease_until_ms is not None
    assert 899_000 <= claim.lease_until_ms - claim.created_ms <= 960_000
    add_files(src, 1, 1)
    run(dataclasses.replace(p, run_id="p2"), {**env, leases.LEASE_ENV: "5"})
    top = max(claimlog.read_log(storage, p.job, []).claims, key=lambda c: c.seq)
    assert top.lease_until_ms is not None
    assert top.lease_until_ms - top.created_ms <= 60_000


def test_lease_settings_are_checked() -> None:
    assert leases.lease_terms({}).lease_s == leases.POD_LEASE_S
    assert leases.lease_terms({leases.LEASE_ENV: "2.5"}).lease_s == 2.5
    for bad in ("0", "-3", "soon", "inf"):
        with pytest.raises(InvalidSpecError, match=f"LAKEOP_CLAIM_LEASE_SECONDS: '{bad}'"):
            leases.lease_terms({leases.LEASE_ENV: bad})


def test_cli_releases_the_claim_of_a_failed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 2)
    (src / "f001.csv").write_text(HEADER + "\nnot-a-number,u,2026-04-01 12:00:00,1.0,DE\n")
    manifests = tmp_path / "m.yaml"
    manifests.write_text(
        f"""
apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {{name: events, namespace: default}}
spec: {{location: "file://{lake}"}}
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
---
apiVersion: lakeop.io/v1alpha1
kind: IngestionJob
metadata: {{name: load, namespace: default}}
spec:
  tableRef: events
  source: {{uri: "file://{src}/*.csv", format: csv}}
"""
    )
    assert cli_main(["ingest", "-f", str(manifests), "--run-id", "bad"]) == 1
    log = claimlog.read_log(open_storage(f"file://{lake}"), "load", [])
    (claim,) = log.claims
    assert log.state(claim) == "released"
    (src / "f001.csv").write_text(HEADER + "\n1001,u,2026-04-01 12:00:00,1.0,DE\n")
    assert cli_main(["ingest", "-f", str(manifests), "--run-id", "good"]) == 0
    capsys.readouterr()
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(51, 51)]


# ------------------------------------------------------------------------------------- sql


def make_table(url: str, rows: range) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS items"))
        conn.execute(sa.text("CREATE TABLE items (id BIGINT PRIMARY KEY, v TEXT)"))
    insert(engine, rows)
    return engine


def insert(engine: sa.Engine, rows: range) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO items (id, v) VALUES (:i, :v)"),
            [{"i": i, "v": f"v{i}"} for i in rows],
        )


def sql_plan(lake: Path, run_id: str, parallelism: int = 1) -> RunPlan:
    src = SqlSourceSpec(SecretKeyRef("db", "url"), "SELECT * FROM items", "id")
    p = plan(lake, src, fields=SQL_FIELDS, run_id=run_id, batch_size=97)
    return dataclasses.replace(p, parallelism=parallelism)


@pytest.mark.postgres
def test_overlapping_sql_runs_and_released_intervals(tmp_path: Path, postgres_url: str) -> None:
    engine = make_table(postgres_url, range(1000))
    env = {**os.environ, "LAKEOP_SOURCE_SQL_URL": postgres_url}
    lake = tmp_path / "lake"
    a = sql_plan(lake, "a")
    assert in_flight(a, env).sql == SqlClaim("id", (Interval(None, 999),))
    insert(engine, range(1000, 1500))
    assert run(sql_plan(lake, "b"), env).rows_written == 500  # (999, 1499]: not a's rows
    assert run(a, env).rows_written == 1000  # a commits after b: the max watermark counts
    assert sorted(c.watermark for c in committed(lake)) == [999, 1499]

    # c claims (1499, 1599] and is given up; d adopts it, d is given up too; e takes it all
    insert(engine, range(1500, 1600))
    in_flight(sql_plan(lake, "c"), env)
    claims.release(str(lake), env, "", a.job, "c")
    insert(engine, range(1600, 1650))
    d = in_flight(sql_plan(lake, "d"), env)
    assert d.sql is not None and d.sql.intervals == (
        Interval(1499, 1599),
        Interval(1599, 1649),
    )
    claims.release(str(lake), env, "", a.job, "d")
    insert(engine, range(1650, 1700))
    e = run(sql_plan(lake, "e"), env)
    assert e.rows_written == 200
    assert duck(lake, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t") == [
        (1700, 1700, 0, 1699)
    ]
    assert run(sql_plan(lake, "f"), env).rows_written == 0
    engine.dispose()


@pytest.mark.postgres
def test_concurrent_sql_runs_in_processes(tmp_path: Path, postgres_url: str) -> None:
    engine = make_table(postgres_url, range(3000))
    lake = tmp_path / "lake"
    extra = {"LAKEOP_SOURCE_SQL_URL": postgres_url}
    procs = [spawn(sql_plan(lake, f"p{i}"), extra) for i in range(3)]
    insert(engine, range(3000, 3100))  # while they claim and read
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 3, outs
    written = sum(json.loads(o[0])["rowsWritten"] for o in outs)
    late = run(sql_plan(lake, "late"), {**os.environ, **extra}).rows_written
    assert written + late == 3100
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(3100, 3100)]
    engine.dispose()


@pytest.mark.postgres
def test_sql_shares_split_the_claim_and_lose_no_late_row(tmp_path: Path, postgres_url: str) -> None:
    engine = make_table(postgres_url, range(2000))
    lake = tmp_path / "lake"
    extra = {"LAKEOP_SOURCE_SQL_URL": postgres_url}
    p = sql_plan(lake, "s", parallelism=3)
    first = spawn(p, {**extra, INDEX_ENV: "0"})
    out0 = first.communicate(timeout=120)
    assert first.returncode == 0, out0
    insert(engine, range(2000, 2010))  # after share 0 claimed, before shares 1 and 2 start
    rest = [spawn(p, {**extra, INDEX_ENV: str(i)}) for i in (1, 2)]
    outs = [out0, *(proc.communicate(timeout=120) for proc in rest)]
    assert [proc.returncode for proc in rest] == [0, 0], outs
    reports = [json.loads(o[0]) for o in outs]
    assert all(r["rowsWritten"] > 0 for r in reports), reports
    assert sum(r["rowsWritten"] for r in reports) == 2000
    (commit,) = committed(lake)
    assert commit.watermark == 1999 and commit.rows == 2000
    ranges = duck(
        lake,
        "SELECT regexp_extract(filename, '-s(\\d)-', 1) AS s, min(id), max(id) "
        "FROM t GROUP BY s ORDER BY s",
    )
    assert [r[0] for r in ranges] == ["0", "1", "2"]
    assert all(x[2] < y[1] for x, y in itertools.pairwise(ranges))
    # the late rows are the next run's
    nxt = dataclasses.replace(p, run_id="s2")
    got = [run(nxt, {**os.environ, **extra, INDEX_ENV: str(i)}).rows_written for i in range(3)]
    assert sum(got) == 10
    assert duck(lake, "SELECT count(*), count(DISTINCT id), max(id) FROM t") == [(2010, 2010, 2009)]
    engine.dispose()


def test_non_incremental_query_split_by_split_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/src.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id INTEGER, v TEXT)"))
    insert(engine, range(300))
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO items (id, v) VALUES (NULL, 'null key')"))
    engine.dispose()
    src = SqlSourceSpec(SecretKeyRef("db", "url"), "SELECT * FROM items", None, "id")
    fields = ({"name": "id", "type": "long"}, {"name": "v", "type": "string"})
    p = dataclasses.replace(plan(tmp_path / "lake", src, fields=fields), parallelism=2)
    env = {**os.environ, "LAKEOP_SOURCE_SQL_URL": url}
    rows = [run(p, {**env, INDEX_ENV: str(i)}).rows_written for i in range(2)]
    assert rows == [151, 150]  # the NULL key goes to the first share
    assert duck(tmp_path / "lake", "SELECT count(*), count(DISTINCT id) FROM t") == [(301, 300)]

    text = SqlSourceSpec(SecretKeyRef("db", "url"), "SELECT * FROM items", None, "v")
    q = dataclasses.replace(plan(tmp_path / "l2", text, fields=fields), parallelism=2)
    with pytest.raises(Exception, match=r"column 'v'.*type str"):
        run(q, {**env, INDEX_ENV: "0"})


# ------------------------------------------------------------------------------ compaction


def test_thirty_file_runs_keep_the_claim_log_small(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    p = plan(lake, csv_source(f"{src}/*.csv"))
    add_files(src, 0, 1, rows=10)
    loc, env = p.table.location, dict(os.environ)
    files, seen_max = 1, 0
    slow: Claim | None = None
    for n in range(30):
        if n % 3 == 0 or n in {10, 20}:  # new files now and then; other runs find nothing
            add_files(src, files, 2, rows=10)
            files += 2
        if n == 10:  # a run that claims and stays in flight across the next runs
            slow = in_flight(dataclasses.replace(p, run_id="slow"))
            assert slow.files
        if n == 20:  # a run that claims and is given up
            in_flight(dataclasses.replace(p, run_id="dead"))
            assert claims.release(loc, env, "", p.job, "dead") is True
        run(dataclasses.replace(p, run_id=f"r{n:02d}"))
        held = [f"{slow.seq:08d}.json"] if slow is not None and 10 <= n < 15 else []
        objects = claim_objects(lake, p.job)
        seen_max = max(seen_max, len(objects))
        assert set(held) <= set(objects), (n, objects)  # a live claim is never compacted
        assert len(objects) <= 1 + len(held) + (n == 20), (n, objects)
        if n == 14:  # the slow run finishes with its claim
            assert run(dataclasses.replace(p, run_id="slow")).rows_written == 20
    assert seen_max <= 3
    assert not [o for o in claim_objects(lake, p.job) if o.startswith(claimlog.INTENT)]
    assert sorted(set(sources_of(lake))) == sorted(f"file://{f}" for f in src.glob("*.csv"))
    assert len(sources_of(lake)) == files
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(files * 10, files * 10)]


@pytest.mark.postgres
def test_compaction_keeps_pending_released_sql_intervals(tmp_path: Path, postgres_url: str) -> None:
    engine = make_table(postgres_url, range(1000))
    env = {**os.environ, "LAKEOP_SOURCE_SQL_URL": postgres_url}
    lake = tmp_path / "lake"
    job = sql_plan(lake, "x").job
    storage = open_storage(f"file://{lake}")
    assert run(sql_plan(lake, "r0"), env).rows_written == 1000

    # c claims (999, 1099] and stays in flight while d loads (1099, 1199] and compacts
    insert(engine, range(1000, 1100))
    c = in_flight(sql_plan(lake, "c"), env)
    insert(engine, range(1100, 1200))
    assert run(sql_plan(lake, "d"), env).rows_written == 100
    assert f"{c.seq:08d}.json" in claim_objects(lake, job)
    # c is given up: its interval is pending; compacting now must keep it (and its marker)
    claims.release(str(lake), env, "", job, "c")
    claims.compact(storage, job, committed(lake), claims._now_ms())
    assert {f"{c.seq:08d}.json", f"{c.seq:08d}.released"} <= set(claim_objects(lake, job))

    # e adopts it and stays in flight; f commits and compacts meanwhile: c stays (e is live)
    insert(engine, range(1200, 1250))
    e = in_flight(sql_plan(lake, "e"), env)
    assert e.adopts == (c.seq,)
    insert(engine, range(1250, 1300))
    assert run(sql_plan(lake, "f"), env).rows_written == 50
    assert f"{c.seq:08d}.json" in claim_objects(lake, job)
    # e is given up as well; thirty later runs, some with new rows, load everything once
    claims.release(str(lake), env, "", job, "e")
    top = 1300
    for n in range(30):
        if n % 4 == 0:
            insert(engine, range(top, top + 7))
            top += 7
        run(sql_plan(lake, f"g{n:02d}"), env)
        objects = claim_objects(lake, job)
        assert len(objects) <= 3, (n, objects)
    assert claim_objects(lake, job) == [f"{c.seq + 33:08d}.json"]  # nothing in flight
    assert duck(lake, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t") == [
        (top, top, 0, top - 1)
    ]
    # the run that adopted e's intervals read c's and e's rows
    adopter = [x for x in committed(lake) if x.run_id == "g00"]
    assert adopter and adopter[0].rows_read == 100 + 50 + 7
    engine.dispose()


def test_compaction_waits_for_a_claimer_s_intent(tmp_path: Path) -> None:
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 1, rows=5)
    p = plan(lake, csv_source(f"{src}/*.csv"))
    storage = open_storage(p.table.location)
    in_flight(dataclasses.replace(p, run_id="a"))
    claims.release(p.table.location, dict(os.environ), "", p.job, "a")
    in_flight(dataclasses.replace(p, run_id="b"))  # takes the released file: seq 2
    now = claims._now_ms()
    folder = lake / claimlog.CLAIMS_DIR / p.job
    fresh = folder / f"{claimlog.INTENT}{now - 1000:013d}-x"
    fresh.write_text("{}")
    assert claims.compact(storage, p.job, [], now) == []  # a claimer may be reading
    assert claim_objects(lake, p.job)[:2] == ["00000001.json", "00000001.released"]
    fresh.unlink()
    old = folder / f"{claimlog.INTENT}{now - claims.INTENT_MAX_AGE_MS:013d}-y"
    old.write_text("{}")  # left by a killed claimer: ignored and removed
    assert claims.compact(storage, p.job, [], now) == [1]
    assert claim_objects(lake, p.job) == ["00000002.json"]


def test_a_scaled_out_run_whose_lease_lapsed_between_shares_does_not_commit(
    tmp_path: Path,
) -> None:
    """Share 0 finishes, nobody renews the claim, it lapses and another run takes its files:
    share 1, starting late, adopts the released claim (shares never re-take) and refuses to
    commit, or, the released claim compacted meanwhile, takes a new one that the shares do not
    agree on. Either way the run does not commit: every row once, in the other run's commit."""
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 4)
    p = dataclasses.replace(plan(lake, csv_source(f"{src}/*.csv"), run_id="wide"), parallelism=2)
    env = {**os.environ, **SHORT_ENV}
    first = run(p, {**env, INDEX_ENV: "0"}).summary().to_dict()
    assert first["shard"] == {"index": 0, "count": 2, "committed": False}
    time.sleep(SHORT.lease_s + SHORT.skew_s + 0.1)
    assert run(dataclasses.replace(p, run_id="other", parallelism=1), env).rows_written == 200
    with pytest.raises(TerminalError, match=r"taken over|split different inputs"):
        run(p, {**env, INDEX_ENV: "1"})
    assert [c.run_id for c in committed(lake)] == ["other"]
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(200, 200)]


def test_every_share_renews_the_claim(tmp_path: Path) -> None:
    """While any share runs, the run's claim stays its own, however long the run takes."""
    src, lake = tmp_path / "src", tmp_path / "lake"
    add_files(src, 0, 2)
    p = dataclasses.replace(plan(lake, csv_source(f"{src}/*.csv"), run_id="wide"), parallelism=2)
    env = {**os.environ, **SHORT_ENV}
    storage = open_storage(p.table.location)
    claim = claims.take(storage, p, env, [], split=True, now_ms=0, terms=SHORT)
    with leases.Lease(storage, p.job, claim, SHORT):  # share 1, still running
        assert run(p, {**env, INDEX_ENV: "0"}).summary().to_dict()["shard"]["committed"] is False
        time.sleep(SHORT.lease_s * 3)
        assert run(dataclasses.replace(p, run_id="other", parallelism=1), env).rows_written == 0
        last = run(p, {**env, INDEX_ENV: "1"})
    assert last.summary().to_dict()["shard"] == {"index": 1, "count": 2, "committed": True}
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(100, 100)]


@pytest.mark.postgres
def test_lapsed_sql_intervals_are_adopted_through_a_chain(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two runs in a row die holding SQL intervals (SIGKILL: no release); once their leases
    lapse the next run adopts both intervals (the second dead claim had adopted the first's),
    and every row is loaded once."""
    engine = make_table(postgres_url, range(300))
    env = {**os.environ, "LAKEOP_SOURCE_SQL_URL": postgres_url, **SHORT_ENV}
    lake = tmp_path / "lake"
    storage = open_storage(f"file://{lake}")
    assert run(sql_plan(lake, "first"), env).rows_written == 300
    insert(engine, range(300, 400))
    dead1 = claims.take(
        storage, sql_plan(lake, "dead1"), env, committed(lake), split=False, now_ms=0, terms=SHORT
    )
    assert dead1.sql is not None and dead1.sql.intervals == (Interval(299, 399),)
    time.sleep(SHORT.lease_s + SHORT.skew_s + 0.1)
    insert(engine, range(400, 450))
    dead2 = claims.take(
        storage, sql_plan(lake, "dead2"), env, committed(lake), split=False, now_ms=0, terms=SHORT
    )  # takes dead1 over, then dies too
    assert dead2.adopts == (dead1.seq,)
    assert dead2.sql is not None
    assert dead2.sql.intervals == (Interval(299, 399), Interval(399, 449))
    time.sleep(SHORT.lease_s + SHORT.skew_s + 0.1)
    insert(engine, range(450, 500))
    assert run(sql_plan(lake, "taker"), env).rows_written == 200
    assert duck(lake, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t") == [
        (500, 500, 0, 499)
    ]
    assert run(sql_plan(lake, "after"), env).rows_written == 0
    engine.dispose()
