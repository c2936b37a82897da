"""Every replica refreshes the last-success gauge from the API, the active one and the standby.

kopf's peering pauses the standby's handlers, timers and daemons, so the refresh is a plain
task started in ``startup`` and cancelled in ``cleanup``: it lists the served IngestionJobs
every ``interval`` seconds and hands the snapshot to :class:`~lakeop.metrics.Metrics`. Either
replica's ``/metrics`` thus shows the same values, and a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from lakeop.config import Settings
from lakeop.core.constants import INGESTION_JOBS
from lakeop.core.runs.freshness import freshness
from lakeop.kube.client import Kube
from lakeop.metrics import Metrics

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def refresh_once(
    kube: Kube, metrics: Metrics, settings: Settings, clock: Callable[[], datetime] = _utcnow
) -> int:
    """One refresh; how many IngestionJobs ever succeeded. API errors keep the last snapshot."""
    try:
        objects = await kube.list_all_objects(INGESTION_JOBS)
    except Exception as exc:  # the API edge's and the transport's: the loop must live on
        log.warning("last-success gauge not refreshed: %s", exc)
        return -1
    snapshot = freshness(objects, clock(), settings.serves)
    metrics.set_freshness(snapshot)
    return len(snapshot.last_success)


async def refresh_forever(
    kube: Kube, metrics: Metrics, settings: Settings, interval: float = INTERVAL_SECONDS
) -> None:
    while True:
        await refresh_once(kube, metrics, settings)
        await asyncio.sleep(interval)
