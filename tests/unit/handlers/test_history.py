"""Which of an IngestionJob's Jobs count as its finished runs for the history limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lakeop.core.runs.schedule import FinishedRun, runs_to_prune
from lakeop.handlers.history import finished_runs

UID = "uid-1"


def _job(
    name: str,
    outcome: str | None,
    at: str | None = None,
    *,
    namespace: str = "ns",
    uid: str = UID,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if outcome is not None:
        status["conditions"] = [
            {"type": outcome, "status": "True", "lastTransitionTime": at},
        ]
        if outcome == "Complete":
            status["completionTime"] = at
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"uid": uid}],
        },
        "status": status,
    }


def test_only_finished_jobs_of_this_owner_in_this_namespace() -> None:
    jobs = [
        _job("a", "Complete", "2026-01-01T00:01:00Z"),
        _job("b", "Failed", "2026-01-01T00:02:00Z"),
        _job("running", None),
        _job("elsewhere", "Complete", "2026-01-01T00:03:00Z", namespace="other"),
        _job("recreated", "Complete", "2026-01-01T00:04:00Z", uid="uid-2"),
    ]
    assert finished_runs(jobs, "ns", UID) == [
        FinishedRun("a", True, datetime(2026, 1, 1, 0, 1, tzinfo=UTC)),
        FinishedRun("b", False, datetime(2026, 1, 1, 0, 2, tzinfo=UTC)),
    ]


def test_failed_job_without_completion_time_uses_its_condition_time() -> None:
    (run,) = finished_runs([_job("f", "Failed", "2026-01-01T05:00:00Z")], "ns", UID)
    assert run.finished_at == datetime(2026, 1, 1, 5, tzinfo=UTC)


def test_limits_keep_the_newest() -> None:
    jobs = [_job(f"ok{i}", "Complete", f"2026-01-01T00:0{i}:00Z") for i in range(4)]
    jobs += [_job(f"bad{i}", "Failed", f"2026-01-01T01:0{i}:00Z") for i in range(2)]
    runs = finished_runs(jobs, "ns", UID)
    assert runs_to_prune(runs, 1, 1) == ["ok0", "ok1", "ok2", "bad0"]
    assert runs_to_prune(runs, 0, 0) == ["ok0", "ok1", "ok2", "ok3", "bad0", "bad1"]
