"""Follow the runs' Jobs and record each result exactly once.

A Job event (and, as a safety net after restarts or missed events, a timer on every
IngestionJob with a run in flight) calls :func:`record_result`. Under a per-IngestionJob lock
it re-reads the IngestionJob and records only when ``status.currentRun`` still names this
Job: the result goes to ``status.lastRun`` (from the pod's termination message, falling back
to its log), the counters, phase and conditions, the table's totals, an Event and metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from lakeop.core.constants import (
    INGESTION_JOBS,
    LABEL_INGESTION_JOB,
    EventType,
    JobPhase,
    Reason,
)
from lakeop.core.runs import status as st
from lakeop.core.runs.failure import Failure, FailureReason, classify_failure
from lakeop.core.runs.rerun import SuspendAction, suspend_action
from lakeop.core.runs.summary import RunSummary
from lakeop.core.spec.resources import IngestionJobSpec, parse_ingestion_job
from lakeop.core.timestamps import parse_time
from lakeop.errors import InvalidSpecError, TransientError
from lakeop.handlers import _lake, history, pod_reports, run_progress, shards
from lakeop.handlers._common import as_body, kopf_errors, now
from lakeop.handlers.table_status import write_table_status
from lakeop.handlers.table_storage import table_storage
from lakeop.kube.client import Kube, job_outcome
from lakeop.memo import OperatorMemo
from lakeop.metrics import Metrics

#: a run's Job missing this soon after the run started may just not be created yet
START_GRACE_SECONDS = 30.0
#: how long recording a failed run waits for its pods to stop before trying again later
POD_STOP_SECONDS = 45.0


def run_lock(memo: OperatorMemo, namespace: str, name: str) -> asyncio.Lock:
    """The lock under which IngestionJob ``namespace/name``'s in-flight run is recorded.

    Whoever ends a run on purpose (deleting its Job under ``concurrencyPolicy: Replace``) holds
    it from the deletion until the run is recorded, so the Job's DELETED event, waiting on the
    same lock, finds the run already recorded and cannot record it a second time, as "gone".
    """
    return memo.run_lock(namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_INGESTION_JOB: kopf.PRESENT})
async def job_event(
    body: kopf.Body, memo: OperatorMemo, namespace: str | None, type: str | None, **_: Any
) -> None:
    succeeded, _msg = job_outcome(body)
    if succeeded is None and type != "DELETED":  # a deleted Job (cancel, Replace) ends a run
        return
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    with kopf_errors(memo, "IngestionJob"):  # only for the run this Job carries (not a newer one)
        await record_result(
            memo, namespace or "default", str(labels[LABEL_INGESTION_JOB]), job=str(meta["name"])
        )


async def follow(memo: OperatorMemo, name: str, namespace: str | None, **_: Any) -> None:
    """Timer on IngestionJobs with a run in flight, every ``settings.resync_seconds``
    (registered by :func:`lakeop.handlers.timers.register_timers`)."""
    with kopf_errors(memo, "IngestionJob"):
        await record_result(memo, namespace or "default", name)


async def record_result(
    memo: OperatorMemo,
    namespace: str,
    name: str,
    *,
    job: str | None = None,
    gone: Failure | None = None,
) -> bool:
    """Record the in-flight run of IngestionJob ``name`` if its Job has ended; True if done.

    ``job``: record only if the in-flight run is that Job's. ``gone``: why the run's Job was
    deleted, when the caller deleted it (``concurrencyPolicy: Replace``); such a caller already
    holds :func:`run_lock` and calls :func:`record_result_locked`.
    """
    async with run_lock(memo, namespace, name):
        return await record_result_locked(memo, namespace, name, job=job, gone=gone)


async def record_result_locked(
    memo: OperatorMemo,
    namespace: str,
    name: str,
    *,
    job: str | None = None,
    gone: Failure | None = None,
) -> bool:
    """:func:`record_result` for a caller that holds :func:`run_lock`."""
    kube = memo.kube
    ij = await kube.get_object(INGESTION_JOBS, namespace, name)
    if ij is None:
        return False
    if job is not None:
        run = next((r for r in in_flight(ij) if r.get("jobName") == job), None)
        return run is not None and await _record(memo, kube, ij, run, gone)
    recorded = False
    for run in in_flight(ij):  # the follow timer: every run in flight, oldest first
        fresh = await kube.get_object(INGESTION_JOBS, namespace, name) if recorded else ij
        if fresh is None:
            break
        ij = fresh
        recorded = await _record(memo, kube, ij, run, gone) or recorded
    return recorded


def in_flight(ij: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The IngestionJob's runs in flight, oldest first: ``status.activeRuns`` (runs that a
    newer scheduled run overlapped under ``concurrencyPolicy: Allow``), then ``currentRun``."""
    status = ij.get("status") or {}
    runs = [r for r in status.get("activeRuns") or [] if r.get("jobName")]
    current = status.get("currentRun")
    return [*runs, current] if current else runs


def _is_current(ij: Mapping[str, Any], run: Mapping[str, Any]) -> bool:
    current = (ij.get("status") or {}).get("currentRun") or {}
    return bool(current) and current.get("jobName") == run.get("jobName")


def _age(current: Mapping[str, Any]) -> float:
    """Seconds since the run's ``startTime`` (large when unknown)."""
    started = parse_time(current.get("startTime"))
    if started is None:
        return float("inf")
    return (datetime.now(UTC) - started).total_seconds()


def _spec_of(ij: Mapping[str, Any], retry_seconds: float) -> IngestionJobSpec:
    """The IngestionJob's parsed spec; its run in flight waits to be recorded while the spec
    was edited into one that does not parse (the next start is refused by reconcile)."""
    try:
        return parse_ingestion_job(ij)
    except InvalidSpecError as exc:
        raise TransientError(
            f"{exc}; its run in flight is recorded once the spec is valid again",
            reason=exc.reason,
            delay=retry_seconds,
        ) from exc


def _why_gone(
    ij: Mapping[str, Any], spec: IngestionJobSpec, job_name: str, gone: Failure | None
) -> Failure:
    annotations = (ij.get("metadata") or {}).get("annotations") or {}
    if suspend_action(spec.suspend, annotations, True) is SuspendAction.CANCEL:
        return classify_failure(None, None, cancelled=True)
    return gone or Failure(FailureReason.FAILED, f"Job {job_name} disappeared before it ended")


async def _record(
    memo: OperatorMemo,
    kube: Kube,
    ij: Mapping[str, Any],
    current: Mapping[str, Any],
    gone: Failure | None,
) -> bool:
    spec = _spec_of(ij, memo.settings.resync_seconds)
    namespace, name = spec.namespace, spec.name
    job = await kube.get_job(namespace, str(current["jobName"]))
    reason = Reason.FAILED.value
    gone_failure: Failure | None = None
    if job is None:  # deleted: cancelled, replaced, or gone for a reason we do not know
        succeeded, message = False, ""
        gone_failure = _why_gone(ij, spec, str(current["jobName"]), gone)
        if gone_failure.reason == FailureReason.FAILED and _age(current) < START_GRACE_SECONDS:
            return False  # start_run writes currentRun just before it creates the Job
    else:
        outcome, message = job_outcome(job)
        if outcome is None:
            if _is_current(ij, current):
                if shards.indexed_count(job):
                    await shards.report_progress(kube, ij, current, job)
                else:
                    await run_progress.report_progress(kube, ij, current)
            return False
        succeeded = outcome
    count = shards.indexed_count(job)
    if count:  # a scaled-out run: every pod reported its own share
        summary = await shards.run_summary(kube, namespace, name, int(current["number"]), count)
    else:
        summary = await _summary(kube, namespace, name, int(current["number"]))
    if not succeeded or (summary and summary.failed):  # the most precise reason
        failure = gone_failure or classify_failure(
            ((job or {}).get("status") or {}).get("conditions"), summary
        )
        succeeded, reason, message = False, failure.reason, failure.message
        summary = (summary or RunSummary()).with_error(failure)
        if not await _release(memo, spec, current):
            return False  # its pods are still stopping: recorded on a later event or tick
        committed = await _committed(memo, spec, current)
        if committed is not None:  # killed or failing after its commit point: it succeeded
            succeeded, message, summary = True, "", committed
    await _finish(
        memo,
        kube=kube,
        ij=ij,
        spec=spec,
        current=current,
        summary=summary,
        succeeded=succeeded,
        message=message,
        reason=reason,
    )
    return True


async def _release(memo: OperatorMemo, spec: IngestionJobSpec, run: Mapping[str, Any]) -> bool:
    """Free the inputs a failed run claimed, once none of its pods can still commit.

    False while a pod of the run is still active (a deleted Job's pods stop in the background).
    Done before the run is recorded, so an operator restart in between releases again
    (idempotent) instead of never: a claim left behind would keep its inputs from every later
    run.
    """
    namespace, name = spec.namespace, spec.name
    selector = pod_reports.run_selector(name, run["number"])
    deadline = asyncio.get_running_loop().time() + POD_STOP_SECONDS
    while any(_active(p) for p in await memo.kube.list_pods(namespace, selector)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(1.0)
    storage = await table_storage(memo.kube, memo.settings, namespace, spec.table_ref)
    if storage is not None:
        _table, location, env = storage
        await _lake.release_claims(location, env, name, str(run["runId"]))
    return True


async def _committed(
    memo: OperatorMemo, spec: IngestionJobSpec, run: Mapping[str, Any]
) -> RunSummary | None:
    """The summary of ``run`` from its commit, when it has one although it failed."""
    storage = await table_storage(memo.kube, memo.settings, spec.namespace, spec.table_ref)
    if storage is None:
        return None
    _table, location, env = storage
    return await _lake.commit_of(location, env, str(run["runId"]), spec.table_ref)


def _active(pod: Mapping[str, Any]) -> bool:
    return str((pod.get("status") or {}).get("phase")) not in ("Succeeded", "Failed")


async def _summary(kube: Kube, namespace: str, name: str, number: int) -> RunSummary | None:
    """The run summary from the run's last pod: termination message, else the log tail."""
    selector = pod_reports.run_selector(name, number)
    summary, oom = await pod_reports.last_report(kube, namespace, selector, RunSummary.from_text)
    if summary is None and oom is not None:
        return RunSummary(error=Failure.from_dict(oom))
    return summary


async def _finish(
    memo: OperatorMemo,
    *,
    kube: Kube,
    ij: Mapping[str, Any],
    spec: IngestionJobSpec,
    current: Mapping[str, Any],
    summary: RunSummary | None,
    succeeded: bool,
    message: str,
    reason: str,
) -> None:
    meta, status = ij["metadata"], ij.get("status") or {}
    namespace, name = spec.namespace, spec.name
    if summary and summary.failed:
        succeeded = False
    stamp = now()
    run = st.last_run(
        summary,
        number=int(current["number"]),
        run_id=str(current["runId"]),
        job_name=str(current["jobName"]),
        schema_version=current.get("schemaVersion"),
        start_time=current.get("startTime"),
        completion_time=stamp,
        succeeded=succeeded,
        failure_message=message,
        failure_reason=reason,
    )
    if summary and summary.shards:
        run["shards"] = [dict(line) for line in summary.shards]
    counts = {
        "runs": int(status.get("runs") or 0) + 1,
        "succeededRuns": int(status.get("succeededRuns") or 0) + (1 if succeeded else 0),
        "failedRuns": int(status.get("failedRuns") or 0) + (0 if succeeded else 1),
    }
    others = [r for r in in_flight(ij) if r.get("jobName") != current.get("jobName")]
    if not _is_current(ij, current):  # an overlapped run (Allow): the newer one goes on
        new_status: dict[str, Any] = {"lastRun": run, **counts, "activeRuns": others[:-1] or None}
    else:
        new_status = st.job_finished(
            status.get("conditions"),
            generation=int(meta.get("generation") or 1),
            now=stamp,
            succeeded=succeeded,
            run=run,
            counts=counts,
            schedule=spec.schedule,
        )
        if others:  # older overlapped runs still in flight: the newest becomes current
            new_status.update(
                phase=JobPhase.RUNNING.value,
                currentRun=dict(others[-1]),
                activeRuns=others[:-1] or None,
                jobName=others[-1].get("jobName"),
            )
    if succeeded:  # kept across failures: the staleness alert's clock
        new_status["lastSuccessfulTime"] = run.get("completionTime") or stamp
    await kube.patch_status(INGESTION_JOBS, namespace, name, new_status)
    rows = run.get("rowsWritten", 0)
    if succeeded:
        kopf.event(
            as_body(ij),
            type=EventType.NORMAL.value,
            reason=Reason.SUCCEEDED.value,
            message=f"run {current['number']} wrote {rows} rows "
            f"({run.get('filesWritten', 0)} files)",
        )
    else:
        err = run.get("error") or {}
        kopf.event(
            as_body(ij),
            type=EventType.WARNING.value,
            reason=str(err.get("reason") or Reason.FAILED.value),
            message=f"run {current['number']} failed: {err.get('message')}",
        )
    await _refresh_table(memo, namespace, spec.table_ref)
    _observe(memo.metrics, namespace, spec.table_ref, succeeded, run)
    await history.prune(kube, spec, str(meta.get("uid")))  # successful/failedRunsHistoryLimit


async def _refresh_table(memo: OperatorMemo, namespace: str, table_name: str) -> None:
    storage = await table_storage(memo.kube, memo.settings, namespace, table_name)
    if storage is None:
        return
    table, location, env = storage
    totals = await _lake.totals(location, env)
    await write_table_status(memo.kube, table, st.TableFacts(totals=totals))


def _observe(
    metrics: Metrics, namespace: str, table: str, ok: bool, run: Mapping[str, Any]
) -> None:
    metrics.run_finished(
        namespace,
        table,
        succeeded=ok,
        seconds=float(run.get("seconds") or 0.0),
        rows_written=int(run.get("rowsWritten") or 0),
        bytes_written=int(run.get("bytesWritten") or 0),
        records_rejected=int(run.get("rowsRejected") or 0),
    )
