"""Status documents of the three kinds, computed from facts passed in.

Handlers gather facts (totals, a verdict, a Job's state, the clock) and call one function
here to get the complete ``status`` patch: ``observedGeneration``, the whole ``conditions``
list and the kind's own fields. Keeping this pure means the exact status a user sees is
unit-tested, and the handlers stay a few lines long.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from lakeop.core.constants import ConditionType, JobPhase, Reason, SchemaPhase
from lakeop.core.runs.conditions import Condition, set_conditions

Conds = Sequence[Mapping[str, Any]] | None

LAST_RUN_KEYS = (
    "runId",
    "schemaVersion",
    "rowsRead",
    "rowsWritten",
    "rowsRejected",
    "bytesWritten",
    "filesWritten",
    "partitions",
    "partitionsTruncated",
    "seconds",
    "startTime",
    "completionTime",
    "error",
)
TOTAL_KEYS = ("rows", "files", "bytes", "partitions", "lastCommitTime", "snapshot", "smallFiles")


def table_ready(
    previous: Conds, *, generation: int, now: str, location: str, totals: Mapping[str, Any]
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "location": location,
        "conditions": set_conditions(
            previous,
            [Condition(ConditionType.READY, True, Reason.RECONCILED, f"table at {location}")],
            now=now,
            generation=generation,
        ),
    }
    status.update({k: totals[k] for k in TOTAL_KEYS if totals.get(k) is not None})
    return status


def not_ready(
    previous: Conds, *, generation: int, now: str, reason: str, message: str
) -> dict[str, Any]:
    """A status saying the object cannot proceed (kind-independent)."""
    return {
        "observedGeneration": generation,
        "conditions": set_conditions(
            previous,
            [Condition(ConditionType.READY, False, reason, message)],
            now=now,
            generation=generation,
        ),
    }


def schema_version_status(
    previous: Conds,
    *,
    generation: int,
    now: str,
    phase: SchemaPhase,
    reason: str,
    message: str,
    compatibility: Mapping[str, Any] | None = None,
    diff: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = not_ready(
        previous, generation=generation, now=now, reason=reason, message=message
    )
    if phase is SchemaPhase.ACCEPTED:
        status["conditions"] = set_conditions(
            previous,
            [Condition(ConditionType.READY, True, reason, message)],
            now=now,
            generation=generation,
        )
    status["phase"] = phase.value
    if compatibility is not None:
        status["compatibility"] = dict(compatibility)
    if diff is not None:
        status["diff"] = dict(diff)
    return status


def job_waiting(
    previous: Conds, *, generation: int, now: str, phase: JobPhase, reason: str, message: str
) -> dict[str, Any]:
    status = not_ready(previous, generation=generation, now=now, reason=reason, message=message)
    status["phase"] = phase.value
    return status


def job_running(
    previous: Conds, *, generation: int, now: str, job_name: str, message: str
) -> dict[str, Any]:
    status = job_waiting(
        previous,
        generation=generation,
        now=now,
        phase=JobPhase.RUNNING,
        reason=Reason.RUNNING,
        message=message,
    )
    status["jobName"] = job_name
    return status


def parse_run_summary(text: str | None) -> dict[str, Any] | None:
    """The run summary a pod left (termination message or last JSON line of its log)."""
    if not text:
        return None
    for raw in reversed(text.strip().splitlines()):
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "runId" in data:
            return data
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "runId" in data else None


def last_run(
    summary: Mapping[str, Any] | None,
    *,
    number: int,
    run_id: str,
    job_name: str,
    schema_version: int | None,
    start_time: str | None,
    completion_time: str,
    succeeded: bool,
    failure_message: str = "",
    failure_reason: str = Reason.FAILED.value,
) -> dict[str, Any]:
    """``status.lastRun`` from the pod's summary, or from what the Job said when there is none."""
    run: dict[str, Any] = {"number": number, "runId": run_id, "jobName": job_name}
    if summary:
        run.update({k: summary[k] for k in LAST_RUN_KEYS if k in summary})
    run.setdefault("schemaVersion", schema_version)
    run.setdefault("startTime", start_time)
    run.setdefault("completionTime", completion_time)
    if not run.get("completionTime"):
        run["completionTime"] = completion_time
    if not run.get("startTime"):
        run["startTime"] = start_time or completion_time
    if not succeeded and not run.get("error"):
        run["error"] = {"reason": failure_reason, "message": failure_message or "run failed"}
    run.setdefault("error", None)
    return {k: v for k, v in run.items() if v is not None or k == "error"}


def job_finished(
    previous: Conds,
    *,
    generation: int,
    now: str,
    succeeded: bool,
    run: Mapping[str, Any],
    counts: Mapping[str, int],
    schedule: str | None,
) -> dict[str, Any]:
    """Status after a run ended; a scheduled job goes back to Scheduled, a one-off stays put."""
    rows = run.get("rowsWritten", 0)
    if succeeded:
        ready = Condition(ConditionType.READY, True, Reason.SUCCEEDED, f"run wrote {rows} rows")
        done = Condition(ConditionType.COMPLETE, True, Reason.SUCCEEDED, f"run {run['runId']}")
        failed = Condition(ConditionType.FAILED, False, Reason.SUCCEEDED, "")
    else:
        err = run.get("error") or {}
        reason = str(err.get("reason") or Reason.FAILED.value)
        message = str(err.get("message") or "run failed")
        ready = Condition(ConditionType.READY, False, reason, message)
        done = Condition(ConditionType.COMPLETE, False, reason, message)
        failed = Condition(ConditionType.FAILED, True, reason, message)
    phase = JobPhase.SUCCEEDED if succeeded else JobPhase.FAILED
    if schedule:
        phase = JobPhase.SCHEDULED
    return {
        "observedGeneration": generation,
        "phase": phase.value,
        "jobName": run.get("jobName"),
        "currentRun": None,
        "lastRun": dict(run),
        **dict(counts),
        "conditions": set_conditions(
            previous, [ready, done, failed], now=now, generation=generation
        ),
    }
