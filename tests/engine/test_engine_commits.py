"""Exactly-once commits: retries, incremental runs, concurrency, overwrite, recovery."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from enginekit import csv_source, duck, plan, run, visible_parquet, write_csv

from lakeop.engine import commitlog, records, run_result
from lakeop.engine import publish as publish_mod
from lakeop.engine import run as engine_run
from lakeop.engine.commitlog import (
    CHECKPOINT_INTERVAL,
    CHECKPOINTS_DIR,
    COMMITS_DIR,
    LAST_CHECKPOINT,
    STAGING_DIR,
    CommitLog,
    table_totals,
)
from lakeop.engine.commits import Commit, DataFile, live_files
from lakeop.errors import InvalidRecordsError, StorageUnavailableError
from lakeop.storage import FileEntry, LocalStorage, Storage, open_storage

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

    monkeypatch.setattr(publish_mod, "publish", crash)
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


def test_a_run_killed_after_its_commit_point_reads_back_as_succeeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the operator records for a pod that died after committing: the commit's rows."""
    lake = tmp_path / "lake"
    src = write_csv(tmp_path / "a.csv", HEADER, rows(0, 10, day=1) + rows(10, 7, day=2))
    assert run_result.committed_summary(f"file://{lake}", {}, "X_", "r1", "events") is None
    monkeypatch.setattr(
        publish_mod, "publish", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        run(plan(lake, csv_source(src), partitioning=DAY, run_id="r1"))
    monkeypatch.undo()
    found = run_result.committed_summary(f"file://{lake}", {}, "X_", "r1", "events")
    summary = None if found is None else found.to_dict()
    assert summary is not None and summary["error"] is None
    assert (summary["rowsWritten"], summary["rowsRead"], summary["schemaVersion"]) == (17, 17, 1)
    assert len(summary["partitions"]) == 2 and summary["filesWritten"] == 2
    assert run_result.committed_summary(f"file://{lake}", {}, "X_", "r2", "events") is None


def test_recovery_by_another_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", HEADER, rows(0, 10))
    monkeypatch.setattr(
        publish_mod, "publish", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt())
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


class CountingStorage(LocalStorage):
    """The real local storage, counting the reads (GET, LIST, HEAD) sent through it."""

    def __init__(self, base: Storage) -> None:
        super().__init__(base.fs, base.root, base.url)
        self.reads = 0

    def read_bytes(self, rel: str) -> bytes | None:
        self.reads += 1
        return super().read_bytes(rel)

    def list_files(self, rel: str = "", recursive: bool = True) -> list[FileEntry]:
        self.reads += 1
        return super().list_files(rel, recursive)

    def exists(self, rel: str) -> bool:
        self.reads += 1
        return super().exists(rel)


def synthetic(i: int, run_id: str | None = None) -> Commit:
    return Commit(
        run_id=run_id or f"r{i}",
        job="job",
        committed_at="2026-03-01T00:00:00Z",
        committed_ms=1_772_323_200_000 + i,
        schema_version=1,
        mode="overwrite-partitions" if i % 10 == 9 else "append",
        files=[DataFile(f"d={i % 3}/part-r{i}.parquet", f"d={i % 3}", i + 1, 10 * i)],
        removed=[f"d={i % 3}/part-r{i - 3}.parquet"] if i % 10 == 9 else [],
        sources=[{"uri": f"file:///in/{i}.csv", "size": i, "version": "1"}],
    )


def stored_in_order(lake: Path) -> list[dict[str, object]]:
    """The commit objects as stored, read straight from the directory (not via CommitLog)."""
    names = sorted(p.name for p in (lake / COMMITS_DIR).iterdir() if p.suffix == ".json")
    assert names == [f"{i:020d}.json" for i in range(1, len(names) + 1)]  # no gaps
    return [json.loads((lake / COMMITS_DIR / n).read_text()) for n in names]


def test_one_commit_per_run_id_whatever_races(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    storage = open_storage(str(lake))
    first, created = CommitLog(storage).commit(synthetic(1, "same"))
    assert created and first.seq == 1
    CommitLog(storage).commit(synthetic(2, "other"))
    # a second process that read the log before either commit: it probes past both
    commitlog.forget(storage.url)
    again, created = CommitLog(open_storage(str(lake))).commit(synthetic(3, "same"))
    assert not created and again.seq == 1 and again.files == first.files
    assert [c["run_id"] for c in stored_in_order(lake)] == ["same", "other"]


def test_reads_stay_bounded_by_checkpoints(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    storage = open_storage(str(lake))
    n = 3 * CHECKPOINT_INTERVAL + 7
    for i in range(n):
        CommitLog(storage).commit(synthetic(i))
    expected = stored_in_order(lake)
    counting = CountingStorage(storage)
    commitlog.forget(storage.url)  # a fresh process
    loaded = CommitLog(counting).commits()
    assert [c.to_dict() for c in loaded] == [Commit.from_dict(e).to_dict() for e in expected]
    assert [c.seq for c in loaded] == list(range(1, n + 1))
    # pointer + checkpoint + the 7 commits after it + the probe that finds none
    assert counting.reads == 2 + 7 + 1
    counting.reads = 0
    CommitLog(counting).commits()  # cached: the last commit re-read and one probe
    assert counting.reads == 2
    live = live_files(loaded)
    removed = {p for e in expected for p in e["removed"]}  # type: ignore[attr-defined]
    assert set(live) == {f"d={i % 3}/part-r{i}.parquet" for i in range(n)} - removed
    assert len(list((lake / CHECKPOINTS_DIR).glob("0*.json"))) == 3  # older ones deleted


def test_a_torn_or_missing_checkpoint_falls_back(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    storage = open_storage(str(lake))
    for i in range(2 * CHECKPOINT_INTERVAL + 3):
        CommitLog(storage).commit(synthetic(i))
    truth = [c.to_dict() for c in CommitLog(storage).commits()]
    newest = sorted((lake / CHECKPOINTS_DIR).glob("0*.json"))[-1]
    newest.write_text(newest.read_text()[:1000])  # torn
    commitlog.forget(storage.url)
    assert [c.to_dict() for c in CommitLog(open_storage(str(lake))).commits()] == truth
    (lake / LAST_CHECKPOINT).unlink()
    for p in (lake / CHECKPOINTS_DIR).glob("0*.json"):
        p.write_text("{")
    commitlog.forget(storage.url)
    assert [c.to_dict() for c in CommitLog(open_storage(str(lake))).commits()] == truth


def test_tables_of_the_time_named_log_stay_readable(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    src = write_csv(tmp_path / "in" / "a.csv", HEADER, rows(0, 30))
    run(plan(lake, csv_source(f"{tmp_path}/in/*.csv"), run_id="old-run"))
    # make that commit look like one the time-named log wrote
    (numbered,) = (lake / COMMITS_DIR).iterdir()
    doc = json.loads(numbered.read_text())
    del doc["seq"]
    numbered.unlink()
    (lake / COMMITS_DIR / f"{doc['committed_ms']:013d}-old-run.json").write_text(json.dumps(doc))
    shutil.rmtree(lake / CHECKPOINTS_DIR, ignore_errors=True)
    commitlog.forget(f"file://{lake}")
    assert src.exists()
    write_csv(tmp_path / "in" / "b.csv", HEADER, rows(30, 20))
    again = run(plan(lake, csv_source(f"{tmp_path}/in/*.csv"), run_id="old-run"))
    assert again.already_committed and again.rows_written == 30  # found in the old log
    assert run(plan(lake, csv_source(f"{tmp_path}/in/*.csv"), run_id="new")).rows_written == 20
    names = [c.name for c in CommitLog(open_storage(str(lake))).commits()]
    assert names == [f"{doc['committed_ms']:013d}-old-run.json", f"{1:020d}.json"]
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t")[0] == (50, 50)
    assert table_totals(str(lake), {})["rows"] == 50


def test_a_deleted_and_recreated_table_is_not_served_from_the_cache(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    a = write_csv(tmp_path / "a.csv", HEADER, rows(0, 20))
    assert run(plan(lake, csv_source(a), run_id="r1")).rows_written == 20
    assert table_totals(str(lake), {})["rows"] == 20
    shutil.rmtree(lake)
    b = write_csv(tmp_path / "b.csv", HEADER, rows(0, 7))
    fresh = run(plan(lake, csv_source(b), run_id="r1"))
    assert not fresh.already_committed and fresh.rows_written == 7
    assert table_totals(str(lake), {})["rows"] == 7


def test_publish_failing_after_the_commit_point_is_a_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    write_csv(tmp_path / "in" / "a.csv", HEADER, rows(0, 20, day=1))
    lake.mkdir()
    (lake / "year=2026").write_text("a file where the partition directory goes")
    result = run(plan(lake, csv_source(f"{tmp_path}/in/*.csv"), partitioning=DAY, run_id="r1"))
    assert result.error is None and result.rows_written == 20 and not result.already_committed
    assert "run r1 is committed" in capsys.readouterr().err
    assert table_totals(str(lake), {})["rows"] == 20  # the log has it
    assert visible_parquet(lake) == []  # the directories not yet
    (lake / "year=2026").unlink()
    write_csv(tmp_path / "in" / "b.csv", HEADER, rows(20, 5, day=2))
    # the next run of the table rolls the publish forward, then commits its own
    assert run(plan(lake, csv_source(f"{tmp_path}/in/*.csv"), partitioning=DAY)).rows_written == 5
    assert duck(lake, "SELECT count(*), count(DISTINCT id) FROM t")[0] == (25, 25)
    assert not list(lake.rglob("*.staged"))


class UnansweredCreate(LocalStorage):
    """The real local storage, whose first exclusive create succeeds but its answer is lost
    (in the backend, below the storage's retry policy)."""

    def __init__(self, base: Storage) -> None:
        super().__init__(base.fs, base.root, base.url)
        self.lost = 0

    def _create(self, rel: str, data: bytes) -> bool:
        created = super()._create(rel, data)
        if not self.lost:
            self.lost += 1
            raise StorageUnavailableError(f"create {rel}: connection reset", delay=0.0)
        return created


def test_a_create_whose_answer_was_lost_is_recognised_as_ours(tmp_path: Path) -> None:
    storage = UnansweredCreate(open_storage(str(tmp_path / "lake")))
    commit, created = CommitLog(storage).commit(synthetic(1, "r1"))
    assert storage.lost == 1 and created and commit.seq == 1
    assert [c["run_id"] for c in stored_in_order(tmp_path / "lake")] == ["r1"]


def test_a_long_time_named_log_is_read_once_then_from_a_checkpoint(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / COMMITS_DIR).mkdir(parents=True)
    n = CHECKPOINT_INTERVAL + 5
    for i in range(n):  # as the time-named log wrote them: no seq, named by time and run
        c = synthetic(i)
        (lake / COMMITS_DIR / f"{c.committed_ms:013d}-{c.run_id}.json").write_text(c.to_json())
    counting = CountingStorage(open_storage(str(lake)))
    first = CommitLog(counting).commits()
    assert [c.run_id for c in first] == [f"r{i}" for i in range(n)]
    # pointer, 2 listings, every commit, the probe of seq 1; then the checkpoint is written
    # and the checkpoints listed for older ones to delete
    assert counting.reads == 1 + 2 + n + 1 + 1
    commitlog.forget(counting.url)
    counting.reads = 0
    again = CommitLog(counting).commits()
    assert [c.to_dict() for c in again] == [c.to_dict() for c in first]
    assert counting.reads == 3  # pointer, the checkpoint holding them all, probe of seq 1
    assert live_files(again) == live_files(first)
