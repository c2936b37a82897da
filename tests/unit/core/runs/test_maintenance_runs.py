"""When a Table's maintenance runs, what its pod's summary says, what status.maintenance shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lakeop.core.runs import maintenance_runs as mr
from lakeop.core.runs.cron import InvalidScheduleError
from lakeop.core.runs.maintenance import Action, maintenance_run_id
from lakeop.core.runs.status import TableFacts, table_status
from lakeop.core.runs.summary import Failure
from lakeop.core.spec.maintenance import MaintenanceSpec

NOW = datetime(2026, 12, 2, 3, 0, 30, tzinfo=UTC)
CREATED = "2026-12-02T02:50:00Z"
NIGHTLY = MaintenanceSpec(schedule="0 3 * * *")


def tick(
    spec: MaintenanceSpec, status: dict[str, object] | None = None, token: str | None = None
) -> mr.MaintenanceTick:
    annotations = {"lakeop.io/compact": token} if token is not None else {}
    return mr.maintenance_tick(
        spec, status, annotations, table_uid="uid-t", created=CREATED, now=NOW
    )


def test_a_due_schedule_time_starts_a_run_named_by_that_time() -> None:
    d = tick(NIGHTLY)
    assert d.start and d.trigger == "schedule 2026-12-02T03:00:00Z"
    assert d.run_id == maintenance_run_id("uid-t", Action.COMPACT, "schedule:2026-12-02T03:00:00Z")
    assert d.status == {
        "nextCompactionTime": "2026-12-03T03:00:00Z",
        "lastScheduleTime": "2026-12-02T03:00:00Z",
    }


def test_a_time_already_run_is_not_run_again() -> None:
    status = {
        "lastScheduleTime": "2026-12-02T03:00:00Z",
        "nextCompactionTime": "2026-12-03T03:00:00Z",
    }
    d = tick(NIGHTLY, status)
    assert not d.start and d.status == {}


def test_the_schedule_follows_its_time_zone() -> None:
    d = tick(MaintenanceSpec(schedule="0 3 * * *", time_zone="Europe/Berlin"))
    assert not d.start  # 03:00 in Berlin was 02:00 UTC, before the table existed
    assert d.status == {"nextCompactionTime": "2026-12-03T02:00:00Z"}


def test_missed_times_run_once_with_an_event() -> None:
    spec = MaintenanceSpec(schedule="*/5 * * * *")
    d = tick(spec, {"lastScheduleTime": "2026-12-02T02:50:00Z"})
    assert d.start and d.trigger == "schedule 2026-12-02T03:00:00Z"
    assert d.event is not None and d.event[1] == "MissedSchedulesCaughtUp"


def test_each_new_token_runs_once() -> None:
    d = tick(MaintenanceSpec(), token="t1")
    assert d.start and d.trigger == "annotation lakeop.io/compact=t1"
    assert d.status == {"lastCompactToken": "t1"}
    assert d.run_id == maintenance_run_id("uid-t", Action.COMPACT, "token:t1")
    assert not tick(MaintenanceSpec(), {"lastCompactToken": "t1"}, token="t1").start
    assert tick(MaintenanceSpec(), {"lastCompactToken": "t1"}, token="t2").start
    assert not tick(MaintenanceSpec(), token="  ").start


def test_nothing_starts_beside_a_run_in_flight() -> None:
    status = {"currentRun": {"runId": "compact-1"}}
    d = tick(NIGHTLY, status, token="t1")
    assert not d.start
    assert d.status == {"nextCompactionTime": "2026-12-03T03:00:00Z"}  # the due time waits


def test_a_token_goes_first_and_the_due_time_stays_due() -> None:
    d = tick(NIGHTLY, token="t1")
    assert d.trigger == "annotation lakeop.io/compact=t1" and "lastScheduleTime" not in d.status
    after = tick(NIGHTLY, {"lastCompactToken": "t1"}, token="t1")
    assert after.start and after.trigger == "schedule 2026-12-02T03:00:00Z"


def test_a_removed_schedule_clears_the_next_time() -> None:
    d = tick(MaintenanceSpec(), {"nextCompactionTime": "2026-12-03T03:00:00Z"})
    assert not d.start and d.status == {"nextCompactionTime": None}


@pytest.mark.parametrize(
    "spec",
    [
        MaintenanceSpec(schedule="0 25 * * *"),
        MaintenanceSpec(schedule="@daily", time_zone="Mars/X"),
    ],
)
def test_bad_schedules_are_refused(spec: MaintenanceSpec) -> None:
    with pytest.raises(InvalidScheduleError):
        tick(spec)


SUMMARY = {
    "table": "events",
    "action": "compact",
    "runId": "compact-1",
    "partitions": 2,
    "filesBefore": 12,
    "filesAfter": 2,
    "bytesBefore": 12000,
    "bytesAfter": 9000,
    "rows": 600,
    "seconds": 1.5,
    "commit": 7,
    "error": None,
    "expiry": {"filesDeleted": 12, "bytesFreed": 12000, "seconds": 0.5, "error": None},
}


def test_the_report_reads_both_parts_from_the_last_json_line() -> None:
    text = "progress...\n" + json.dumps(SUMMARY) + "\n"
    report = mr.MaintenanceReport.from_text(text)
    assert report is not None and not report.failed
    assert report.compaction == mr.CompactionReport(2, 12, 2, 12000, 9000, 600, 1.5)
    assert report.expiry == mr.ExpiryReport(12, 12000, 0.5)
    assert report.seconds == 2.0


def test_a_failed_compaction_reports_only_its_error() -> None:
    text = json.dumps({"action": "compact", "runId": "c", "error": {"reason": "X", "message": "m"}})
    report = mr.MaintenanceReport.from_text(text)
    assert report is not None and report.compaction is None and report.expiry is None
    assert report.error == Failure("X", "m")
    assert mr.MaintenanceReport.from_text("no json here") is None
    assert mr.MaintenanceReport.from_text(None) is None


def test_a_recorded_run_fills_status_maintenance() -> None:
    report = mr.MaintenanceReport.from_dict(SUMMARY)
    current = {
        "runId": "compact-1",
        "jobName": "events-compact-1",
        "trigger": "t",
        "startTime": "s",
    }
    patch = mr.run_recorded(current, report, None, now="2026-12-02T03:01:00Z")
    assert patch["currentRun"] is None
    assert patch["lastCompaction"] == {
        "time": "2026-12-02T03:01:00Z",
        "partitions": 2,
        "filesBefore": 12,
        "filesAfter": 2,
        "bytesBefore": 12000,
        "bytesAfter": 9000,
    }
    assert patch["lastExpiry"] == {
        "time": "2026-12-02T03:01:00Z",
        "filesDeleted": 12,
        "bytesFreed": 12000,
    }
    assert patch["lastRun"]["error"] is None and patch["lastRun"]["jobName"] == "events-compact-1"


def test_a_failed_run_keeps_the_last_compaction_and_says_why() -> None:
    failure = Failure("OOMKilled", "container ingest was OOMKilled")
    patch = mr.run_recorded({"runId": "r"}, None, failure, now="n")
    assert "lastCompaction" not in patch and "lastExpiry" not in patch
    assert patch["lastRun"]["error"] == {
        "reason": "OOMKilled",
        "message": "container ingest was OOMKilled",
    }


def test_a_refusal_is_written_once() -> None:
    failure = Failure("InvalidSchedule", "bad")
    first = mr.refusal_recorded({}, {"nextCompactionTime": None}, failure, now="n")
    assert first == {"lastRun": {"completionTime": "n", "error": failure.to_dict()}}
    assert mr.refusal_recorded(first, {"nextCompactionTime": None}, failure, now="m") is None


def test_the_table_status_writer_merges_maintenance_key_by_key() -> None:
    previous = {"maintenance": {"lastCompactToken": "t1", "nextCompactionTime": "x"}}
    facts = TableFacts(maintenance={"lastCompactToken": "t1", "currentRun": {"runId": "r"}})
    patch = table_status(previous, facts, generation=1, now="n")
    assert patch == {"maintenance": {"currentRun": {"runId": "r"}}}  # changed keys only
    same = TableFacts(maintenance={"lastCompactToken": "t1", "nextCompactionTime": "x"})
    assert table_status(previous, same, generation=1, now="n") == {}
