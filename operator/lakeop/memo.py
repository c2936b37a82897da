"""What every handler gets as kopf's ``memo``: settings, the API client, metrics, run locks.

``lakeop run`` builds one :class:`OperatorMemo` before the operator starts and passes it to
``kopf.operator(memo=...)``; kopf hands each object a shallow copy, so the clients and the
lock table are shared while nothing can be rebound. Handlers read attributes, typed, instead of
looking keys up in a dict filled by a start-up handler, and tests build one around a fake API
client. The memo is frozen: whatever changes while the operator runs (the lock table) is a
mutable value inside it, not a field that handlers reassign.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from lakeop.config import Settings
from lakeop.kube.client import Kube
from lakeop.metrics import Metrics


@dataclass(frozen=True)
class OperatorMemo:
    #: the operator's configuration, read once from LAKEOP_* and ``lakeop run``'s options
    settings: Settings
    #: the one Kubernetes edge for everything kopf does not patch itself
    kube: Kube
    #: Prometheus metrics (served on ``settings.metrics_port`` when set)
    metrics: Metrics = field(default_factory=Metrics)
    #: per-IngestionJob locks under which a run's result is recorded (handlers.runs.run_lock)
    run_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: tasks the operator runs beside kopf's handlers (the freshness gauges), cancelled at cleanup
    background: list[asyncio.Task[None]] = field(default_factory=list)

    def run_lock(self, namespace: str, name: str) -> asyncio.Lock:
        """The lock under which IngestionJob ``namespace/name``'s in-flight run is recorded."""
        return self.run_locks.setdefault(f"{namespace}/{name}", asyncio.Lock())
