"""The Job retry settings of lakeop.core.runs.failure against the real job controller.

``retry_fields`` promises per-share retries for Indexed Jobs, no retries for bad input (exit
code 2), and ``classify_failure`` promises a precise reason from what the controller and the
pod leave behind. Here both meet a real kube-apiserver and kube-controller-manager: plain
``sh`` pods stand in for ``lakeop ingest`` so only the Kubernetes side is under test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lakeop.core.runs.failure import classify_failure, retry_fields
from lakeop.core.runs.jobs import job_name
from lakeop.core.runs.rerun import run_identity

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _apply_job(
    kube: Any, namespace: str, name: str, script: str, *, shares: int, backoff: int, **extra: Any
) -> None:
    spec: dict[str, Any] = {
        **retry_fields(shares, backoff),
        **extra,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "ingest",
                        "image": "lakeop:dev",
                        "command": ["sh", "-c", script],
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                    }
                ],
            }
        },
    }
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(job))


def _finished(kube: Any, namespace: str, name: str) -> dict[str, Any] | None:
    job = client.BatchV1Api(kube.api).read_namespaced_job(name, namespace).to_dict()
    for cond in job["status"].get("conditions") or []:
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return dict(job["status"])
    return None


def _conditions(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: c.get(k) for k in ("type", "status", "reason", "message")} for c in status["conditions"]
    ]


def _last_message(kube: Any, namespace: str, job: str) -> str | None:
    core = client.CoreV1Api(kube.api)
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").to_dict()
    items = sorted(pods["items"], key=lambda p: p["metadata"]["creation_timestamp"])
    for pod in reversed(items):
        for cs in pod["status"].get("container_statuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"])
    return None


def test_indexed_share_retries_alone(
    kube: Any, namespace: str, wait_for: Callable[..., Any], tmp_path: Path
) -> None:
    marker = tmp_path / "failed-once"
    script = (
        f'if [ "$JOB_COMPLETION_INDEX" = 1 ] && [ ! -e {marker} ]; then touch {marker}; exit 1; fi'
        f'; echo "share $JOB_COMPLETION_INDEX" >> {tmp_path}/done'
    )
    _apply_job(kube, namespace, "shares", script, shares=3, backoff=2)
    status = wait_for(lambda: _finished(kube, namespace, "shares"), 120, "Indexed Job to finish")
    assert [c["type"] for c in status["conditions"] if c["status"] == "True"][-1] == "Complete"
    assert status["succeeded"] == 3
    assert status["failed"] == 1  # only share 1 ran twice
    done = sorted((tmp_path / "done").read_text().split("\n")[:-1])
    assert done == ["share 0", "share 1", "share 2"]


def test_bad_input_fails_at_once_with_pod_reason(
    kube: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    summary = {"runId": "r1", "error": {"reason": "SourceNotFound", "message": "nothing at /in"}}
    _apply_job(kube, namespace, "bad", f"echo '{json.dumps(summary)}'; exit 2", shares=1, backoff=3)
    status = wait_for(lambda: _finished(kube, namespace, "bad"), 90, "Job to fail")
    assert status["failed"] == 1  # no retries for exit code 2
    conditions = _conditions(status)
    assert any(c["reason"] == "PodFailurePolicy" for c in conditions)
    message = _last_message(kube, namespace, "bad")
    failure = classify_failure(conditions, message)
    assert (failure.reason, failure.message) == ("SourceNotFound", "nothing at /in")


def test_bad_input_in_one_share_fails_the_run(
    kube: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    script = 'if [ "$JOB_COMPLETION_INDEX" = 0 ]; then exit 2; fi; sleep 60'
    _apply_job(kube, namespace, "badshare", script, shares=2, backoff=3)
    status = wait_for(lambda: _finished(kube, namespace, "badshare"), 90, "Job to fail")
    conditions = _conditions(status)
    assert status["failed"] >= 1
    failure = classify_failure(conditions, None)
    assert failure.reason == "BackoffLimitExceeded", conditions


def test_retries_used_up_keep_the_pod_reason(
    kube: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    summary = {"runId": "r1", "error": {"reason": "StorageUnavailable", "message": "s3 down"}}
    _apply_job(
        kube, namespace, "flaky", f"echo '{json.dumps(summary)}'; exit 1", shares=1, backoff=1
    )
    status = wait_for(lambda: _finished(kube, namespace, "flaky"), 120, "Job to fail")
    assert status["failed"] == 2  # the first try and one retry
    conditions = _conditions(status)
    assert any(c["reason"] == "BackoffLimitExceeded" for c in conditions)
    failure = classify_failure(conditions, _last_message(kube, namespace, "flaky"))
    assert (failure.reason, failure.message) == ("StorageUnavailable", "s3 down")
    assert classify_failure(conditions, None).reason == "BackoffLimitExceeded"


def test_deadline_exceeded(kube: Any, namespace: str, wait_for: Callable[..., Any]) -> None:
    _apply_job(kube, namespace, "slow", "sleep 120", shares=1, backoff=3, activeDeadlineSeconds=3)
    status = wait_for(lambda: _finished(kube, namespace, "slow"), 90, "Job to hit its deadline")
    failure = classify_failure(_conditions(status), None)
    assert failure.reason == "DeadlineExceeded"
    assert "deadline" in failure.message


def test_indexed_job_names_are_accepted(kube: Any, namespace: str) -> None:
    """The API server refuses an Indexed Job whose ``<name>-<index>`` is not a DNS label."""
    ij_name = "events.daily." + "x" * 60
    identity = run_identity("4f1e9c2a-77f0-4c2d-9d0e-3b5b8c0a1d22", 7)
    plain = job_name(ij_name, identity.uid, identity.number)
    cases = ((plain, 1, True), (plain, 3, False), (identity.job_name(ij_name, 3), 3, True))
    for name, shares, ok in cases:
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                **retry_fields(shares, 1),
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "ingest", "image": "x", "command": ["true"]}],
                    }
                },
            },
        }
        proc = kube.kubectl(
            "create", "-n", namespace, "--dry-run=server", "-f", "-",
            input=json.dumps(job), check=False,
        )  # fmt: skip
        assert (proc.returncode == 0) is ok, (name, shares, proc.stderr)
        if not ok:
            assert "invalid DNS label" in proc.stderr
