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
    GROUP,
    INGESTION_JOBS,
    LABEL_INGESTION_JOB,
    LABEL_RUN,
    TABLES,
    VERSION,
    EventType,
    JobPhase,
    Reason,
)
from lakeop.core.runs import status as st
from lakeop.core.runs.failure import Failure, FailureReason, classify_failure, oom_killed_error
from lakeop.core.runs.rerun import SuspendAction, suspend_action
from lakeop.core.spec.resources import parse_table
from lakeop.handlers import _lake, history, shards
from lakeop.handlers._common import as_body, kopf_errors, kube_of, metrics_of, now
from lakeop.handlers.table import RESYNC_SECONDS, storage_env
from lakeop.kube.client import Kube, job_outcome
from lakeop.metrics import Metrics

#: a run's Job missing this soon after the run started may just not be created yet
START_GRACE_SECONDS = 30.0
#: how long recording a failed run waits for its pods to stop before trying again later
POD_STOP_SECONDS = 45.0


def run_lock(memo: Any, namespace: str, name: str) -> asyncio.Lock:
    """The lock under which IngestionJob ``namespace/name``'s in-flight run is recorded.

    Whoever ends a run on purpose (deleting its Job under ``concurrencyPolicy: Replace``) holds
    it from the deletion until the run is recorded, so the Job's DELETED event, waiting on the
    same lock, finds the run already recorded and cannot record it a second time, as "gone".
    """
    locks: dict[str, asyncio.Lock] = memo.setdefault("run_locks", {})
    return locks.setdefault(f"{namespace}/{name}", asyncio.Lock())


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_INGESTION_JOB: kopf.PRESENT})
async def job_event(
    body: kopf.Body, memo: Any, namespace: str | None, type: str | None, **_: Any
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


@kopf.timer(
    GROUP,
    VERSION,
    INGESTION_JOBS,
    interval=RESYNC_SECONDS,
    initial_delay=RESYNC_SECONDS / 3,
    field="status.currentRun",
)
async def follow(memo: Any, name: str, namespace: str | None, **_: Any) -> None:
    with kopf_errors(memo, "IngestionJob"):
        await record_result(memo, namespace or "default", name)


async def record_result(
    memo: Any, namespace: str, name: str, *, job: str | None = None, gone: Failure | None = None
) -> bool:
    """Record the in-flight run of IngestionJob ``name`` if its Job has ended; True if done.

    ``job``: record only if the in-flight run is that Job's. ``gone``: why the run's Job was
    deleted, when the caller deleted it (``concurrencyPolicy: Replace``); such a caller already
    holds :func:`run_lock` and calls :func:`record_result_locked`.
    """
    async with run_lock(memo, namespace, name):
        return await record_result_locked(memo, namespace, name, job=job, gone=gone)


async def record_result_locked(
    memo: Any, namespace: str, name: str, *, job: str | None = None, gone: Failure | None = None
) -> bool:
    """:func:`record_result` for a caller that holds :func:`run_lock`."""
    kube = kube_of(memo)
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
    try:
        started = datetime.fromisoformat(str(current.get("startTime")))
    except ValueError:
        return float("inf")
    started = started if started.tzinfo else started.replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds()


def _why_gone(ij: Mapping[str, Any], job_name: str, gone: Failure | None) -> Failure:
    annotations = (ij.get("metadata") or {}).get("annotations") or {}
    suspended = bool((ij.get("spec") or {}).get("suspend"))
    if suspend_action(suspended, annotations, True) is SuspendAction.CANCEL:
        return classify_failure(None, None, cancelled=True)
    return gone or Failure(FailureReason.FAILED, f"Job {job_name} disappeared before it ended")


async def _record(
    memo: Any,
    kube: Kube,
    ij: Mapping[str, Any],
    current: Mapping[str, Any],
    gone: Failure | None,
) -> bool:
    namespace, name = str(ij["metadata"]["namespace"]), str(ij["metadata"]["name"])
    job = await kube.get_job(namespace, str(current["jobName"]))
    reason = Reason.FAILED.value
    gone_failure: Failure | None = None
    if job is None:  # deleted: cancelled, replaced, or gone for a reason we do not know
        succeeded, message = False, ""
        gone_failure = _why_gone(ij, str(current["jobName"]), gone)
        if gone_failure.reason == FailureReason.FAILED and _age(current) < START_GRACE_SECONDS:
            return False  # start_run writes currentRun just before it creates the Job
    else:
        outcome, message = job_outcome(job)
        if outcome is None:
            if _is_current(ij, current):
                await shards.report_progress(kube, ij, current, job)  # scaled-out runs only
            return False
        succeeded = outcome
    count = shards.indexed_count(job)
    if count:  # a scaled-out run: every pod reported its own share
        summary = await shards.run_summary(kube, namespace, name, int(current["number"]), count)
    else:
        summary = await _summary(kube, namespace, name, int(current["number"]))
    if not succeeded or (summary and summary.get("error")):  # the most precise reason
        failure = gone_failure or classify_failure(
            ((job or {}).get("status") or {}).get("conditions"), summary
        )
        succeeded, reason, message = False, failure.reason, failure.message
        summary = {**(summary or {}), "error": failure.to_dict()}
        if not await _release(kube, ij, current):
            return False  # its pods are still stopping: recorded on a later event or tick
        committed = await _committed(kube, ij, current)
        if committed is not None:  # killed or failing after its commit point: it succeeded
            succeeded, message, summary = True, "", committed
    await _finish(
        memo,
        kube=kube,
        ij=ij,
        current=current,
        summary=summary,
        succeeded=succeeded,
        message=message,
        reason=reason,
    )
    return True


async def _release(kube: Kube, ij: Mapping[str, Any], run: Mapping[str, Any]) -> bool:
    """Free the inputs a failed run claimed, once none of its pods can still commit.

    False while a pod of the run is still active (a deleted Job's pods stop in the background).
    Done before the run is recorded, so an operator restart in between releases again
    (idempotent) instead of never: a claim left behind would keep its inputs from every later
    run.
    """
    namespace, name = str(ij["metadata"]["namespace"]), str(ij["metadata"]["name"])
    selector = f"{LABEL_INGESTION_JOB}={name},{LABEL_RUN}={run['number']}"
    deadline = asyncio.get_running_loop().time() + POD_STOP_SECONDS
    while any(_active(p) for p in await kube.list_pods(namespace, selector)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(1.0)
    storage = await _table_storage(kube, namespace, str((ij.get("spec") or {}).get("tableRef")))
    if storage is not None:
        await _lake.release_claims(*storage, name, str(run["runId"]))
    return True


async def _committed(
    kube: Kube, ij: Mapping[str, Any], run: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The summary of ``run`` from its commit, when it has one although it failed."""
    namespace = str(ij["metadata"]["namespace"])
    table = str((ij.get("spec") or {}).get("tableRef"))
    storage = await _table_storage(kube, namespace, table)
    if storage is None:
        return None
    return await _lake.commit_of(*storage, str(run["runId"]), table)


def _active(pod: Mapping[str, Any]) -> bool:
    return str((pod.get("status") or {}).get("phase")) not in ("Succeeded", "Failed")


async def _summary(kube: Kube, namespace: str, name: str, number: int) -> dict[str, Any] | None:
    """The run summary from the run's last pod: termination message, else the log tail."""
    selector = f"{LABEL_INGESTION_JOB}={name},{LABEL_RUN}={number}"
    pods = await kube.list_pods(namespace, selector)
    pods.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    for pod in reversed(pods):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            summary = st.parse_run_summary(terminated.get("message"))
            if summary:
                return summary
        summary = st.parse_run_summary(await kube.pod_log(namespace, str(pod["metadata"]["name"])))
        if summary:
            return summary
    for pod in reversed(pods):
        oom = oom_killed_error(pod)
        if oom is not None:
            return {"error": oom}
    return None


async def _finish(
    memo: Any,
    *,
    kube: Kube,
    ij: Mapping[str, Any],
    current: Mapping[str, Any],
    summary: Mapping[str, Any] | None,
    succeeded: bool,
    message: str,
    reason: str,
) -> None:
    meta, status, spec = ij["metadata"], ij.get("status") or {}, ij.get("spec") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    if summary and summary.get("error"):
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
    if summary and summary.get("shards"):
        run["shards"] = list(summary["shards"])
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
            schedule=spec.get("schedule"),
        )
        if others:  # older overlapped runs still in flight: the newest becomes current
            new_status.update(
                phase=JobPhase.RUNNING.value,
                currentRun=dict(others[-1]),
                activeRuns=others[:-1] or None,
                jobName=others[-1].get("jobName"),
            )
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
    await _refresh_table(kube, namespace, str(spec.get("tableRef")))
    metrics = metrics_of(memo)
    if metrics is not None:
        _observe(metrics, namespace, str(spec.get("tableRef")), succeeded, run)
    await history.prune(kube, ij)  # successful/failedRunsHistoryLimit


async def _table_storage(
    kube: Kube, namespace: str, table_name: str
) -> tuple[str, dict[str, str]] | None:
    """The table's resolved location and storage settings; None while it has none."""
    table = await kube.get_object(TABLES, namespace, table_name)
    location = ((table or {}).get("status") or {}).get("location")
    if table is None or not location:
        return None
    return str(location), await storage_env(kube, parse_table(table))


async def _refresh_table(kube: Kube, namespace: str, table_name: str) -> None:
    storage = await _table_storage(kube, namespace, table_name)
    if storage is None:
        return
    totals = await _lake.totals(*storage)
    update = {k: totals[k] for k in st.TOTAL_KEYS if totals.get(k) is not None}
    if update:
        await kube.patch_status(TABLES, namespace, table_name, update)


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
