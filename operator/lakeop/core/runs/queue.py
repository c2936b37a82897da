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
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from lakeop.core.constants import LABEL_INGESTION_JOB, JobPhase
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
    *,
    overlapping: Iterable[RunKey] = (),
) -> Admission:
    """Which waiting runs start now; ``None`` as a limit means unlimited.

    ``running`` has one entry per active Job (an IngestionJob with ``concurrencyPolicy:
    Allow`` may have several). A waiting run whose key is also running is not started again,
    unless its key is in ``overlapping`` (a scheduled run that may start beside its active
    ones); it still needs a free slot.
    """
    for what, limit in (("max_total", max_total), ("per_namespace", per_namespace)):
        if limit is not None and limit < 1:
            raise ValueError(f"{what} must be >= 1 or None, got {limit}")
    running = list(running)
    active = {r.key for r in running} - set(overlapping)
    in_namespace = Counter(r.namespace for r in running)
    total = len(running)
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


# ------------------------------------------------------------------- from API objects


def _created(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def queued_run(ingestion_job: Mapping[str, Any]) -> QueuedRun:
    """An IngestionJob body as a queue entry (priority from spec, age from metadata)."""
    meta = ingestion_job.get("metadata") or {}
    priority = (ingestion_job.get("spec") or {}).get("priority") or 0
    return QueuedRun(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name")),
        priority=int(priority),
        created=_created(meta.get("creationTimestamp")),
    )


def waiting_runs(ingestion_jobs: Iterable[Mapping[str, Any]]) -> list[QueuedRun]:
    """The IngestionJobs whose ``status.phase`` is Queued."""
    return [
        queued_run(ij)
        for ij in ingestion_jobs
        if (ij.get("status") or {}).get("phase") == JobPhase.QUEUED.value
    ]


def active_runs(
    jobs: Iterable[Mapping[str, Any]], ingestion_jobs: Iterable[Mapping[str, Any]] = ()
) -> list[QueuedRun]:
    """The runs holding a slot: lakeop's batch/v1 Jobs that have not finished, one entry each,
    and the runs ``ingestion_jobs`` record in flight whose Job does not exist yet.

    A run is admitted, then written to ``status.currentRun``, then its Job is created: a run
    between the last two steps holds its slot too, or a second waiting run admitted in that
    moment would start beside it over the limit.
    """
    entries: list[QueuedRun] = []
    known: set[tuple[str, str]] = set()
    for job in jobs:
        meta = job.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        known.add((namespace, str(meta.get("name"))))
        owner = (meta.get("labels") or {}).get(LABEL_INGESTION_JOB)
        conditions = (job.get("status") or {}).get("conditions") or []
        finished = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in conditions
        )
        if owner and not finished:
            entries.append(QueuedRun(namespace, str(owner)))
    for ij in ingestion_jobs:
        meta, status = ij.get("metadata") or {}, ij.get("status") or {}
        namespace = str(meta.get("namespace") or "default")
        runs = [*(status.get("activeRuns") or []), status.get("currentRun") or {}]
        for run in runs:
            job_name = run.get("jobName")
            if job_name and (namespace, str(job_name)) not in known:
                entries.append(QueuedRun(namespace, str(meta.get("name"))))
    return entries
