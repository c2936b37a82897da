"""The schedule timer against the fake API edge: not due, due (lastScheduleTime written with the
run's identity, before the Job), suspended, an invalid schedule, and overlap under
``concurrencyPolicy`` Forbid and Replace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
from fake_kube import FakeKube
from handler_builders import NS, Event, body, ij_obj, ready

from lakeop.core.constants import INGESTION_JOBS
from lakeop.core.runs.jobs import job_name
from lakeop.handlers import schedule
from lakeop.memo import OperatorMemo

RUN1, RUN2 = job_name("load", "uid-load", 1), job_name("load", "uid-load", 2)


def minutes_ago(n: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled(fake: FakeKube, lake: Path, **spec: Any) -> None:
    ready(fake, lake)
    ij = fake.put(INGESTION_JOBS, ij_obj(**spec))
    ij["metadata"]["creationTimestamp"] = minutes_ago(5)


async def tick(memo: OperatorMemo, fake: FakeKube) -> kopf.Patch:
    obj = body(fake.obj(INGESTION_JOBS, NS, "load"))
    patch = kopf.Patch()
    await schedule.tick(
        body=obj, memo=memo, patch=patch, spec=obj.spec, status=obj.status, meta=obj.metadata
    )
    return patch


async def test_not_due_only_sets_the_next_time_and_ready(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    scheduled(fake, lake, schedule="0 0 1 1 *")  # once a year
    fake.obj(INGESTION_JOBS, NS, "load")["metadata"]["creationTimestamp"] = minutes_ago(0)
    patch = await tick(memo, fake)
    status = dict(patch["status"])
    assert status["phase"] == "Scheduled"
    assert status["nextScheduleTime"].endswith("-01-01T00:00:00Z")
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"]) == ("Ready", "True")
    assert fake.calls == []


async def test_a_due_run_starts_with_its_schedule_time(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    scheduled(fake, lake, schedule="* * * * *")
    await tick(memo, fake)
    first, second = fake.calls[0], fake.calls[1]
    assert first.verb == "patch_status"
    assert first.body["currentRun"]["jobName"] == RUN1
    assert first.body["lastScheduleTime"]  # together with the run's identity
    assert (second.verb, second.name) == ("create_job", RUN1)
    # several minutes were missed since creation: only the latest runs, and an Event says so
    assert [e.reason for e in events] == ["MissedSchedulesCaughtUp", "JobCreated"]


async def test_suspended_starts_nothing(fake: FakeKube, memo: OperatorMemo, lake: Path) -> None:
    scheduled(fake, lake, schedule="* * * * *", suspend=True)
    patch = await tick(memo, fake)
    assert patch["status"]["phase"] == "Suspended"
    assert fake.writes("create_job") == []


async def test_an_invalid_schedule_fails_once(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    scheduled(fake, lake, schedule="61 * * * *")
    patch = await tick(memo, fake)
    assert patch["status"]["phase"] == "Failed"
    assert patch["status"]["conditions"][0]["reason"] == "InvalidSchedule"
    assert "minute field: 61 is out of range 0-59" in patch["status"]["conditions"][0]["message"]
    assert [(e.type, e.reason) for e in events] == [("Warning", "InvalidSchedule")]
    fake.obj(INGESTION_JOBS, NS, "load")["status"] = dict(patch["status"])
    assert dict(await tick(memo, fake)) == {}  # already Failed: no second patch or Event
    assert len(events) == 1


async def test_forbid_leaves_the_active_run_alone(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    scheduled(fake, lake, schedule="* * * * *", concurrencyPolicy="Forbid")
    await tick(memo, fake)
    ij = fake.obj(INGESTION_JOBS, NS, "load")
    ij["status"]["lastScheduleTime"] = minutes_ago(3)  # the next minute came while it runs
    await tick(memo, fake)
    assert [c.name for c in fake.writes("create_job")] == [RUN1]
    assert fake.writes("delete_job") == []


async def test_replace_records_the_old_run_then_starts_the_next(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    scheduled(fake, lake, schedule="* * * * *", concurrencyPolicy="Replace")
    await tick(memo, fake)
    ij = fake.obj(INGESTION_JOBS, NS, "load")
    ij["status"]["lastScheduleTime"] = minutes_ago(3)
    await tick(memo, fake)
    assert [c.name for c in fake.writes("delete_job")] == [RUN1]
    assert [c.name for c in fake.writes("create_job")] == [RUN1, RUN2]
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert (status["runs"], status["failedRuns"]) == (1, 1)
    assert status["lastRun"]["jobName"] == RUN1
    assert status["lastRun"]["error"]["reason"] == "Replaced"
    assert status["currentRun"]["jobName"] == RUN2
    assert status["currentRun"]["number"] == 2

    def first(verb: str, match: Any) -> int:
        return next(i for i, c in enumerate(fake.calls) if c.verb == verb and match(c))

    deleted = first("delete_job", lambda c: c.name == RUN1)
    recorded = first("patch_status", lambda c: (c.body.get("lastRun") or {}).get("jobName") == RUN1)
    started = first("patch_status", lambda c: (c.body.get("currentRun") or {}).get("number") == 2)
    created = first("create_job", lambda c: c.name == RUN2)
    # delete the old Job, record it, and only then write the new run and create its Job
    assert deleted < recorded < started < created
