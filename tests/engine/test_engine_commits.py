"""Exactly-once commits: retries, incremental runs, concurrency, overwrite, recovery."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from enginekit import csv_source, duck, plan, run, visible_parquet, write_csv

from lakeop.engine import records
from lakeop.engine import run as engine_run
from lakeop.engine.commitlog import COMMITS_DIR, STAGING_DIR, CommitLog, table_totals
from lakeop.errors import InvalidRecordsError
from lakeop.storage import open_storage

HEADER = "id,user,ts,amount,country"
DAY = {"strategy": "date", "column": "ts", "granularity": "day"}


def rows(start: int, count: int, day: int = 1) -> list[str]:
    return [f"{i},u{i % 7},2026-03-0{day} 10:00:00,{i}.5,DE" for i in range(start, start + count)]


def test_retry_with_same_run_id_never_duplicates(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in" / "a.csv", HEADER, rows(0, 100))
    lake = tmp_path / "lake"
    first = run(plan(lake, csv_source(src), run_id="r1"))
    again = run(plan(lake, csv_source(src), run_id="r1"))
    assert again.already_committed and again.rows_written == first.rows_written == 100
    assert duck(lake, "SELECT count(*) FROM t")[0][0] == 100
    assert len(CommitLog(open_storage(str(lake))).commits()) == 1


def test_incremental_runs_take_only_new_files(tmp_path: Path) -> None:
    src_dir = tmp_path / "in"
    write_csv(src_dir / "a.csv", HEADER, rows(0, 50))
    lake = tmp_path / "lake"
    glob = csv_source(f"{src_dir}/*.csv")
    assert run(plan(lake, glob, run_id="r1")).rows_written == 50
    nothing = run(plan(lake, glob, run_id="r2"))
    assert nothing.rows_written == 0 and nothing.files_written == 0
    write_csv(src_dir / "b.csv", HEADER, rows(50, 30))
    second = run(plan(lake, glob, run_id="r3"))
    assert second.rows_written == 30
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t")[0] == (80, 80)
    commits = CommitLog(open_storage(str(lake))).commits()
    assert [len(c.sources) for c in commits] == [1, 1]
    assert commits[1].sources[0]["uri"].endswith("/b.csv")
    # another job may take the same files again (incrementality is per job)
    assert run(plan(lake, glob, run_id="r4", job="other")).rows_written == 80


def test_totals_and_commit_record(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", HEADER, rows(0, 40, day=1) + rows(40, 20, day=2))
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), partitioning=DAY, version=3))
    totals = table_totals(f"file://{lake}", {})
    assert totals["rows"] == 60 and totals["files"] == result.files_written == 2
    assert totals["partitions"] == 2 and totals["bytes"] == result.bytes_written > 0
    assert totals["lastCommitTime"].endswith("Z")
    (name,) = os.listdir(lake / COMMITS_DIR)
    record = json.loads((lake / COMMITS_DIR / name).read_text())
    assert record["partitions"] == {"year=2026/month=3/day=1": 40, "year=2026/month=3/day=2": 20}
    assert record["schema_version"] == 3 and record["rows"] == 60
    assert record["sources"][0]["size"] == src.stat().st_size


def test_overwrite_partitions_replaces_only_touched(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", HEADER, rows(0, 40, day=1) + rows(40, 20, day=2))
    run(plan(lake, csv_source(a), partitioning=DAY, run_id="r1"))
    b = write_csv(tmp_path / "b.csv", HEADER, rows(1000, 5, day=2) + rows(2000, 3, day=3))
    result = run(
        plan(lake, csv_source(b), partitioning=DAY, run_id="r2", mode="overwrite-partitions")
    )
    assert result.rows_written == 8
    counts = dict(duck(lake, "SELECT day, count(*) FROM t GROUP BY day"))
    assert counts == {1: 40, 2: 5, 3: 3}
    assert table_totals(str(lake), {})["rows"] == 48
    assert len(visible_parquet(lake)) == 3


def test_two_concurrent_runs_both_commit(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    procs = []
    for n in range(2):
        src = write_csv(tmp_path / f"s{n}.csv", HEADER, rows(n * 10_000, 20_000 if n else 30_000))
        p = plan(lake, csv_source(src), partitioning=DAY, run_id=f"c{n}", job=f"j{n}")
        env = {**os.environ, "LAKEOP_PLAN": p.to_json()}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "LAKEOP_PLAN"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert duck(lake, "SELECT count(*) FROM t")[0][0] == 50_000
    assert table_totals(str(lake), {})["rows"] == 50_000
    assert len(CommitLog(open_storage(str(lake))).commits()) == 2


def test_failed_run_leaves_nothing(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    src = write_csv(tmp_path / "a.csv", HEADER, [*rows(0, 5000), "x,u,2026-03-01,1,DE"])
    with pytest.raises(InvalidRecordsError, match="record 5001 \\(line 5002\\)"):
        run(plan(lake, csv_source(src), partitioning=DAY, batch_size=100))
    assert visible_parquet(lake) == []
    assert not (lake / STAGING_DIR).exists() or not any((lake / STAGING_DIR).iterdir())
    assert not (lake / COMMITS_DIR).exists()


def test_interrupted_publish_is_rolled_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    src = write_csv(tmp_path / "a.csv", HEADER, rows(0, 10, day=1) + rows(10, 10, day=2))

    def crash(*_: object) -> None:
        raise KeyboardInterrupt("killed between commit and publish")

    monkeypatch.setattr(engine_run, "publish", crash)
    with pytest.raises(KeyboardInterrupt):
        run(plan(lake, csv_source(src), partitioning=DAY, run_id="r1"))
    monkeypatch.undo()
    # committed but not yet published: the log has it, readers of the directories do not
    assert table_totals(str(lake), {})["rows"] == 20
    assert visible_parquet(lake) == []
    # the retry of the same run publishes and reports without writing again
    again = run(plan(lake, csv_source(src), partitioning=DAY, run_id="r1"))
    assert again.already_committed and again.rows_written == 20
    assert duck(lake, "SELECT count(*) FROM t")[0][0] == 20
    assert not (lake / STAGING_DIR / "r1").exists()


def test_recovery_by_another_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", HEADER, rows(0, 10))
    monkeypatch.setattr(
        engine_run, "publish", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        run(plan(lake, csv_source(a), run_id="r1"))
    monkeypatch.undo()
    # an abandoned, uncommitted staging dir of a dead run that is not stale stays
    (lake / STAGING_DIR / "live-run").mkdir(parents=True)
    (lake / STAGING_DIR / "live-run.started").write_text(
        json.dumps({"runId": "live-run", "startedMs": 1 << 60})
    )
    (lake / STAGING_DIR / "dead-run").mkdir()
    b = write_csv(tmp_path / "b.csv", HEADER, rows(10, 5))
    run(plan(lake, csv_source(b), run_id="r2", job="j2"))
    assert duck(lake, "SELECT count(*) FROM t")[0][0] == 15
    assert sorted(os.listdir(lake / STAGING_DIR)) == ["live-run", "live-run.started"]


def test_progress_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "PROGRESS_EVERY_S", 0.0)
    src = write_csv(tmp_path / "a.csv", HEADER, rows(0, 30))
    stream = io.StringIO()
    p = plan(tmp_path / "lake", csv_source(src))
    engine_run.run_plan(p, dict(os.environ), progress=stream)
    assert "lakeop: 30 rows read, 0 rejected," in stream.getvalue()
    assert "rows/s" in stream.getvalue()
