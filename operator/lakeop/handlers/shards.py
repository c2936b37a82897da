"""Following a scaled-out run: its pods' share summaries, summed (see core.shardstatus).

A run with ``spec.parallelism: N`` is an Indexed Job; every pod reports its own share in its
termination message. :func:`run_summary` reads each share's latest pod and combines them into
the run's summary (totals plus ``shards``); :func:`report_progress` keeps
``status.currentRun.shards`` current while the run is in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.constants import INGESTION_JOBS
from lakeop.core.runs.shard_status import INDEX_ANNOTATION, ShareAttempt, combine, shard_lines
from lakeop.core.runs.summary import RunSummary
from lakeop.handlers.pod_reports import oldest_first, run_selector
from lakeop.kube.client import Kube


def indexed_count(job: Mapping[str, Any] | None) -> int:
    """N for an Indexed Job (a scaled-out run), else 0."""
    spec = (job or {}).get("spec") or {}
    if spec.get("completionMode") != "Indexed":
        return 0
    return int(spec.get("completions") or 0)


async def _attempts(
    kube: Kube, namespace: str, name: str, number: int, *, logs: bool
) -> dict[int, ShareAttempt]:
    pods = oldest_first(await kube.list_pods(namespace, run_selector(name, number)))
    latest: dict[int, Mapping[str, Any]] = {}
    for pod in pods:  # the last one created per index is the share's current attempt
        raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_ANNOTATION)
        if raw is not None and str(raw).isdigit():
            latest[int(raw)] = pod
    out: dict[int, ShareAttempt] = {}
    for index, pod in latest.items():
        phase = str((pod.get("status") or {}).get("phase") or "Pending")
        summary = None
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            summary = summary or RunSummary.from_text(terminated.get("message"))
        if summary is None and logs and phase in {"Succeeded", "Failed"}:
            pod_name = str(pod["metadata"]["name"])
            summary = RunSummary.from_text(await kube.pod_log(namespace, pod_name))
        out[index] = ShareAttempt(index, phase, summary)
    return out


async def run_summary(
    kube: Kube, namespace: str, name: str, number: int, count: int
) -> RunSummary | None:
    """The whole run's summary from its N shares' latest pods (None: no pod reported)."""
    return combine(await _attempts(kube, namespace, name, number, logs=True), count)


async def report_progress(
    kube: Kube, ij: Mapping[str, Any], current: Mapping[str, Any], job: Mapping[str, Any]
) -> None:
    """Patch ``status.currentRun.shards`` if a share's state changed."""
    count = indexed_count(job)
    if not count:
        return
    meta = ij.get("metadata") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    attempts = await _attempts(kube, namespace, name, int(current["number"]), logs=False)
    lines = shard_lines(attempts, count)
    if lines != current.get("shards"):
        await kube.patch_status(INGESTION_JOBS, namespace, name, {"currentRun": {"shards": lines}})
