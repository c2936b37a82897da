"""Compaction of a parquet table: file counts, rows unchanged (DuckDB), schema upgrade, the
race with overwrites in both orders, and ``lakeop compact`` / ``lakeop expire`` from -f."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from enginekit import EVENTS, csv_source, duck, plan, run, write_csv

from lakeop.cli import main
from lakeop.core.runs.maintenance import Action, MaintenancePlan
from lakeop.core.schema.parse import parse_fields
from lakeop.engine import compaction as compaction_mod
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import Commit, DataFile, live_files
from lakeop.engine.compaction import CompactionPolicy, compact
from lakeop.engine.expiry import expire, snapshot_files
from lakeop.engine.formats.parquet import ParquetFormat
from lakeop.engine.publish import write_marker
from lakeop.errors import CommitConflictError
from lakeop.storage import Storage, open_storage

HEADER = "id,user,ts,amount,country"
DAILY = {"strategy": "date", "column": "ts", "granularity": "day"}
COLUMNS = "id, user, ts, amount, country"
SCHEMA = parse_fields(list(EVENTS))


def rows(first: int, n: int, days: tuple[int, ...] = (1, 2, 3, 4, 5)) -> list[str]:
    return [
        f"{i},u{i % 97},2024-03-{days[i % len(days)]:02d}T{i % 24:02d}:00:00,{i * 0.25},"
        f"{'DE' if i % 3 else 'FR'}"
        for i in range(first, first + n)
    ]


def ingest(
    tmp: Path, loc: Path, run_id: str, first: int, n: int, *, mode: str = "append", **kw: Any
) -> None:
    src = write_csv(tmp / "src" / f"{run_id}.csv", HEADER, rows(first, n, **kw))
    result = run(
        plan(loc, csv_source(src), partitioning=DAILY, run_id=run_id, job=run_id, mode=mode)
    )
    assert result.error is None, result.error


def storage(loc: Path) -> Storage:
    return open_storage(f"file://{loc}")


def committed(loc: Path) -> list[tuple[Any, ...]]:
    """The table through DuckDB over the commit log's live files (no listing)."""
    files = [str(loc / p) for p in sorted(live_files(CommitLog(storage(loc)).commits()))]
    if not files:
        return []
    return duckdb.sql(f"SELECT {COLUMNS} FROM read_parquet({files}, union_by_name=true)").fetchall()


def listed(loc: Path) -> list[tuple[Any, ...]]:
    """The table as a directory-listing reader sees it."""
    return duck(loc, f"SELECT {COLUMNS} FROM t")


def per_partition(loc: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for f in live_files(CommitLog(storage(loc)).commits()).values():
        out.setdefault(f.partition, []).append(f.bytes)
    return out


def test_two_hundred_small_runs_compact_to_target_files(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(200):
        ingest(tmp_path, loc, f"r{i:03d}", i * 40, 40)
    before = Counter(committed(loc))
    assert sum(before.values()) == 8000 and Counter(listed(loc)) == before
    parts = per_partition(loc)
    assert all(len(v) == 200 for v in parts.values()) and len(parts) == 5
    target = 64 * 1024  # small, so several partitions roll over into more than one file

    res = compact(storage(loc), SCHEMA, 1, CompactionPolicy(target, 5), "compact-1", progress=None)

    assert res.files_before == 1000 and res.partitions == sorted(parts)
    after = per_partition(loc)
    for partition, sizes in after.items():
        limit = math.ceil(sum(parts[partition]) / target)
        assert len(sizes) <= limit, (partition, len(sizes), limit)
        assert len(sizes) <= math.ceil(sum(sizes) / target)
    assert res.files_after == sum(len(v) for v in after.values()) < 1000
    # the same multiset, through the log and through a directory listing
    assert Counter(committed(loc)) == before
    assert Counter(listed(loc)) == before
    # one commit swapped them all: added and removed together
    last = CommitLog(storage(loc)).commits()[-1]
    assert last.run_id == "compact-1" and len(last.removed) == 1000
    assert set(last.replaces) == {f.path for f in last.files}
    # a second compaction finds nothing left to do
    again = compact(
        storage(loc), SCHEMA, 1, CompactionPolicy(target, 5), "compact-2", progress=None
    )
    assert again.seq == 0 and Counter(committed(loc)) == before


def test_files_of_an_older_schema_are_rewritten_under_the_current_one(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(6):
        ingest(tmp_path, loc, f"r{i}", i * 10, 10, days=(1,))
    v2_fields = (*EVENTS, {"name": "channel", "type": "string", "default": "web"})
    v2 = parse_fields(list(v2_fields))
    compact(storage(loc), v2, 2, CompactionPolicy(1024 * 1024, 5), "c1", progress=None)
    live = live_files(CommitLog(storage(loc)).commits())
    assert len(live) == 1
    (path,) = live
    written = pq.read_table(loc / path)
    assert written.schema.names == [f["name"] for f in v2_fields]
    assert set(written.column("channel").to_pylist()) == {"web"}  # the default, as readers project
    assert sorted(written.column("id").to_pylist()) == list(range(60))


def test_an_overwrite_committed_during_compaction_is_never_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overwrite lands between compaction's planning and its commit: the compaction's
    inputs are gone, it re-plans, and the overwritten rows never come back."""
    loc = tmp_path / "lake"
    for i in range(6):
        ingest(tmp_path, loc, f"r{i}", i * 10, 10, days=(1, 2))
    real = compaction_mod._rewrite
    calls = []

    def racing(*args: Any, **kw: Any) -> Any:
        if not calls:  # first partition of the first attempt: an overwrite of day 1 lands
            ingest(tmp_path, loc, "ow", 1000, 7, mode="overwrite-partitions", days=(1,))
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(compaction_mod, "_rewrite", racing)
    res = compact(storage(loc), SCHEMA, 1, CompactionPolicy(1024 * 1024, 3), "c", progress=None)
    assert res.attempts == 2  # the first attempt's commit was refused
    ids = sorted(r[0] for r in committed(loc))
    day2 = [i for i in range(60) if i % 2 == 1]
    assert ids == sorted(day2 + list(range(1000, 1007)))
    assert sorted(r[0] for r in listed(loc)) == ids
    assert not (loc / "_lakeop" / "staging" / "c").exists()  # the refused attempt cleaned up


def test_a_compaction_committed_during_an_overwrite_is_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction lands between an overwrite's start and its commit: the overwrite replaces
    the compacted file (lineage), so the rows it overwrote do not survive in it."""
    loc = tmp_path / "lake"
    for i in range(6):
        ingest(tmp_path, loc, f"r{i}", i * 10, 10, days=(1, 2))
    real = ParquetFormat.commit

    def compact_first(self: ParquetFormat, commit: Any, schema: Any) -> Any:
        if commit.run_id == "ow":
            policy = CompactionPolicy(1024 * 1024, 3)
            res = compact(self.storage, SCHEMA, 1, policy, "c", progress=None)
            assert res.seq and len(res.partitions) == 2
        return real(self, commit, schema)

    monkeypatch.setattr(ParquetFormat, "commit", compact_first)
    ingest(tmp_path, loc, "ow", 1000, 7, mode="overwrite-partitions", days=(1,))
    ids = sorted(r[0] for r in committed(loc))
    assert ids == sorted([i for i in range(60) if i % 2 == 1] + list(range(1000, 1007)))
    assert sorted(r[0] for r in listed(loc)) == ids
    ow = CommitLog(storage(loc)).find("ow")
    assert ow is not None and len(ow.removed) == 1 and "part-c-" in ow.removed[0]


def test_compaction_refuses_inputs_removed_at_its_commit_point() -> None:
    def commit(run: str, files: list[str], removed: list[str] = ()) -> Commit:
        return Commit(
            run, run, "t", 0, 1, "append", [DataFile(p, "", 1, 1) for p in files], list(removed)
        )

    log = [commit("a", ["x", "y"]), commit("ow", ["z"], ["x"])]
    with pytest.raises(CommitConflictError, match="removed since it started"):
        compaction_mod.inputs_still_live(log, commit("c", ["n"], ["x", "y"]))
    ok = commit("c", ["n"], ["y", "z"])
    assert compaction_mod.inputs_still_live(log, ok) is ok


def manifests(tmp: Path, loc: Path, maintenance: dict[str, Any] | None = None) -> Path:
    spec: dict[str, Any] = {"location": f"file://{loc}", "partitioning": DAILY}
    if maintenance:
        spec["maintenance"] = maintenance
    docs = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {"name": "events", "namespace": "default"},
            "spec": spec,
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {"name": "events-v1", "namespace": "default"},
            "spec": {"tableRef": "events", "version": 1, "fields": list(EVENTS)},
        },
    ]
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakeop", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_compact_and_expire(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(8):
        ingest(tmp_path, loc, f"r{i}", i * 10, 10, days=(1, 2))
    before = Counter(committed(loc))
    m = manifests(
        tmp_path, loc, {"compaction": {"minInputFiles": 4}, "retention": {"snapshots": "1h"}}
    )
    pinned = snapshot_files(storage(loc), 8)

    out = cli("compact", "-f", str(m))
    assert out.returncode == 0, out.stderr
    assert "[1/2] year=2024/month=3/day=1: 8 files" in out.stderr  # the progress line
    assert "2 partitions, 16 files" in out.stdout and "-> 2 files" in out.stdout
    assert Counter(committed(loc)) == before == Counter(listed(loc))

    # inside retention: the pinned reader still reads snapshot 8, nothing is deleted
    out = cli("expire", "-f", str(m), "--output", "json")
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["filesDeleted"] == 0
    old = [str(loc / p) for p in snapshot_files(storage(loc), 8)]
    assert all("_lakeop/retired/" in p for p in old) and len(old) == len(pinned) == 16
    assert Counter(duckdb.sql(f"SELECT {COLUMNS} FROM read_parquet({old})").fetchall()) == before

    # retention 0: the replaced files go, every live file stays
    out = cli("expire", "-f", str(m), "--retention", "0s", "--output", "json")
    assert out.returncode == 0, out.stderr
    summary = yaml.safe_load(out.stdout)
    assert summary["filesDeleted"] == 16 and summary["bytesFreed"] > 0
    assert not any(Path(p).exists() for p in old)
    assert all((loc / p).exists() for p in live_files(CommitLog(storage(loc)).commits()))
    assert Counter(committed(loc)) == before == Counter(listed(loc))
    assert (loc / "_lakeop" / "checkpoints" / "_last.json").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["compact"], "give -f PATH"),
        (["compact", "-f", "/nonexistent/m.yaml"], "no such file"),
        (["expire", "-f", "{m}", "--retention", "7d"], "unit 'd'"),
        (["compact", "-f", "{m}", "--min-input-files", "0"], "must be >= 1"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path: Path, args: list[str], needle: str) -> None:
    m = manifests(tmp_path, tmp_path / "lake")
    out = cli(*[a.replace("{m}", str(m)) for a in args])
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert needle in out.stderr


def test_expire_deletes_old_quarantined_records_only(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for name in ("old", "new", "busy"):
        d = loc / "_rejected" / name
        d.mkdir(parents=True)
        (d / "rejected-a1-00000.jsonl").write_text('{"x": 1}\n')
    past = 40 * 24 * 3600
    for name in ("old", "busy"):
        f = loc / "_rejected" / name / "rejected-a1-00000.jsonl"
        st = f.stat()
        os.utime(f, (st.st_atime - past, st.st_mtime - past))
    (loc / "_lakeop" / "staging" / "busy").mkdir(parents=True)  # a run still writing
    write_marker(storage(loc), "busy", int(time.time() * 1000))
    res = expire(storage(loc), 3600, 30 * 24 * 3600, progress=None)
    assert res.rejected_runs == ["old"]
    assert sorted(p.name for p in (loc / "_rejected").iterdir()) == ["busy", "new"]


def test_plan_env_runs_what_a_maintenance_pod_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc = tmp_path / "lake"
    for i in range(5):
        ingest(tmp_path, loc, f"r{i}", i * 10, 10, days=(1,))
    before = Counter(committed(loc))
    plan = MaintenancePlan(
        namespace="default",
        table="events",
        action=Action.COMPACT,
        run_id="compact-abc",
        location=f"file://{loc}",
        format="parquet",
        compression="snappy",
        schema_version=1,
        schema_fields=EVENTS,
        target_file_size_bytes=1024 * 1024,
        min_input_files=5,
        snapshot_retention_s=0.0,
        rejected_retention_s=3600.0,
    )
    log = tmp_path / "termination-log"
    monkeypatch.setenv("LAKEOP_PLAN", plan.to_json())
    args = ["--plan-env", "LAKEOP_PLAN", "--termination-log", str(log), "--output", "json"]
    assert main(["compact", *args]) == 0
    summary = json.loads(log.read_text())
    assert (summary["filesBefore"], summary["filesAfter"], summary["error"]) == (5, 1, None)
    assert Counter(committed(loc)) == before
    # the expire plan, with retention 0: the five replaced files go
    monkeypatch.setenv("LAKEOP_PLAN", replace(plan, action=Action.EXPIRE).to_json())
    assert main(["expire", *args]) == 0
    assert json.loads(log.read_text())["filesDeleted"] == 5
    # a compact pod handed an expire plan is bad input
    assert main(["compact", *args]) == 2
    assert json.loads(log.read_text())["error"]["reason"] == "InvalidSpec"
