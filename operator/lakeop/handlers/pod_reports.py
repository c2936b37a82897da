"""Reading what a run's pods reported: the termination message, else the tail of the log.

Ingestion runs (:mod:`lakeop.handlers.runs`) and maintenance runs
(:mod:`lakeop.handlers.maintenance`) both end by reading their last pod's summary back, each
with its own parser (``RunSummary.from_text``, ``MaintenanceReport.from_text``). A pod the
kubelet OOM-killed leaves no summary (SIGKILL): then what it can say is the kill itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from lakeop.core.constants import LABEL_INGESTION_JOB, LABEL_RUN
from lakeop.core.runs.failure import oom_killed_error
from lakeop.kube.client import Kube

T = TypeVar("T")


def run_selector(ingestion_job: str, number: object) -> str:
    """The label selector of the pods of run ``number`` of IngestionJob ``ingestion_job``."""
    return f"{LABEL_INGESTION_JOB}={ingestion_job},{LABEL_RUN}={number}"


def oldest_first(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``pods`` in the order they were created (the last one is a run's current attempt)."""
    return sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))


async def last_report(
    kube: Kube, namespace: str, selector: str, parse: Callable[[str | None], T | None]
) -> tuple[T | None, dict[str, Any] | None]:
    """The newest pod's report among the pods matching ``selector`` (its termination
    message, else its log), and an OOM kill's ``error`` when no pod reported anything."""
    pods = oldest_first(await kube.list_pods(namespace, selector))
    for pod in reversed(pods):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            report = parse(terminated.get("message"))
            if report is not None:
                return report, None
        report = parse(await kube.pod_log(namespace, str(pod["metadata"]["name"])))
        if report is not None:
            return report, None
    for pod in reversed(pods):
        oom = oom_killed_error(pod)
        if oom is not None:
            return None, oom
    return None, None
