"""Failure reasons from the Job's conditions and the pod's run summary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lakeop.core.runs.failure import (
    MAX_MESSAGE,
    Failure,
    classify_failure,
    oom_killed_error,
    pod_error,
    retry_fields,
)


def failed(reason: str, message: str = "") -> list[dict[str, Any]]:
    """Job conditions as the job controller leaves them (FailureTarget first, then Failed)."""
    return [
        {"type": "FailureTarget", "status": "True", "reason": reason, "message": message},
        {"type": "Failed", "status": "True", "reason": reason, "message": message},
    ]


def summary(reason: str | None, message: str = "boom") -> dict[str, Any]:
    error = None if reason is None else {"reason": reason, "message": message}
    return {"runId": "abc", "rowsWritten": 0, "error": error}


BACKOFF = failed("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE = failed("DeadlineExceeded", "Job was active longer than specified deadline")
POLICY = failed("PodFailurePolicy", "Container ingest for pod ns/p failed with exit code 2")


@pytest.mark.parametrize(
    ("conditions", "pod", "cancelled", "reason", "message"),
    [
        (BACKOFF, summary("InvalidRecords", "row 7: user_id is null"), False,
         "InvalidRecords", "row 7: user_id is null"),
        (BACKOFF, summary("SourceNotFound", "no file matches /in/*.csv"), False,
         "SourceNotFound", "no file matches /in/*.csv"),
        (BACKOFF, summary("StorageUnavailable", "s3: connection refused"), False,
         "StorageUnavailable", "s3: connection refused"),
        (BACKOFF, None, False,
         "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        (BACKOFF, summary(None), False,
         "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        # a vague pod reason does not hide the Job's account, but its message is kept
        (BACKOFF, summary("Error", "Traceback ... KeyError"), False,
         "BackoffLimitExceeded", "Traceback ... KeyError"),
        # the deadline wins over a (possibly stale) pod error, which is still shown
        (DEADLINE, summary("StorageUnavailable", "timeout"), False,
         "DeadlineExceeded", "Job was active longer than specified deadline; last error: timeout"),
        (DEADLINE, None, False,
         "DeadlineExceeded", "Job was active longer than specified deadline"),
        (failed("DeadlineExceeded"), None, False,
         "DeadlineExceeded", "the run exceeded activeDeadlineSeconds"),
        # podFailurePolicy fails the Job at once: the pod's reason is the precise one
        (POLICY, summary("InvalidRecords", "bad row"), False, "InvalidRecords", "bad row"),
        (POLICY, None, False,
         "Failed", "Container ingest for pod ns/p failed with exit code 2"),
        # Indexed Jobs with backoffLimitPerIndex
        (failed("FailedIndexes", "Job has failed indexes"), None, False,
         "BackoffLimitExceeded", "Job has failed indexes"),
        (failed("MaxFailedIndexesExceeded", "too many"), None, False,
         "BackoffLimitExceeded", "too many"),
        # other engine reasons pass through: they are already precise
        (BACKOFF, summary("InvalidSpec", "spec.source.uri: bad"), False,
         "InvalidSpec", "spec.source.uri: bad"),
        # a reason that is not a CamelCase word is ignored
        (BACKOFF, summary("not a reason", "x"), False, "BackoffLimitExceeded", "x"),
        # cancel beats everything
        (DEADLINE, summary("InvalidRecords"), True,
         "Cancelled", "cancelled: spec.suspend with lakeop.io/cancel"),
        (None, None, True, "Cancelled", "cancelled: spec.suspend with lakeop.io/cancel"),
        # the Job is gone (deleted under us) and no summary
        (None, None, False, "Failed", "the run failed without an error message"),
        # conditions not (yet) final are ignored
        ([{"type": "Failed", "status": "False", "reason": "DeadlineExceeded"}],
         summary("SourceNotFound", "gone"), False, "SourceNotFound", "gone"),
    ],
)  # fmt: skip
def test_classify_failure(
    conditions: list[dict[str, Any]] | None,
    pod: dict[str, Any] | None,
    cancelled: bool,
    reason: str,
    message: str,
) -> None:
    assert classify_failure(conditions, pod, cancelled=cancelled) == Failure(reason, message)


def test_raw_termination_messages_are_parsed() -> None:
    raw = json.dumps(summary("SourceNotFound", "nothing at s3://x/"))
    assert classify_failure(BACKOFF, raw).reason == "SourceNotFound"
    log_tail = "INFO reading\nWARNING retrying\n" + raw + "\n"
    assert classify_failure(BACKOFF, log_tail).message == "nothing at s3://x/"
    assert classify_failure(BACKOFF, "Killed\n{truncated").reason == "BackoffLimitExceeded"
    assert pod_error("") == {}
    assert pod_error('{"error": "just a string"}') == {}


def test_long_messages_are_shortened_and_flattened() -> None:
    failure = classify_failure(BACKOFF, summary("InvalidRecords", "line\n" * 1000))
    assert len(failure.message) == MAX_MESSAGE
    assert failure.message.endswith("...")
    assert "\n" not in failure.message
    assert failure.to_dict() == {"reason": "InvalidRecords", "message": failure.message}


def test_retry_fields_single_pod() -> None:
    fields = retry_fields(1, 3)
    assert fields["backoffLimit"] == 3
    assert fields["completions"] == fields["parallelism"] == 1
    assert "completionMode" not in fields
    rules = fields["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert rules[1] == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "ingest", "operator": "In", "values": [2]},
    }


def test_retry_fields_indexed() -> None:
    fields = retry_fields(3, 2)
    assert fields["completionMode"] == "Indexed"
    assert fields["completions"] == fields["parallelism"] == 3
    assert fields["backoffLimitPerIndex"] == 2
    assert fields["maxFailedIndexes"] == 0
    assert fields["backoffLimit"] == 2_147_483_647
    assert fields["podFailurePolicy"]["rules"][1]["action"] == "FailIndex"


@pytest.mark.parametrize(("parallelism", "backoff"), [(0, 3), (2, -1)])
def test_retry_fields_checks_input(parallelism: int, backoff: int) -> None:
    with pytest.raises(ValueError, match="must be >= "):
        retry_fields(parallelism, backoff)


def _pod(reason: str, *, last: bool = False, limit: str | None = "64Mi") -> dict[str, object]:
    terminated = {"terminated": {"reason": reason, "exitCode": 137}}
    status = {"name": "ingest", "state": {} if last else terminated}
    if last:
        status["lastState"] = terminated
    resources = {"limits": {"memory": limit}} if limit else {}
    return {
        "metadata": {"name": "ij-1-abc"},
        "spec": {"containers": [{"name": "ingest", "resources": resources}]},
        "status": {"containerStatuses": [status]},
    }


def test_oom_killed_pod_names_container_pod_and_limit() -> None:
    error = oom_killed_error(_pod("OOMKilled"))
    assert error is not None
    assert error["reason"] == "OOMKilled"
    assert "container ingest of pod ij-1-abc" in error["message"]
    assert "(64Mi)" in error["message"]
    # classify_failure keeps that reason over the Job controller's BackoffLimitExceeded
    failure = classify_failure(
        [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        {"error": error},
    )
    assert failure.reason == "OOMKilled"


def test_oom_killed_in_last_state_and_without_limit() -> None:
    error = oom_killed_error(_pod("OOMKilled", last=True, limit=None))
    assert error is not None and "the memory available to it" in error["message"]


def test_other_terminations_are_not_oom() -> None:
    assert oom_killed_error(_pod("Error")) is None
    assert oom_killed_error(_pod("Completed")) is None
    assert oom_killed_error({"metadata": {"name": "p"}}) is None
