"""A scaled-out run's summary and per-share lines from its pods' share summaries."""

from __future__ import annotations

from typing import Any

from lakeop.core.runs.shard_status import ShareAttempt, combine, shard_lines


def share(index: int, rows: int, *, error: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "runId": "r1",
        "table": "events",
        "schemaVersion": 2,
        "rowsRead": rows + 1,
        "rowsWritten": rows,
        "rowsRejected": 1,
        "bytesWritten": rows * 10,
        "filesWritten": 1 if rows else 0,
        "partitions": [f"day=2026-04-0{index + 1}"] if rows else [],
        "seconds": 1.5 + index,
        "startTime": f"2026-04-01T00:00:0{index}Z",
        "completionTime": f"2026-04-01T00:01:0{index}Z",
        "error": error,
        "shard": {"index": index, "count": 3, "committed": index == 2},
    }


def test_all_done_sums_the_shares() -> None:
    attempts = {i: ShareAttempt(i, "Succeeded", share(i, 100 * (i + 1))) for i in range(3)}
    out = combine(attempts, 3)
    assert out is not None
    assert out["rowsWritten"] == 600
    assert out["rowsRead"] == 603
    assert out["rowsRejected"] == 3
    assert out["bytesWritten"] == 6000
    assert out["filesWritten"] == 3
    assert out["partitions"] == ["day=2026-04-01", "day=2026-04-02", "day=2026-04-03"]
    assert out["startTime"] == "2026-04-01T00:00:00Z"
    assert out["completionTime"] == "2026-04-01T00:01:02Z"
    assert out["seconds"] == 3.5
    assert out["error"] is None
    assert out["runId"] == "r1"
    assert out["shards"] == [
        {"index": 0, "state": "Done", "rowsWritten": 100},
        {"index": 1, "state": "Done", "rowsWritten": 200},
        {"index": 2, "state": "Done", "rowsWritten": 300},
    ]


def test_a_failed_share_is_the_run_error_and_is_not_counted() -> None:
    err = {"reason": "StorageError", "message": "write denied"}
    attempts = {
        0: ShareAttempt(0, "Succeeded", share(0, 100)),
        1: ShareAttempt(1, "Failed", share(1, 0, error=err)),
    }
    out = combine(attempts, 3)
    assert out is not None
    assert out["rowsWritten"] == 100
    assert out["error"] == {"reason": "StorageError", "message": "share 1: write denied"}
    assert [line["state"] for line in out["shards"]] == ["Done", "Failed", "Pending"]


def test_lines_while_running_and_nothing_reported() -> None:
    attempts = {0: ShareAttempt(0, "Running"), 2: ShareAttempt(2, "Pending")}
    assert shard_lines(attempts, 3) == [
        {"index": 0, "state": "Running"},
        {"index": 1, "state": "Pending"},
        {"index": 2, "state": "Pending"},
    ]
    assert combine(attempts, 3) is None


def test_many_partitions_are_truncated() -> None:
    big = share(0, 10)
    big["partitions"] = [f"k={i:04d}" for i in range(500)]
    out = combine({0: ShareAttempt(0, "Succeeded", big)}, 1)
    assert out is not None
    assert len(out["partitions"]) == 100
    assert out["partitionsTruncated"] is True
