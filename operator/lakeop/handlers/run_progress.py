"""``status.currentRun.progress`` of a run in flight (one pod; a scaled-out run reports its
shares instead, :mod:`lakeop.handlers.shards`): the last progress line of the run's running
pod, read from the tail of its log on each follow tick (see core.runs.progress)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.constants import INGESTION_JOBS
from lakeop.core.runs.progress import progress_of
from lakeop.handlers.pod_reports import oldest_first, run_selector
from lakeop.kube.client import Kube

#: log lines read per tick: the engine logs progress every few seconds, little else
TAIL_LINES = 20


async def report_progress(kube: Kube, ij: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Patch ``status.currentRun.progress`` if the running pod's last progress line changed."""
    meta = ij.get("metadata") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    pods = oldest_first(await kube.list_pods(namespace, run_selector(name, current["number"])))
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    if not running:
        return
    pod = running[-1]
    log = await kube.pod_log(namespace, str(pod["metadata"]["name"]), tail_lines=TAIL_LINES)
    progress = progress_of(log)
    if progress is not None and progress != current.get("progress"):
        patch = {"currentRun": {"progress": progress}}
        await kube.patch_status(INGESTION_JOBS, namespace, name, patch)
