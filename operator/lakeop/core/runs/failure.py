"""Why a run failed, in one precise word, from what the Job and its pod left behind.

Two witnesses disagree in useful ways. The Job controller knows *how* the run ended
(``BackoffLimitExceeded`` after the last retry, ``DeadlineExceeded`` when
``activeDeadlineSeconds`` ran out, ``PodFailurePolicy`` when a rule failed the Job at once,
``FailedIndexes`` / ``MaxFailedIndexesExceeded`` for Indexed Jobs with per-index retries); the
pod's run summary (its termination message) knows *what* went wrong inside
(``error.reason``: ``InvalidRecords``, ``SourceNotFound``, ``StorageUnavailable``...).
:func:`classify_failure` combines them with a fixed precedence, so ``status.lastRun.error`` and
the Failed condition say the most specific thing that is true:

1. the operator cancelled the run (``suspend`` + ``lakeop.io/cancel``): ``Cancelled``;
2. the deadline ran out: ``DeadlineExceeded`` (a pod's error may be stale from an earlier try);
3. the pod reported a reason: that reason (the engine's reasons are CamelCase words);
4. the Job's retries were used up: ``BackoffLimitExceeded``;
5. anything else: ``Failed`` with whatever message there is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

#: status messages are for people; keep them short enough for ``kubectl describe``
MAX_MESSAGE = 1024
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
# pod reasons too vague to beat the Job controller's account of the failure
_VAGUE = frozenset({"Error", "Failed", "Unavailable"})


class FailureReason(StrEnum):
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    INVALID_RECORDS = "InvalidRecords"
    SOURCE_NOT_FOUND = "SourceNotFound"
    STORAGE_UNAVAILABLE = "StorageUnavailable"
    OOM_KILLED = "OOMKilled"  # the kubelet killed the container over its memory limit
    CANCELLED = "Cancelled"
    REPLACED = "Replaced"  # deleted for a newer scheduled run (concurrencyPolicy: Replace)
    FAILED = "Failed"  # no better word is known


# Job controller reasons on the Failed condition -> ours
_JOB_REASONS = {
    "BackoffLimitExceeded": FailureReason.BACKOFF_LIMIT_EXCEEDED,
    "FailedIndexes": FailureReason.BACKOFF_LIMIT_EXCEEDED,
    "MaxFailedIndexesExceeded": FailureReason.BACKOFF_LIMIT_EXCEEDED,
    "DeadlineExceeded": FailureReason.DEADLINE_EXCEEDED,
}


@dataclass(frozen=True)
class Failure:
    reason: str  # a FailureReason value, or the pod's own CamelCase reason
    message: str

    def to_dict(self) -> dict[str, str]:
        """The ``error`` object of ``status.lastRun`` and of the run summary."""
        return {"reason": self.reason, "message": self.message}


def job_failed_condition(conditions: Sequence[Mapping[str, Any]] | None) -> Mapping[str, Any]:
    """The Job's ``Failed`` condition with status True, or an empty mapping."""
    for cond in conditions or ():
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return cond
    return {}


def pod_error(summary: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    """``error`` of a run summary (parsed, or a termination message / log tail to parse)."""
    if isinstance(summary, str):
        summary = _parse(summary)
    error = (summary or {}).get("error")
    return error if isinstance(error, Mapping) else {}


def oom_killed_error(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """A run-summary ``error`` for a pod whose container the kubelet OOM-killed, else None.

    An OOM-killed container leaves no summary of its own (SIGKILL), so this is what the
    run's failure can say instead: which container, and the memory limit it went over.
    """
    limits = {
        str(c.get("name")): ((c.get("resources") or {}).get("limits") or {}).get("memory")
        for c in (pod.get("spec") or {}).get("containers") or []
    }
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        terminated = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if (terminated or {}).get("reason") != FailureReason.OOM_KILLED.value:
            continue
        name = str(cs.get("name"))
        limit = limits.get(name)
        over = f"its memory limit ({limit})" if limit else "the memory available to it"
        pod_name = (pod.get("metadata") or {}).get("name")
        return {
            "reason": FailureReason.OOM_KILLED.value,
            "message": f"container {name} of pod {pod_name} was OOMKilled: it used more than "
            f"{over}; raise spec.resources.limits.memory",
        }
    return None


def _parse(text: str) -> Mapping[str, Any] | None:
    text = text.strip()
    for candidate in (text, *(line.strip() for line in reversed(text.splitlines()))):
        if not candidate.startswith("{"):
            continue
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and "error" in data:
            return data
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def classify_failure(
    job_conditions: Sequence[Mapping[str, Any]] | None,
    summary: Mapping[str, Any] | str | None,
    *,
    cancelled: bool = False,
) -> Failure:
    """The run's failure reason and last error message (see the module docstring's order).

    ``job_conditions`` is the Job's ``status.conditions`` (None if the Job is gone);
    ``summary`` is the last pod's run summary or its raw termination message.
    """
    job_cond = job_failed_condition(job_conditions)
    job_reason = _JOB_REASONS.get(str(job_cond.get("reason") or ""))
    job_message = str(job_cond.get("message") or "").strip()
    error = pod_error(summary)
    pod_reason = str(error.get("reason") or "")
    pod_message = str(error.get("message") or "").strip()
    if not _CAMEL.match(pod_reason) or pod_reason in _VAGUE:
        pod_reason = ""

    if cancelled:
        return Failure(FailureReason.CANCELLED, "cancelled: spec.suspend with lakeop.io/cancel")
    if job_reason is FailureReason.DEADLINE_EXCEEDED:
        message = job_message or "the run exceeded activeDeadlineSeconds"
        if pod_message:
            message = f"{message}; last error: {pod_message}"
        return Failure(job_reason, _short(message))
    if pod_reason:
        return Failure(pod_reason, _short(pod_message or job_message or pod_reason))
    if job_reason is not None:
        message = pod_message or job_message or "the run's retries (backoffLimit) are used up"
        return Failure(job_reason, _short(message))
    message = pod_message or job_message or "the run failed without an error message"
    return Failure(FailureReason.FAILED, _short(message))


# --------------------------------------------------------------------- Job retry settings

#: ``lakeop ingest`` exit code for bad input: retrying cannot help
EXIT_BAD_INPUT = 2
#: what Kubernetes uses for ``backoffLimit`` when ``backoffLimitPerIndex`` is set
UNLIMITED_BACKOFF = 2_147_483_647


def retry_fields(parallelism: int, backoff_limit: int, container: str = "ingest") -> dict[str, Any]:
    """Job spec fields for how a run retries, to merge over the built Job's ``spec``.

    One pod: ``backoffLimit`` retries of the whole run. N pods (Indexed Job): each share has
    its own ``backoffLimitPerIndex`` retries, and the first share to use them up fails the run
    at once (``maxFailedIndexes: 0``: the run cannot commit without it). Either way, exit code
    2 (bad input) fails the run (or the share) without retries, and pods evicted or pre-empted
    by Kubernetes (``DisruptionTarget``) are retried without counting against the limit.
    """
    if parallelism < 1:
        raise ValueError(f"parallelism must be >= 1, got {parallelism}")
    if backoff_limit < 0:
        raise ValueError(f"backoffLimit must be >= 0, got {backoff_limit}")
    rules: list[dict[str, Any]] = [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {
            "action": "FailJob" if parallelism == 1 else "FailIndex",
            "onExitCodes": {
                "containerName": container,
                "operator": "In",
                "values": [EXIT_BAD_INPUT],
            },
        },
    ]
    fields: dict[str, Any] = {
        "completions": parallelism,
        "parallelism": parallelism,
        "podFailurePolicy": {"rules": rules},
    }
    if parallelism == 1:
        fields["backoffLimit"] = backoff_limit
    else:
        fields.update(
            completionMode="Indexed",
            backoffLimit=UNLIMITED_BACKOFF,
            backoffLimitPerIndex=backoff_limit,
            maxFailedIndexes=0,
        )
    return fields
