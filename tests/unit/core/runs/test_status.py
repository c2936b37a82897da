"""Status documents of Table, SchemaVersion and IngestionJob."""

from __future__ import annotations

import json

from lakeop.core.constants import JobPhase, Reason, SchemaPhase
from lakeop.core.runs.status import (
    job_finished,
    job_running,
    job_waiting,
    last_run,
    parse_run_summary,
    schema_version_status,
    table_ready,
)

NOW = "2026-01-01T00:00:00Z"
SUMMARY = {
    "runId": "abc",
    "table": "t",
    "schemaVersion": 2,
    "rowsRead": 10,
    "rowsWritten": 9,
    "rowsRejected": 1,
    "bytesWritten": 100,
    "filesWritten": 2,
    "partitions": ["day=1"],
    "partitionsTruncated": False,
    "seconds": 1.5,
    "startTime": "2026-01-01T00:00:00Z",
    "completionTime": "2026-01-01T00:00:02Z",
    "error": None,
}


def test_table_ready_carries_location_totals_and_generation() -> None:
    status = table_ready(
        None,
        generation=4,
        now=NOW,
        location="file:///lake/ns/t",
        totals={"rows": 5, "files": 1, "bytes": 10, "partitions": 1, "lastCommitTime": None},
    )
    assert status["observedGeneration"] == 4
    assert status["rows"] == 5
    assert "lastCommitTime" not in status
    assert status["conditions"][0]["status"] == "True"
    assert status["conditions"][0]["reason"] == "Reconciled"


def test_schema_version_status_rejected_is_not_ready() -> None:
    status = schema_version_status(
        None,
        generation=1,
        now=NOW,
        phase=SchemaPhase.REJECTED,
        reason=Reason.INCOMPATIBLE,
        message="bad",
        compatibility={"mode": "BACKWARD", "checkedAgainst": [1], "violations": []},
        diff={"added": []},
    )
    assert status["phase"] == "Rejected"
    assert status["conditions"][0]["status"] == "False"
    assert status["conditions"][0]["reason"] == "Incompatible"
    accepted = schema_version_status(
        status["conditions"],
        generation=1,
        now=NOW,
        phase=SchemaPhase.ACCEPTED,
        reason=Reason.ACCEPTED,
        message="ok",
    )
    assert accepted["conditions"][0]["status"] == "True"
    assert "diff" not in accepted


def test_waiting_and_running() -> None:
    pending = job_waiting(
        None,
        generation=1,
        now=NOW,
        phase=JobPhase.PENDING,
        reason=Reason.TABLE_NOT_FOUND,
        message="no table",
    )
    assert pending["phase"] == "Pending"
    assert pending["conditions"][0]["reason"] == "TableNotFound"
    running = job_running(None, generation=1, now=NOW, job_name="j-1", message="go")
    assert (running["phase"], running["jobName"]) == ("Running", "j-1")


def test_parse_run_summary_from_termination_message_or_log_tail() -> None:
    assert parse_run_summary(json.dumps(SUMMARY)) == SUMMARY
    log = "starting\n{not json\n" + json.dumps(SUMMARY) + "\n"
    assert parse_run_summary(log) == SUMMARY
    assert parse_run_summary("") is None
    assert parse_run_summary('{"other": 1}') is None


def test_last_run_from_summary_and_without_one() -> None:
    run = last_run(
        SUMMARY,
        number=2,
        run_id="abc",
        job_name="j",
        schema_version=2,
        start_time=NOW,
        completion_time=NOW,
        succeeded=True,
    )
    assert run["rowsWritten"] == 9
    assert run["completionTime"] == "2026-01-01T00:00:02Z"
    assert run["error"] is None
    failed = last_run(
        None,
        number=1,
        run_id="r",
        job_name="j",
        schema_version=1,
        start_time=None,
        completion_time=NOW,
        succeeded=False,
        failure_message="BackoffLimitExceeded",
    )
    assert failed["error"] == {"reason": "Failed", "message": "BackoffLimitExceeded"}
    assert failed["startTime"] == NOW


def test_job_finished_phases_and_conditions() -> None:
    run = {**SUMMARY, "jobName": "j", "number": 1}
    counts = {"runs": 1, "succeededRuns": 1, "failedRuns": 0}
    done = job_finished(
        None, generation=1, now=NOW, succeeded=True, run=run, counts=counts, schedule=None
    )
    assert done["phase"] == "Succeeded"
    assert done["currentRun"] is None
    assert {c["type"]: c["status"] for c in done["conditions"]} == {
        "Ready": "True",
        "Complete": "True",
        "Failed": "False",
    }
    bad = {**run, "error": {"reason": "InvalidRecords", "message": "row 3"}}
    failed = job_finished(
        None, generation=1, now=NOW, succeeded=False, run=bad, counts=counts, schedule=None
    )
    assert failed["phase"] == "Failed"
    assert failed["conditions"][0]["reason"] == "InvalidRecords"
    scheduled = job_finished(
        None, generation=1, now=NOW, succeeded=True, run=run, counts=counts, schedule="0 2 * * *"
    )
    assert scheduled["phase"] == "Scheduled"
