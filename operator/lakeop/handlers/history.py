"""Keep a bounded history of an IngestionJob's finished run Jobs.

After a run is recorded, :func:`prune` deletes the IngestionJob's finished Jobs beyond
``spec.successfulRunsHistoryLimit`` (default 3) and ``spec.failedRunsHistoryLimit`` (default 1),
oldest first, as the CronJob controller does. Which ones is decided by the pure
:func:`lakeop.core.runs.schedule.runs_to_prune`; this module only reads the Jobs and deletes. Jobs
still running are never touched, and only Jobs owned by this very IngestionJob (same uid) are
considered, so a re-created IngestionJob of the same name cannot prune what it does not own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lakeop.core.constants import LABEL_INGESTION_JOB
from lakeop.core.runs.schedule import (
    DEFAULT_FAILED_RUNS_HISTORY_LIMIT,
    DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT,
    FinishedRun,
    runs_to_prune,
)
from lakeop.kube.client import Kube, job_outcome


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _finished_at(job: Mapping[str, Any]) -> datetime:
    """When the Job ended: completionTime, else its final condition's transition time."""
    status, meta = job.get("status") or {}, job.get("metadata") or {}
    stamps = [status.get("completionTime")]
    stamps += [
        c.get("lastTransitionTime")
        for c in status.get("conditions") or []
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
    ]
    stamps.append(meta.get("creationTimestamp"))
    for stamp in stamps:
        moment = _moment(stamp)
        if moment is not None:
            return moment
    return datetime.min.replace(tzinfo=UTC)


def finished_runs(jobs: list[dict[str, Any]], namespace: str, uid: str) -> list[FinishedRun]:
    """The finished Jobs among ``jobs`` that the IngestionJob with ``uid`` owns."""
    runs: list[FinishedRun] = []
    for job in jobs:
        meta = job.get("metadata") or {}
        owners = {str(o.get("uid")) for o in meta.get("ownerReferences") or []}
        if meta.get("namespace") != namespace or uid not in owners:
            continue
        succeeded, _message = job_outcome(job)
        if succeeded is not None:
            runs.append(FinishedRun(str(meta["name"]), succeeded, _finished_at(job)))
    return runs


async def prune(kube: Kube, ij: Mapping[str, Any]) -> list[str]:
    """Delete the IngestionJob's finished Jobs beyond its history limits; returns their names."""
    meta, spec = ij.get("metadata") or {}, ij.get("spec") or {}
    namespace, name, uid = str(meta["namespace"]), str(meta["name"]), str(meta.get("uid"))
    jobs = await kube.list_jobs(f"{LABEL_INGESTION_JOB}={name}")
    doomed = runs_to_prune(
        finished_runs(jobs, namespace, uid),
        spec.get("successfulRunsHistoryLimit", DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT),
        spec.get("failedRunsHistoryLimit", DEFAULT_FAILED_RUNS_HISTORY_LIMIT),
    )
    for job_name in doomed:
        await kube.delete_job(namespace, job_name)
    return doomed
