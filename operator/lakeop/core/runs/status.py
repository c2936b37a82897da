"""Status documents of the three kinds, computed from facts passed in.

Handlers gather facts (totals, a verdict, a Job's state, the clock) and call one function
here to get the complete ``status`` patch: ``observedGeneration``, the whole ``conditions``
list and the kind's own fields. Keeping this pure means the exact status a user sees is
unit-tested, and the handlers stay a few lines long.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakeop.core.constants import ConditionType, JobPhase, Reason, SchemaPhase
from lakeop.core.runs.conditions import Condition, set_conditions
from lakeop.core.runs.summary import RunSummary

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
TOTAL_KEYS = (
    "rows",
    "files",
    "bytes",
    "partitions",
    "lastCommitTime",
    "snapshot",
    "metadataLocation",
    "smallFiles",
)


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


@dataclass(frozen=True)
class TableFacts:
    """What one writer of a Table's status knows; ``None`` leaves that part as it is.

    ``location``: the table is prepared there (Ready). ``refusal``: ``(reason, message)`` why
    it is not Ready. ``totals``: committed totals from the commit log.
    """

    location: str | None = None
    refusal: tuple[str, str] | None = None
    totals: Mapping[str, Any] | None = None
    current_schema_version: int | None = None
    table_format: str | None = None  # spec.format, shown as status.format
    #: keys of ``status.maintenance`` to set (None removes one), e.g. a recorded run's
    maintenance: Mapping[str, Any] | None = None


def table_status(
    previous: Mapping[str, Any], facts: TableFacts, *, generation: int, now: str
) -> dict[str, Any]:
    """The patch that brings a Table's ``status`` in line with ``facts``: changed keys only.

    The one computation behind every write of a Table's status (reconcile, the refresh
    timer, a recorded run, an accepted SchemaVersion), so an unchanged table gets no patch.
    """
    full: dict[str, Any] = {}
    conds = previous.get("conditions")
    if facts.refusal is not None:
        reason, message = facts.refusal
        full.update(
            not_ready(conds, generation=generation, now=now, reason=reason, message=message)
        )
    elif facts.location is not None:
        full.update(
            table_ready(conds, generation=generation, now=now, location=facts.location, totals={})
        )
    totals = facts.totals or {}
    full.update({k: totals[k] for k in TOTAL_KEYS if totals.get(k) is not None})
    if facts.current_schema_version is not None:
        full["currentSchemaVersion"] = facts.current_schema_version
    if facts.table_format is not None:
        full["format"] = facts.table_format
    if facts.maintenance is not None:  # merged key by key by the API server (merge patch)
        before = previous.get("maintenance") or {}
        changed = {k: v for k, v in facts.maintenance.items() if before.get(k) != v}
        if changed:
            full["maintenance"] = changed
    return {k: v for k, v in full.items() if previous.get(k) != v}


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


def last_run(
    summary: RunSummary | None,
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
    if summary is not None:
        reported = summary.to_dict()  # the keys the pod wrote, camelCase as in status
        run.update({k: reported[k] for k in LAST_RUN_KEYS if k in reported})
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
