"""Table maintenance handlers against the fake API, on a real local lake.

The small files are written by ``lakeop ingest -f``; the "pod" of each maintenance Job is
``lakeop compact --plan-env`` run in-process with the Job's own plan, and its termination
log becomes the fake pod's termination message. So the status, Events and metrics checked
here are the real run's, and the rows are read back with DuckDB.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from fake_kube import FakeKube
from handler_builders import FIELDS_V1, NS, Event, body, sv_obj, table_obj

from lakeop.cli import main
from lakeop.core.constants import SCHEMA_VERSIONS, TABLES
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import live_files
from lakeop.handlers import maintenance
from lakeop.memo import OperatorMemo
from lakeop.storage import open_storage

TABLE = "events"
SCHEDULE = {"compaction": {"schedule": "* * * * *", "minInputFiles": 5}}


def location(lake: Path) -> Path:
    return lake / NS / TABLE


def put_table(fake: FakeKube, lake: Path, maintenance_spec: dict[str, Any], **meta: Any) -> None:
    obj = table_obj(TABLE, location=location(lake).as_uri(), maintenance=maintenance_spec)
    obj["metadata"].update(meta)
    obj["status"] = {
        "location": location(lake).as_uri(),
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}],
    }
    fake.put(TABLES, obj)
    fake.put(SCHEMA_VERSIONS, sv_obj(1, phase="Accepted"))


def small_runs(tmp: Path, lake: Path, runs: int, rows: int = 20) -> None:
    """``runs`` ingestion runs of ``rows`` rows each: one small file per run."""
    for r in range(runs):
        src = tmp / "src" / f"part-{r}.csv"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text("id,name\n" + "".join(f"{r * rows + i},n{i % 7}\n" for i in range(rows)))
        folder = tmp / "manifests" / str(r)
        folder.mkdir(parents=True)
        docs = [
            {**table_obj(TABLE, location=location(lake).as_uri()), "status": None},
            {"apiVersion": "lakeop.io/v1alpha1", "kind": "SchemaVersion",
             "metadata": {"name": "events-v1", "namespace": NS},
             "spec": {"tableRef": TABLE, "version": 1, "fields": FIELDS_V1}},
            {"apiVersion": "lakeop.io/v1alpha1", "kind": "IngestionJob",
             "metadata": {"name": "load", "namespace": NS},
             "spec": {"tableRef": TABLE, "source": {"uri": src.as_uri(), "format": "csv"}}},
        ]  # fmt: skip
        for d in docs:
            d.pop("status", None)
        (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
        assert main(["ingest", "-f", str(folder), "--output", "json"]) == 0


def stored_rows(lake: Path) -> Counter[tuple[Any, ...]]:
    files = sorted(str(p) for p in location(lake).rglob("*.parquet") if "_lakeop" not in p.parts)
    return Counter(duckdb.sql(f"SELECT id, name FROM read_parquet({files})").fetchall())


def live_rows(lake: Path) -> Counter[tuple[Any, ...]]:
    """The committed table (commit log's live files), as DuckDB reads it."""
    log = CommitLog(open_storage(location(lake).as_uri()))
    files = [str(location(lake) / p) for p in sorted(live_files(log.commits()))]
    return Counter(duckdb.sql(f"SELECT id, name FROM read_parquet({files})").fetchall())


def live_file_count(lake: Path) -> int:
    return len(live_files(CommitLog(open_storage(location(lake).as_uri())).commits()))


def the_job(fake: FakeKube) -> dict[str, Any]:
    (job,) = [j for j in fake.jobs.values() if not (j.get("status") or {}).get("conditions")]
    return job


def run_pod(fake: FakeKube, job: dict[str, Any], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the Job's pod in-process: ``lakeop compact`` with the Job's env and args."""
    (c,) = job["spec"]["template"]["spec"]["containers"]
    for e in c["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    term = tmp / f"term-{job['metadata']['name']}"
    args = [a if a != "/dev/termination-log" else str(term) for a in c["args"]]
    code = main([c["command"][1], *args])
    name = job["metadata"]["name"]
    fake.pods.append(
        {
            "metadata": {"name": f"{name}-pod", "namespace": NS, "labels": {"job-name": name}},
            "spec": {"containers": [{"name": "ingest"}]},
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [
                    {"name": "ingest", "state": {"terminated": {"message": term.read_text()}}}
                ],
            },
        }
    )
    fake.finish_job(NS, name, succeeded=code == 0, at="2026-12-02T03:01:00Z")
    return code


def maintenance_status(fake: FakeKube) -> dict[str, Any]:
    return dict(fake.status(TABLES, NS, TABLE).get("maintenance") or {})


async def test_a_scheduled_run_compacts_then_expires_and_is_recorded_once(
    fake: FakeKube,
    memo: OperatorMemo,
    *,
    lake: Path,
    tmp_path: Path,
    events: list[Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small_runs(tmp_path, lake, 6)
    before = live_rows(lake)
    assert live_file_count(lake) == 6
    put_table(fake, lake, {**SCHEDULE, "retention": {"snapshots": "0s"}})

    await maintenance.maintain(memo, NS, TABLE)
    job = the_job(fake)
    status = maintenance_status(fake)
    current = status["currentRun"]
    assert current["jobName"] == job["metadata"]["name"]
    assert current["trigger"].startswith("schedule ")
    assert status["lastScheduleTime"] and status["nextCompactionTime"]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "Table"
    plan = json.loads(
        next(e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
             if e["name"] == "LAKEOP_PLAN")
    )  # fmt: skip
    assert plan["thenExpire"] is True and plan["schemaVersion"] == 1
    assert [e.reason for e in events] == ["MissedSchedulesCaughtUp", "JobCreated"]

    await maintenance.maintain(memo, NS, TABLE)  # in flight: nothing new
    assert len(fake.writes("create_job")) == 1

    assert run_pod(fake, job, tmp_path, monkeypatch) == 0
    await maintenance.job_event(
        body(fake.jobs[(NS, job["metadata"]["name"])]), memo, NS, "MODIFIED"
    )
    status = maintenance_status(fake)
    assert "currentRun" not in status
    last = status["lastCompaction"]
    assert (last["partitions"], last["filesBefore"], last["filesAfter"]) == (1, 6, 1)
    assert last["bytesBefore"] > 0 and last["bytesAfter"] > 0
    assert status["lastExpiry"]["filesDeleted"] == 6 and status["lastExpiry"]["bytesFreed"] > 0
    assert status["lastRun"].get("error") is None  # null: removed by the merge patch
    table_status = fake.status(TABLES, NS, TABLE)
    assert table_status["files"] == 1 and table_status["rows"] == 120
    assert [e.reason for e in events][-2:] == ["Compacted", "Expired"]
    # same multiset of rows, in one file, and the replaced files are gone from storage
    assert live_rows(lake) == before and stored_rows(lake) == before and live_file_count(lake) == 1
    m = memo.metrics
    labels = {"namespace": NS, "table": TABLE}
    assert m.sample("lakeop_files_compacted_total", labels) == 6
    assert m.sample("lakeop_files_expired_total", labels) == 6
    assert (m.sample("lakeop_bytes_compacted_total", labels) or 0) > 0
    assert m.sample("lakeop_maintenance_runs_succeeded_total", labels) == 1
    assert m.sample("lakeop_maintenance_duration_seconds_count", labels) == 1

    recorded = len(fake.writes("patch_status", TABLES))
    await maintenance.job_event(
        body(fake.jobs[(NS, job["metadata"]["name"])]), memo, NS, "MODIFIED"
    )
    assert len(fake.writes("patch_status", TABLES)) == recorded  # recorded once
    assert m.sample("lakeop_maintenance_runs_succeeded_total", labels) == 1


async def test_each_compact_token_runs_once(
    fake: FakeKube,
    memo: OperatorMemo,
    *,
    lake: Path,
    tmp_path: Path,
    events: list[Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small_runs(tmp_path, lake, 5)
    put_table(fake, lake, {}, annotations={"lakeop.io/compact": "t1"})
    await maintenance.on_demand(memo, TABLE, NS)
    job = the_job(fake)
    assert maintenance_status(fake)["currentRun"]["trigger"] == "annotation lakeop.io/compact=t1"
    assert "nextCompactionTime" not in maintenance_status(fake)  # no schedule
    assert run_pod(fake, job, tmp_path, monkeypatch) == 0
    await maintenance.maintain(memo, NS, TABLE)  # the timer records it too
    assert maintenance_status(fake)["lastCompaction"]["filesAfter"] == 1
    assert maintenance_status(fake)["lastCompactToken"] == "t1"
    for _ in range(2):
        await maintenance.on_demand(memo, TABLE, NS)
    assert len(fake.jobs) == 1  # the same token: no second run
    fake.obj(TABLES, NS, TABLE)["metadata"]["annotations"]["lakeop.io/compact"] = "t2"
    await maintenance.on_demand(memo, TABLE, NS)
    second = the_job(fake)
    assert second["metadata"]["name"] != job["metadata"]["name"]
    assert run_pod(fake, second, tmp_path, monkeypatch) == 0
    await maintenance.maintain(memo, NS, TABLE)
    last = maintenance_status(fake)["lastCompaction"]
    assert last["partitions"] == 0  # nothing left to compact: recorded as such
    assert [e.reason for e in events].count("Compacted") == 2


async def test_a_failing_run_is_maintenance_failed_with_the_pods_reason(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    put_table(fake, lake, SCHEDULE)
    await maintenance.maintain(memo, NS, TABLE)
    name = the_job(fake)["metadata"]["name"]
    report = {
        "action": "compact",
        "runId": "r",
        "error": {"reason": "StorageUnavailable", "message": "down"},
    }
    fake.pods.append(
        {
            "metadata": {"name": "p", "namespace": NS, "labels": {"job-name": name}},
            "status": {
                "containerStatuses": [{"state": {"terminated": {"message": json.dumps(report)}}}]
            },
        }
    )
    fake.finish_job(NS, name, succeeded=False, at="2026-12-02T03:01:00Z")
    await maintenance.maintain(memo, NS, TABLE)
    status = maintenance_status(fake)
    assert status["lastRun"]["error"] == {"reason": "StorageUnavailable", "message": "down"}
    assert "lastCompaction" not in status and "currentRun" not in status
    failed = [e for e in events if e.reason == "MaintenanceFailed"]
    assert len(failed) == 1 and "StorageUnavailable: down" in failed[0].message
    labels = {"namespace": NS, "table": TABLE}
    assert memo.metrics.sample("lakeop_maintenance_runs_failed_total", labels) == 1


async def test_an_oom_killed_pod_is_reported_as_such(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    put_table(fake, lake, SCHEDULE)
    await maintenance.maintain(memo, NS, TABLE)
    name = the_job(fake)["metadata"]["name"]
    fake.pods.append(
        {
            "metadata": {"name": "p", "namespace": NS, "labels": {"job-name": name}},
            "spec": {"containers": [{"name": "ingest", "resources": {"limits": {"memory": "1G"}}}]},
            "status": {"containerStatuses": [
                {"name": "ingest", "state": {"terminated": {"reason": "OOMKilled"}}}
            ]},
        }
    )  # fmt: skip
    fake.finish_job(NS, name, succeeded=False, at="2026-12-02T03:01:00Z")
    await maintenance.maintain(memo, NS, TABLE)
    assert maintenance_status(fake)["lastRun"]["error"]["reason"] == "OOMKilled"


async def test_a_job_lost_in_a_restart_is_created_again_under_its_name(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    put_table(fake, lake, SCHEDULE)
    await maintenance.maintain(memo, NS, TABLE)
    name = the_job(fake)["metadata"]["name"]
    fake.jobs.clear()  # the operator died between writing currentRun and creating the Job
    await maintenance.maintain(memo, NS, TABLE)
    assert [j["metadata"]["name"] for j in fake.jobs.values()] == [name]
    await maintenance.maintain(memo, NS, TABLE)  # 409: still one
    assert len(fake.jobs) == 1


async def test_the_maintenance_pod_template_is_merged_like_an_ingestion_jobs(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    template = {
        "metadata": {"labels": {"team": "data"}},
        "spec": {
            "serviceAccountName": "lake-writer",
            "nodeSelector": {"pool": "batch"},
            "volumes": [{"name": "extra", "emptyDir": {}}],
            "containers": [
                {
                    "name": "ingest",
                    "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
                    "volumeMounts": [{"name": "extra", "mountPath": "/extra"}],
                }
            ],
        },
    }
    put_table(fake, lake, {**SCHEDULE, "podTemplate": template})
    await maintenance.maintain(memo, NS, TABLE)
    pod = the_job(fake)["spec"]["template"]
    spec, (c,) = pod["spec"], pod["spec"]["containers"]
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["metadata"]["labels"]["lakeop.io/maintenance"] == "compact"
    assert spec["serviceAccountName"] == "lake-writer" and spec["nodeSelector"] == {"pool": "batch"}
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in c["env"]
    assert {"name": "extra", "mountPath": "/extra"} in c["volumeMounts"]
    assert c["command"] == ["lakeop", "compact"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True  # hardening kept


async def test_a_bad_schedule_is_reported_once_and_starts_nothing(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    put_table(fake, lake, {"compaction": {"schedule": "*/15 25 * * *"}})
    for _ in range(3):
        await maintenance.maintain(memo, NS, TABLE)
    assert not fake.jobs
    failed = [e for e in events if e.reason == "MaintenanceFailed"]
    assert len(failed) == 1 and "spec.maintenance.compaction.schedule" in failed[0].message
    assert maintenance_status(fake)["lastRun"]["error"]["reason"] == "InvalidSchedule"


async def test_a_table_without_an_accepted_schema_uses_up_the_token(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    put_table(fake, lake, {}, annotations={"lakeop.io/compact": "t1"})
    fake.objects.pop((SCHEMA_VERSIONS, NS, "events-v1"))
    await maintenance.maintain(memo, NS, TABLE)
    assert not fake.jobs
    assert maintenance_status(fake)["lastCompactToken"] == "t1"
    assert maintenance_status(fake)["lastRun"]["error"]["reason"] == "NoAcceptedSchema"
    await maintenance.maintain(memo, NS, TABLE)
    assert [e.reason for e in events] == ["MaintenanceFailed"]


async def test_history_keeps_three_succeeded_and_one_failed_job(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    put_table(fake, lake, {})
    for i, ok in enumerate([True, True, False, True, False, True]):
        fake.put_job(
            {
                "metadata": {
                    "name": f"events-compact-{i}",
                    "namespace": NS,
                    "labels": {"lakeop.io/maintenance": "compact", "lakeop.io/table": TABLE},
                    "ownerReferences": [{"uid": f"uid-{TABLE}"}],
                },
            }
        )
        fake.finish_job(NS, f"events-compact-{i}", succeeded=ok, at=f"2026-12-02T03:0{i}:00Z")
    doomed = await maintenance.prune(memo, NS, TABLE, f"uid-{TABLE}")
    assert doomed == ["events-compact-0", "events-compact-2"]


async def test_a_token_waits_for_the_table_to_be_prepared(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    put_table(fake, lake, {}, annotations={"lakeop.io/compact": "t1"})
    fake.obj(TABLES, NS, TABLE)["status"].pop("location")
    await maintenance.maintain(memo, NS, TABLE)
    assert not fake.jobs and not fake.writes("patch_status", TABLES)
    fake.obj(TABLES, NS, TABLE)["status"]["location"] = location(lake).as_uri()
    await maintenance.maintain(memo, NS, TABLE)
    assert len(fake.jobs) == 1
