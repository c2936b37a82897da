"""Scheduled IngestionJobs: a timer asks :func:`~lakeop.core.runs.schedule.scheduled_tick`.

The decision (due now? missed times? overlap under ``concurrencyPolicy``?) is pure and lives
in the core; this timer only applies it: it posts the decision's Event, deletes the Jobs a
``Replace`` supersedes, and starts the run through :func:`~lakeop.handlers.ingestionjob.start_run`
with ``lastScheduleTime`` written together with ``currentRun`` — before the Job exists, so a
restart cannot start the same schedule time twice. A run superseded under ``Replace`` is
recorded (failed, reason ``Replaced``) before the new one starts, so the run numbers and
counters stay exact. Under ``Allow`` the new run starts beside the active ones: they move to
``status.activeRuns`` and are recorded as their Jobs end (:mod:`lakeop.handlers.runs`); the
engine's input claims keep overlapping runs from taking the same source files or rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from lakeop.core.constants import (
    GROUP,
    INGESTION_JOBS,
    VERSION,
    ConditionType,
    JobPhase,
    Reason,
)
from lakeop.core.runs import status as st
from lakeop.core.runs.admission import check_ingestion_job
from lakeop.core.runs.conditions import Condition, set_conditions
from lakeop.core.runs.failure import Failure, FailureReason
from lakeop.core.runs.mounts import LocationNotMountedError
from lakeop.core.runs.schedule import (
    ConcurrencyPolicy,
    parse_concurrency_policy,
    scheduled_tick,
)
from lakeop.errors import InvalidSpecError
from lakeop.handlers._common import conditions, generation, kopf_errors, now
from lakeop.handlers.ingestionjob import start_run
from lakeop.handlers.run_gates import NotStartableError
from lakeop.handlers.runs import in_flight, record_result_locked, run_lock
from lakeop.kube.client import Kube, job_outcome
from lakeop.memo import OperatorMemo

TICK_SECONDS = 5.0


@kopf.timer(
    GROUP, VERSION, INGESTION_JOBS, interval=TICK_SECONDS, initial_delay=1.0, field="spec.schedule"
)
async def tick(
    *,
    body: kopf.Body,
    memo: OperatorMemo,
    patch: kopf.Patch,
    status: kopf.Status,
    meta: kopf.Meta,
    **_: Any,
) -> None:
    kube = memo.kube
    current = status.get("currentRun") or {}
    # read together, before any await: kopf keeps a timer's body live, and recording a replaced
    # run below updates status.runs while ``current`` still names that run
    running = in_flight(body)
    number = int(status.get("runs") or 0) + 1 + len(running)
    active = [str(r["jobName"]) for r in running]
    gen, stamp = generation(body), now()
    try:
        # InvalidScheduleError is an InvalidSpecError; the webhook's and validate's rules
        spec = check_ingestion_job(body, lake_mount_path=memo.settings.lake_mount_path)
        decision = scheduled_tick(
            spec, status, str(meta.get("creationTimestamp") or ""), datetime.now(UTC), active
        )
    except InvalidSpecError as exc:
        if status.get("phase") != JobPhase.FAILED.value:
            _not_started(patch, body, JobPhase.FAILED, exc.reason, str(exc))
            kopf.event(body, type="Warning", reason=exc.reason, message=str(exc))
        return
    if decision.event is not None:
        kind, reason, message = decision.event
        kopf.event(body, type=kind, reason=reason, message=message)
    overlap = parse_concurrency_policy(spec.concurrency_policy) is ConcurrencyPolicy.ALLOW
    allowed = not current or bool(decision.to_delete) or overlap
    if not (decision.start and allowed):
        update: dict[str, Any] = {k: v for k, v in decision.status.items() if status.get(k) != v}
        phase = JobPhase.SUSPENDED if spec.suspend else JobPhase.SCHEDULED
        if not current and status.get("phase") != phase.value:
            reason = Reason.SUSPENDED if spec.suspend else Reason.RECONCILED
            # Waiting for the schedule is the healthy state of a scheduled job: Ready=True.
            ready = Condition(
                ConditionType.READY, phase is JobPhase.SCHEDULED, reason, decision.message
            )
            update["phase"], update["observedGeneration"] = phase.value, gen
            update["conditions"] = set_conditions(
                conditions(body), [ready], now=stamp, generation=gen
            )
        if update:
            patch.status.update(update)
        return
    with kopf_errors(memo, "IngestionJob"):
        namespace, name = str(meta["namespace"]), str(meta["name"])
        # under the run lock from deletion to record: the deleted Job's event must not record
        # the replaced run first (as "disappeared")
        async with run_lock(memo, namespace, name):
            for job in decision.to_delete:
                found = await kube.get_job(namespace, job)
                if found is None or job_outcome(found)[0] is None:
                    await kube.delete_job(namespace, job)
                # else it ended on its own a moment ago: recorded below with its own outcome
            replaced = f"replaced by the run for {decision.status.get('lastScheduleTime')}"
            for job in active if decision.to_delete else []:  # record them before the next
                await record_result_locked(
                    memo,
                    namespace,
                    name,
                    job=job,
                    gone=Failure(
                        FailureReason.REPLACED, f"{replaced} (concurrencyPolicy: Replace)"
                    ),
                )
            if decision.to_delete and not await _recorded(kube, namespace, name, active):
                return  # a replaced run's pods still stop: the next tick records, then starts
        extra: dict[str, Any] = dict(decision.status)
        if current and not decision.to_delete:  # Allow: the active runs go on beside the new
            extra["activeRuns"] = [{k: v for k, v in r.items() if k != "shards"} for r in running]
        try:
            await start_run(body, spec, memo, number=number, extra_status=extra)
        except NotStartableError as wait:
            _not_started(patch, body, wait.phase, wait.reason, str(wait))
        except LocationNotMountedError as exc:  # the next tick tries again, after a fix
            _not_started(patch, body, JobPhase.SCHEDULED, exc.reason, str(exc))
        except InvalidSpecError as exc:  # a bad plan, or a Job the API server refused (422):
            # this schedule time is spent, not retried every tick
            _not_started(patch, body, JobPhase.FAILED, exc.reason, str(exc), extra=decision.status)
            kopf.event(body, type="Warning", reason=exc.reason, message=str(exc))


def _not_started(
    patch: kopf.Patch,
    body: kopf.Body,
    phase: JobPhase,
    reason: str,
    message: str,
    *,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Why the scheduled run did not start, in the phase and Ready condition (and ``extra``)."""
    patch.status.update(dict(extra or {}))
    patch.status.update(
        st.job_waiting(
            conditions(body),
            generation=generation(body),
            now=now(),
            phase=phase,
            reason=reason,
            message=message,
        )
    )


async def _recorded(kube: Kube, namespace: str, name: str, jobs: list[str]) -> bool:
    """True once none of ``jobs`` is still a run in flight of IngestionJob ``name``.

    A replaced run whose pods have not stopped yet is not recorded (its claim cannot be
    released while a pod might still commit); starting the next run then would overwrite
    ``currentRun`` and lose the replaced run's record and release for good.
    """
    ij = await kube.get_object(INGESTION_JOBS, namespace, name)
    return ij is None or not any(r.get("jobName") in jobs for r in in_flight(ij))
