"""Recording a run's result against the fake API edge: success and failure from the pod's
summary, a run whose pods still stop, a Job that vanished, and the history limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube
from handler_builders import NS, Event, body, ij_obj, ready

from lakeop.core.constants import INGESTION_JOBS
from lakeop.core.runs.jobs import job_name, run_id
from lakeop.handlers import ingestionjob, runs
from lakeop.memo import OperatorMemo

RUN1 = job_name("load", "uid-load", 1)
RID1 = run_id("uid-load", 1)


async def start(memo: OperatorMemo, fake: FakeKube, lake: Path, **spec: Any) -> None:
    """A Ready table and IngestionJob ``load`` whose run 1 is in flight."""
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj(**spec))
    await ingestionjob.reconcile(
        body=body(fake.obj(INGESTION_JOBS, NS, "load")),
        memo=memo,
        patch=kopf.Patch(),
        name="load",
        namespace=NS,
    )
    assert fake.status(INGESTION_JOBS, NS, "load")["currentRun"]["jobName"] == RUN1


def pod(phase: str, summary: dict[str, Any] | None, *, run: int = 1) -> dict[str, Any]:
    terminated = {"message": json.dumps(summary)} if summary is not None else {}
    return {
        "metadata": {
            "name": f"load-pod-{run}",
            "namespace": NS,
            "creationTimestamp": "2026-01-01T00:01:00Z",
            "labels": {"lakeop.io/ingestionjob": "load", "lakeop.io/run": str(run)},
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"state": {"terminated": terminated}}] if terminated else [],
        },
    }


SUMMARY = {"runId": RID1, "rowsRead": 12, "rowsWritten": 10, "rowsRejected": 2, "filesWritten": 1}


async def test_a_succeeded_run_is_recorded_once(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    await start(memo, fake, lake)
    fake.finish_job(NS, RUN1, succeeded=True, at="2026-01-01T00:02:00Z")
    fake.pods.append(pod("Succeeded", SUMMARY))
    assert await runs.record_result(memo, NS, "load", job=RUN1) is True
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert "currentRun" not in status
    assert (status["runs"], status["succeededRuns"], status["failedRuns"]) == (1, 1, 0)
    assert status["phase"] == "Succeeded"
    last = status["lastRun"]
    assert (last["runId"], last["rowsWritten"], last["rowsRejected"]) == (RID1, 10, 2)
    assert "error" not in last
    assert events[-1] == Event(
        "IngestionJob", "load", "Normal", "Succeeded", "run 1 wrote 10 rows (1 files)"
    )
    labels = {"namespace": NS, "table": "events"}
    assert memo.metrics.sample("lakeop_runs_succeeded_total", labels) == 1.0
    assert memo.metrics.sample("lakeop_rows_written_total", labels) == 10.0
    # the Job's DELETED event (or the follow timer) afterwards finds nothing in flight
    writes = len(fake.calls)
    assert await runs.record_result(memo, NS, "load", job=RUN1) is False
    assert await runs.record_result(memo, NS, "load") is False
    assert len(fake.calls) == writes


async def test_a_failed_run_records_the_pods_reason(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    await start(memo, fake, lake)
    fake.finish_job(NS, RUN1, succeeded=False, at="2026-01-01T00:02:00Z")
    error = {"reason": "InvalidRecords", "message": "3 rows failed validation"}
    fake.pods.append(pod("Failed", {**SUMMARY, "rowsWritten": 0, "error": error}))
    assert await runs.record_result(memo, NS, "load", job=RUN1) is True
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert (status["runs"], status["succeededRuns"], status["failedRuns"]) == (1, 0, 1)
    assert status["phase"] == "Failed"
    assert status["lastRun"]["error"]["reason"] == "InvalidRecords"
    assert "3 rows failed validation" in status["lastRun"]["error"]["message"]
    assert (events[-1].type, events[-1].reason) == ("Warning", "InvalidRecords")
    labels = {"namespace": NS, "table": "events"}
    assert memo.metrics.sample("lakeop_runs_failed_total", labels) == 1.0


async def test_a_failed_run_waits_while_its_pods_still_stop(
    fake: FakeKube, memo: OperatorMemo, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "POD_STOP_SECONDS", 0.0)
    await start(memo, fake, lake)
    fake.finish_job(NS, RUN1, succeeded=False, at="2026-01-01T00:02:00Z")
    fake.pods.append(pod("Running", None))
    writes = len(fake.calls)
    assert await runs.record_result(memo, NS, "load", job=RUN1) is False
    assert len(fake.calls) == writes  # not recorded: a pod might still commit
    assert fake.status(INGESTION_JOBS, NS, "load")["currentRun"]["jobName"] == RUN1


async def test_a_vanished_job_is_a_failure_only_after_the_start_grace(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    await start(memo, fake, lake)
    fake.jobs.clear()
    assert await runs.record_result(memo, NS, "load") is False  # just started: Job may come
    ij = fake.obj(INGESTION_JOBS, NS, "load")
    ij["status"]["currentRun"]["startTime"] = "2026-01-01T00:00:00Z"
    assert await runs.record_result(memo, NS, "load") is True
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert status["failedRuns"] == 1
    assert "disappeared" in status["lastRun"]["error"]["message"]


async def test_another_jobs_event_records_nothing(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    await start(memo, fake, lake)
    writes = len(fake.calls)
    assert await runs.record_result(memo, NS, "load", job="load-someone-else") is False
    assert len(fake.calls) == writes


def finished_job(name: str, at: str, *, succeeded: bool = True) -> dict[str, Any]:
    kind = "Complete" if succeeded else "Failed"
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"lakeop.io/ingestionjob": "load"},
            "ownerReferences": [{"uid": "uid-load"}],
        },
        "status": {
            "conditions": [{"type": kind, "status": "True", "lastTransitionTime": at}],
            **({"completionTime": at} if succeeded else {}),
        },
    }


async def test_recording_prunes_the_history_beyond_its_limits(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    await start(memo, fake, lake, successfulRunsHistoryLimit=1, failedRunsHistoryLimit=1)
    fake.put_job(finished_job("old-ok", "2026-01-01T00:00:10Z"))
    fake.put_job(finished_job("old-bad-1", "2026-01-01T00:00:20Z", succeeded=False))
    fake.put_job(finished_job("old-bad-2", "2026-01-01T00:00:30Z", succeeded=False))
    foreign = finished_job("not-mine", "2026-01-01T00:00:05Z")
    foreign["metadata"]["ownerReferences"] = [{"uid": "uid-an-older-load"}]
    fake.put_job(foreign)
    fake.finish_job(NS, RUN1, succeeded=True, at="2026-01-01T00:05:00Z")
    fake.pods.append(pod("Succeeded", SUMMARY))
    assert await runs.record_result(memo, NS, "load", job=RUN1) is True
    deleted = sorted(c.name for c in fake.writes("delete_job"))
    assert deleted == ["old-bad-1", "old-ok"]  # newest of each kind kept; not-mine untouched
    assert sorted(name for _, name in fake.jobs) == sorted([RUN1, "old-bad-2", "not-mine"])


async def test_job_events_record_only_an_ended_or_deleted_job(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    await start(memo, fake, lake, backoffLimit=0)
    job = fake.jobs[(NS, RUN1)]
    writes = len(fake.calls)
    await runs.job_event(body=body(job), memo=memo, namespace=NS, type="MODIFIED")
    assert len(fake.calls) == writes  # still running: nothing to record
    fake.jobs.clear()  # deleted by hand, long after it started
    fake.obj(INGESTION_JOBS, NS, "load")["status"]["currentRun"]["startTime"] = (
        "2026-01-01T00:00:00Z"
    )
    await runs.job_event(body=body(job), memo=memo, namespace=NS, type="DELETED")
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert (status["runs"], status["failedRuns"]) == (1, 1)
    assert "currentRun" not in status


async def test_a_run_in_flight_shows_its_pods_last_progress_line(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    """Job pods hold no API credentials: the follow tick reads the running pod's log tail
    and writes the last progress line's facts to ``status.currentRun.progress``, once per
    change."""
    await start(memo, fake, lake)
    assert await runs.record_result(memo, NS, "load") is False  # no pod yet: nothing to show
    assert "progress" not in fake.status(INGESTION_JOBS, NS, "load")["currentRun"]
    fake.pods.append(pod("Running", None))
    line = '{"message": "...", "rowsRead": 1200000, "rowsPerSecond": 350000, "percent": 42}'
    fake.logs[(NS, "load-pod-1")] = f"lakeop: reading\n{line}\n"
    assert await runs.record_result(memo, NS, "load") is False
    current = fake.status(INGESTION_JOBS, NS, "load")["currentRun"]
    assert current["progress"] == {"percent": 42, "rowsRead": 1_200_000, "rowsPerSecond": 350_000}
    assert current["jobName"] == RUN1
    writes = len(fake.calls)
    assert await runs.record_result(memo, NS, "load") is False
    assert [c.verb for c in fake.calls[writes:]] == []  # unchanged: no write
    fake.finish_job(NS, RUN1, succeeded=True, at="2026-01-01T00:02:00Z")
    fake.pods[-1] = pod("Succeeded", SUMMARY)
    assert await runs.record_result(memo, NS, "load", job=RUN1) is True
    assert "currentRun" not in fake.status(INGESTION_JOBS, NS, "load")
