"""The run summary's wire format: what the pod writes is what the operator reads, key by key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lakeop.core.runs.summary import Failure, RunSummary, ShareReport

#: a share's summary exactly as ``lakeop ingest`` of the first release wrote it
POD = {
    "runId": "4f1e9c2a1d22",
    "table": "events",
    "schemaVersion": 3,
    "rowsRead": 12,
    "rowsWritten": 10,
    "rowsRejected": 2,
    "bytesWritten": 4096,
    "filesWritten": 1,
    "partitions": ["day=2026-04-01"],
    "partitionsTruncated": False,
    "seconds": 1.25,
    "startTime": "2026-04-01T00:00:00Z",
    "completionTime": "2026-04-01T00:00:01Z",
    "error": None,
    "ignoredColumns": ["surprise"],
    "shard": {"index": 1, "count": 3, "committed": False},
}


def test_a_pod_summary_round_trips_key_for_key() -> None:
    summary = RunSummary.from_dict(POD)
    assert summary.rows_written == 10
    assert summary.shard == ShareReport(1, 3, committed=False)
    assert summary.to_dict() == POD
    assert list(summary.to_dict()) == list(POD)  # the order the engine writes, too
    assert json.loads(summary.to_json()) == POD


def test_keys_a_pod_did_not_write_stay_out() -> None:
    """An older pod's summary lacks keys: they must not appear (as zeros) in status.lastRun."""
    summary = RunSummary.from_dict({"runId": "r", "rowsWritten": 5, "error": None})
    assert summary.rows_read is None and summary.schema_version is None
    assert summary.to_dict() == {"runId": "r", "rowsWritten": 5, "error": None}


def test_an_error_only_summary() -> None:
    """What ``lakeop ingest`` writes when it cannot build the plan, and what the operator
    makes of an OOM-killed pod: an error and nothing else."""
    oom = RunSummary(error=Failure("OOMKilled", "container ingest was OOMKilled"))
    assert oom.failed
    assert oom.to_dict() == {
        "error": {"reason": "OOMKilled", "message": "container ingest was OOMKilled"}
    }
    assert RunSummary.from_text(oom.to_json()) is None  # no runId: not a run's summary
    assert RunSummary.from_text(oom.to_json(), key="error") == oom


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rowsWritten", "10"),
        ("rowsWritten", True),
        ("seconds", "fast"),
        ("partitions", "day=1"),
        ("partitionsTruncated", "no"),
        ("startTime", 17),
        ("error", "just a string"),
        ("shard", {"index": "1"}),
    ],
)
def test_a_field_of_the_wrong_type_counts_as_absent(field: str, value: Any) -> None:
    """A summary is a report: one odd field must not keep the operator from recording."""
    summary = RunSummary.from_dict({"runId": "r", field: value})
    out = summary.to_dict()
    assert out["runId"] == "r"
    assert field not in out or out[field] is None


def test_from_text_takes_the_last_summary_line_of_a_log() -> None:
    first = json.dumps({**POD, "rowsWritten": 1})
    log = f"reading\n{first}\n{{truncated\nWARNING retrying\n{json.dumps(POD)}\n"
    assert RunSummary.from_text(log) == RunSummary.from_dict(POD)
    assert RunSummary.from_text(json.dumps(POD, indent=2)) == RunSummary.from_dict(POD)
    assert RunSummary.from_text("Killed") is None
    assert RunSummary.from_text(None) is None


def test_with_error_replaces_the_error_only() -> None:
    summary = RunSummary.from_dict(POD).with_error(Failure("Replaced", "by the next run"))
    assert summary.failed and summary.rows_written == 10
    assert summary.to_dict()["error"] == {"reason": "Replaced", "message": "by the next run"}
