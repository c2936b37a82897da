"""Admission of waiting runs under the operator-wide and per-namespace concurrency limits.

Every run that wants to start is a :class:`QueuedRun`; the operator keeps no queue of its own
(it would be lost on restart). Instead, each time it reconciles, it lists the IngestionJobs
waiting to run and the runs still active, and :func:`admit` decides — deterministically, from
those facts alone — which waiting runs start now and where each of the others stands. Order:
``spec.priority`` (higher first), then creation time (older first), then namespace and name so
that ties never depend on listing order. A run held back only by its namespace's limit does not
block runs of other namespaces behind it; the operator-wide limit is strict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from lakeop.errors import InvalidSpecError

MAX_RUNS_ENV = "LAKEOP_MAX_CONCURRENT_RUNS"
MAX_RUNS_PER_NAMESPACE_ENV = "LAKEOP_MAX_CONCURRENT_RUNS_PER_NAMESPACE"

RunKey = tuple[str, str]  # (namespace, IngestionJob name)


class QueueReason(StrEnum):
    """Why a run waits: the ``reason`` of its Ready=False condition while Queued."""

    MAX_CONCURRENT_RUNS = "MaxConcurrentRuns"
    NAMESPACE_LIMIT = "NamespaceConcurrencyLimit"


@dataclass(frozen=True)
class QueuedRun:
    """A run waiting to start, or one already running (then ``priority`` is not used)."""

    namespace: str
    name: str
    priority: int = 0
    created: datetime | None = None  # the IngestionJob's creationTimestamp (or queue entry)

    @property
    def key(self) -> RunKey:
        return (self.namespace, self.name)


class Admission(NamedTuple):
    """``to_start`` in start order; ``positions`` (1-based) and ``reasons`` of the rest."""

    to_start: list[QueuedRun]
    positions: dict[RunKey, int]
    reasons: dict[RunKey, QueueReason]


def queue_order(run: QueuedRun) -> tuple[int, float, str, str]:
    created = run.created.timestamp() if run.created is not None else float("inf")
    return (-run.priority, created, run.namespace, run.name)


def admit(
    waiting: Iterable[QueuedRun],
    running: Iterable[QueuedRun],
    max_total: int | None,
    per_namespace: int | None = None,
) -> Admission:
    """Which waiting runs start now; ``None`` as a limit means unlimited.

    A waiting run whose key is also running is ignored (the operator saw it mid-start).
    """
    for what, limit in (("max_total", max_total), ("per_namespace", per_namespace)):
        if limit is not None and limit < 1:
            raise ValueError(f"{what} must be >= 1 or None, got {limit}")
    active = {r.key for r in running}
    in_namespace = Counter(namespace for namespace, _ in active)
    total = len(active)
    seen: set[RunKey] = set()
    queue: list[QueuedRun] = []
    for run in sorted(waiting, key=queue_order):
        if run.key not in active and run.key not in seen:
            seen.add(run.key)
            queue.append(run)
    to_start: list[QueuedRun] = []
    positions: dict[RunKey, int] = {}
    reasons: dict[RunKey, QueueReason] = {}
    for run in queue:
        if max_total is not None and total >= max_total:
            reasons[run.key] = QueueReason.MAX_CONCURRENT_RUNS
        elif per_namespace is not None and in_namespace[run.namespace] >= per_namespace:
            reasons[run.key] = QueueReason.NAMESPACE_LIMIT
        else:
            to_start.append(run)
            total += 1
            in_namespace[run.namespace] += 1
            continue
        positions[run.key] = len(positions) + 1
    return Admission(to_start, positions, reasons)


def queue_message(position: int, reason: QueueReason, limit: int | None) -> str:
    """The human message of a Queued run's condition."""
    what = (
        f"{limit} runs at once in this operator"
        if reason is QueueReason.MAX_CONCURRENT_RUNS
        else f"{limit} runs at once in this namespace"
    )
    return f"waiting for a free slot: position {position} in the queue (limit {what})"


@dataclass(frozen=True)
class QueueLimits:
    max_total: int | None
    per_namespace: int | None


def _limit(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidSpecError(f"{name}: must be a positive integer, got {text!r}")
    return int(text)


def limits_from_env(env: Mapping[str, str], default_max_total: int | None = 10) -> QueueLimits:
    """Read both limits from an environment mapping (passed in, never ``os.environ`` here)."""
    return QueueLimits(
        max_total=_limit(env, MAX_RUNS_ENV, default_max_total),
        per_namespace=_limit(env, MAX_RUNS_PER_NAMESPACE_ENV, None),
    )
