"""Run lifecycle on the local cluster: a one-minute schedule loading incrementally with its old
Jobs pruned, suspend/resume/cancel of a running run, and a run that exceeds its deadline.

The runs that must still be going when cancelled, cut off or replaced read a PostgreSQL table
the test holds locked (:class:`operator_e2e.HeldSource`): they wait inside their query until
the test releases it, however fast or slow the machine is. The test releases it once the runs
are stopped, so a surviving writer would be caught committing rows that must not exist.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from kubernetes import client
from operator_e2e import (
    HeldSource,
    Operator,
    apply,
    db_secret,
    ingestion_job,
    lakeop_jobs,
    sql_job,
    status_of,
    table_with_v1,
    wait_for,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCHEDULE_BUDGET_SECONDS = 150


def _csv(path: Path, ids: range) -> None:
    path.write_text("id,v\n" + "".join(f"{i},v{i}\n" for i in ids))


def _commits(location: Path) -> list[Path]:
    return sorted((location / "_lakeop" / "commits").glob("*.json"))


def _parquet_ids(location: Path) -> list[int]:
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT id FROM read_parquet('{location}/**/*.parquet') ORDER BY id"
    ).fetchall()
    return [int(r[0]) for r in rows]


def _patch(kube: Any, ns: str, name: str, patch: str) -> None:
    kube.kubectl("patch", "lij", name, "-n", ns, "--type", "merge", "-p", patch)


def _pods(kube: Any, ns: str, ij: str) -> list[Any]:
    pods = client.CoreV1Api(kube.api).list_namespaced_pod(
        ns, label_selector=f"lakeop.io/ingestionjob={ij}"
    )
    return list(pods.items)


def test_one_minute_schedule_loads_incrementally_and_prunes_history(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    landing = tmp_path / "landing"
    landing.mkdir()
    _csv(landing / "a.csv", range(0, 5))
    location = table_with_v1(kube, operator, ns, "inc")
    apply(
        kube,
        ns,
        ingestion_job(
            "inc-load",
            "inc",
            f"{landing.as_uri()}/*.csv",
            options={"header": True},
            schedule="* * * * *",
            successfulRunsHistoryLimit=1,
        ),
    )
    first = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "inc-load",
        lambda s: (s.get("succeededRuns") or 0) >= 1,
        what="the first scheduled run",
        timeout=90,
        operator=operator,
    )
    assert (first["lastRun"]["number"], first["lastRun"]["rowsWritten"]) == (1, 5)
    _csv(landing / "b.csv", range(100, 103))  # lands between the two schedule times
    left = SCHEDULE_BUDGET_SECONDS - (time.monotonic() - started)
    second = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "inc-load",
        lambda s: (s.get("succeededRuns") or 0) >= 2 and s.get("phase") == "Scheduled",
        what="the second scheduled run",
        timeout=max(left, 1.0),
        operator=operator,
    )
    run = second["lastRun"]
    assert (run["number"], run["rowsRead"], run["rowsWritten"]) == (2, 3, 3)  # only b.csv
    assert (second["runs"], second["failedRuns"]) == (2, 0)
    assert second["lastScheduleTime"] > first["lastScheduleTime"]
    assert second["nextScheduleTime"] > second["lastScheduleTime"]
    wait_status(
        kube,
        ns,
        "tables",
        "inc",
        lambda s: s.get("rows") == 8,
        what="rows of both runs in the table's totals",
        operator=operator,
    )
    assert _parquet_ids(location) == [*range(0, 5), *range(100, 103)]
    assert len(_commits(location)) == 2
    # successfulRunsHistoryLimit: 1 -> the first run's Job is deleted, the second's kept
    jobs = wait_for(
        lambda: (j := lakeop_jobs(kube, ns, "inc-load")) and len(j) == 1 and j,
        timeout=30,
        what="the first run's Job pruned",
    )
    assert jobs[0].metadata.name == run["jobName"]
    assert time.monotonic() - started < SCHEDULE_BUDGET_SECONDS + 30


@pytest.fixture(scope="module")
def priority_class(kube: Any) -> Iterator[tuple[str, int]]:
    """A cluster-scoped PriorityClass for the module's runs (deleted afterwards)."""
    name, value = f"lakeop-e2e-{uuid.uuid4().hex[:6]}", 1234
    pc = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "preemptionPolicy": "Never",
    }
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(pc))
    yield name, value
    kube.kubectl("delete", "priorityclass", name, "--wait=false", check=False)


def test_suspend_resume_and_cancel(
    kube: Any, operator: Operator, ns: str, priority_class: tuple[str, int], held: HeldSource
) -> None:
    location = table_with_v1(kube, operator, ns, "sus")
    db_secret(kube, ns, held.url)
    pc_name, pc_value = priority_class
    apply(
        kube,
        ns,
        sql_job(
            "sus-load", "sus", held.query, suspend=True, backoffLimit=0, priorityClassName=pc_name
        ),
    )
    suspended = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "sus-load",
        lambda s: s.get("phase") == "Suspended",
        what="Suspended before it ever ran",
        operator=operator,
    )
    assert not suspended.get("currentRun") and not lakeop_jobs(kube, ns, "sus-load")
    _patch(kube, ns, "sus-load", '{"spec":{"suspend":false}}')  # resume: the one-off starts
    running = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "sus-load",
        lambda s: s.get("phase") == "Running",
        what="Running after resume",
        operator=operator,
    )
    job_name = running["currentRun"]["jobName"]
    pods = wait_for(
        lambda: [p for p in _pods(kube, ns, "sus-load") if (p.status.phase or "") == "Running"],
        timeout=60,
        what="the run's pod running",
    )
    # priorityClassName reaches the pod, and the API server resolved it to its value
    assert (pods[0].spec.priority_class_name, pods[0].spec.priority) == (pc_name, pc_value)
    wait_for(lambda: held.waiting() > 0, timeout=60, what="the run waiting in its query")
    # suspend alone lets a running run go on ...
    _patch(kube, ns, "sus-load", '{"spec":{"suspend":true}}')
    time.sleep(3)
    assert status_of(kube, ns, "ingestionjobs", "sus-load")["phase"] == "Running"
    assert [j.metadata.name for j in lakeop_jobs(kube, ns, "sus-load")] == [job_name]
    # ... suspend + lakeop.io/cancel stops it
    kube.kubectl("annotate", "lij", "sus-load", "-n", ns, "lakeop.io/cancel=true")
    cancelled = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "sus-load",
        lambda s: s.get("phase") == "Failed",
        what="the run recorded as cancelled",
        timeout=60,
        operator=operator,
    )
    assert cancelled["lastRun"]["error"]["reason"] == "Cancelled", cancelled["lastRun"]
    conds = {c["type"]: c for c in cancelled["conditions"]}
    assert (conds["Failed"]["status"], conds["Failed"]["reason"]) == ("True", "Cancelled")
    assert (cancelled["runs"], cancelled["failedRuns"]) == (1, 1)
    assert not cancelled.get("currentRun")
    wait_for(lambda: not _pods(kube, ns, "sus-load"), timeout=60, what="the run's pod gone")
    assert not lakeop_jobs(kube, ns, "sus-load")
    held.release()  # a writer that survived the cancel would go on and commit now
    time.sleep(3)
    assert _commits(location) == []  # nothing of the cancelled run is in the table
    assert not list(location.rglob("*.parquet"))
    # resume: suspend false, cancel removed, and a re-run token for one more run
    _patch(kube, ns, "sus-load", '{"spec":{"suspend":false}}')
    kube.kubectl("annotate", "lij", "sus-load", "-n", ns, "lakeop.io/cancel-")
    kube.kubectl("annotate", "lij", "sus-load", "-n", ns, "lakeop.io/rerun=after-cancel")
    again = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "sus-load",
        lambda s: s.get("phase") == "Succeeded",
        what="the re-run after resume",
        timeout=90,
        operator=operator,
    )
    assert (again["lastRun"]["number"], again["lastRun"]["rowsWritten"]) == (2, held.rows)
    assert again["lastRerunToken"] == "after-cancel"
    assert _parquet_ids(location) == list(range(1, held.rows + 1))
    assert len(_commits(location)) == 1


def test_deadline_exceeded(kube: Any, operator: Operator, ns: str, held: HeldSource) -> None:
    location = table_with_v1(kube, operator, ns, "dl")
    db_secret(kube, ns, held.url)
    apply(
        kube,
        ns,
        sql_job(
            "dl-load",
            "dl",
            held.query,
            activeDeadlineSeconds=2,
            backoffLimit=0,
            ttlSecondsAfterFinished=600,
        ),
    )
    failed = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "dl-load",
        lambda s: s.get("phase") == "Failed",
        what="Failed by its deadline",
        timeout=90,
        operator=operator,
    )
    error = failed["lastRun"]["error"]
    assert error["reason"] == "DeadlineExceeded", failed["lastRun"]
    assert "deadline" in error["message"].lower()
    conds = {c["type"]: c for c in failed["conditions"]}
    assert (conds["Failed"]["status"], conds["Failed"]["reason"]) == ("True", "DeadlineExceeded")
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "DeadlineExceeded")
    events = client.CoreV1Api(kube.api).list_namespaced_event(ns).items
    assert any(
        e.involved_object.name == "dl-load" and e.reason == "DeadlineExceeded" for e in events
    )
    job = lakeop_jobs(kube, ns, "dl-load")[0]
    assert (job.spec.active_deadline_seconds, job.spec.ttl_seconds_after_finished) == (2, 600)
    exit_rule = job.spec.pod_failure_policy.rules[1]  # bad input (exit 2) is not retried
    assert (exit_rule.action, exit_rule.on_exit_codes.values) == ("FailJob", [2])
    wait_for(lambda: not _pods(kube, ns, "dl-load"), timeout=60, what="the run's pod stopped")
    held.release()  # a writer that outlived its deadline would commit now
    time.sleep(3)
    assert _commits(location) == []


def test_replace_supersedes_a_running_scheduled_run_then_cancel(
    kube: Any, operator: Operator, ns: str, held: HeldSource
) -> None:
    location = table_with_v1(kube, operator, ns, "rep")
    db_secret(kube, ns, held.url)
    apply(
        kube,
        ns,
        sql_job(
            "rep-load",
            "rep",
            held.query,  # held until the test releases it: outlives the next schedule time
            schedule="* * * * *",
            concurrencyPolicy="Replace",
            backoffLimit=0,
        ),
    )
    first = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "rep-load",
        lambda s: (s.get("currentRun") or {}).get("number") == 1,
        what="run 1 started by the schedule",
        timeout=75,
        operator=operator,
    )
    first_job = first["currentRun"]["jobName"]
    replaced = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "rep-load",
        lambda s: (s.get("currentRun") or {}).get("number") == 2,
        what="run 2 replacing run 1 at the next schedule time",
        timeout=75,
        operator=operator,
    )
    run1 = replaced["lastRun"]
    assert (run1["number"], run1["jobName"]) == (1, first_job)
    assert run1["error"]["reason"] == "Replaced", run1
    assert (replaced["runs"], replaced["failedRuns"], replaced["succeededRuns"]) == (1, 1, 0)
    assert replaced["lastScheduleTime"] > first["lastScheduleTime"]
    names = [j.metadata.name for j in lakeop_jobs(kube, ns, "rep-load")]
    assert names == [replaced["currentRun"]["jobName"]]  # run 1's Job was deleted
    # cancel works for scheduled runs as well: suspend + lakeop.io/cancel stops run 2
    _patch(kube, ns, "rep-load", '{"spec":{"suspend":true}}')
    kube.kubectl("annotate", "lij", "rep-load", "-n", ns, "lakeop.io/cancel=true")
    done = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "rep-load",
        lambda s: s.get("runs") == 2 and not s.get("currentRun"),
        what="run 2 cancelled",
        timeout=60,
        operator=operator,
    )
    assert done["lastRun"]["number"] == 2
    assert done["lastRun"]["error"]["reason"] == "Cancelled", done["lastRun"]
    assert done["failedRuns"] == 2
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "rep-load",
        lambda s: s.get("phase") == "Suspended",
        what="Suspended after the cancel",
        timeout=30,
        operator=operator,
    )
    wait_for(lambda: not _pods(kube, ns, "rep-load"), timeout=60, what="the runs' pods gone")
    held.release()  # a replaced or cancelled writer still alive would commit now
    time.sleep(3)
    assert _commits(location) == []
