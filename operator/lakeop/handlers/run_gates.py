"""What an IngestionJob's run waits for before :func:`lakeop.handlers.ingestionjob.start_run`
starts it: a Ready Table and the SchemaVersion its run writes under, and room in the run
queue. Each refusal is a :class:`NotStartableError` carrying the phase and reason to show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.config import Settings
from lakeop.core.constants import (
    INGESTION_JOBS,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    SCHEMA_VERSIONS,
    TABLES,
    ConditionType,
    JobPhase,
    Reason,
    SchemaPhase,
)
from lakeop.core.runs.conditions import is_true
from lakeop.core.runs.queue import (
    QueueLimits,
    QueueReason,
    active_runs,
    admit,
    queue_message,
    queued_run,
    waiting_runs,
)
from lakeop.core.schema.verdict import gate_message, schema_gate
from lakeop.core.spec.peers import parse_peer
from lakeop.core.spec.resources import IngestionJobSpec, SchemaVersionSpec
from lakeop.kube.client import Kube
from lakeop.metrics import Metrics


class NotStartableError(Exception):
    """The run cannot start yet; carries the phase, reason and message to show."""

    def __init__(
        self, phase: JobPhase, reason: str, message: str, fields: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.phase, self.reason = phase, reason
        self.fields = dict(fields or {})  # extra status, e.g. queuePosition


async def table_gate(
    kube: Kube, namespace: str, table_name: str, *, pinned: int | None = None
) -> tuple[dict[str, Any], SchemaVersionSpec]:
    """The Ready table and the SchemaVersion its run writes under, or NotStartableError.

    The version is :func:`lakeop.core.schema.verdict.schema_gate`'s: the highest Accepted one, once
    no SchemaVersion of the table is undecided (``WaitingForSchema`` until then).
    """
    table = await kube.get_object(TABLES, namespace, table_name)
    if table is None:
        raise NotStartableError(
            JobPhase.PENDING,
            Reason.TABLE_NOT_FOUND,
            f"Table {namespace}/{table_name} does not exist (yet)",
        )
    tstatus = table.get("status") or {}
    if not is_true(tstatus.get("conditions"), ConditionType.READY.value):
        raise NotStartableError(
            JobPhase.PENDING, Reason.TABLE_NOT_READY, f"Table {namespace}/{table_name} is not Ready"
        )
    svs = [
        parsed
        for obj in await kube.list_objects(SCHEMA_VERSIONS, namespace)
        if (parsed := parse_peer(obj)) is not None and parsed[0].table_ref == table_name
    ]
    gate = schema_gate([peer for _, peer in svs], pinned=pinned)
    if not gate.settled:
        reason = Reason.WAITING_FOR_SCHEMA if gate.waiting else Reason.NO_ACCEPTED_SCHEMA
        raise NotStartableError(
            JobPhase.PENDING, reason, gate_message(gate, f"{namespace}/{table_name}")
        )
    return table, next(
        sv
        for sv, peer in svs
        if peer.version == gate.version and peer.phase == SchemaPhase.ACCEPTED.value
    )


async def queue_capacity(
    kube: Kube,
    settings: Settings,
    spec: IngestionJobSpec,
    created: object,
    metrics: Metrics,
    *,
    overlap: bool = False,
) -> None:
    """Start only if :func:`lakeop.core.runs.queue.admit` admits this run now (priority, age).

    The queue is every waiting IngestionJob of every namespace this operator serves, so
    ``priority`` orders runs across namespaces, as the operator-wide limit is. ``overlap``: a
    scheduled run starting beside this IngestionJob's active ones (``concurrencyPolicy: Allow``).
    """
    limits = QueueLimits(settings.max_concurrent_runs, settings.max_concurrent_runs_per_namespace)
    jobs = await kube.list_jobs(f"{LABEL_MANAGED_BY}={MANAGED_BY}")
    me = queued_run(spec, created)
    namespace = me.namespace
    served = [
        ij
        for ij in await kube.list_all_objects(INGESTION_JOBS)
        if settings.serves(str((ij.get("metadata") or {}).get("namespace")))
    ]
    waiting = [r for r in waiting_runs(served) if r.key != me.key]
    admission = admit(
        [*waiting, me],
        active_runs(jobs, served),
        limits.max_total,
        limits.per_namespace,
        overlapping=[me.key] if overlap else [],
    )
    started = {r.key for r in admission.to_start}
    pending = [r for r in [*waiting, me] if r.namespace == namespace]
    metrics.set_queue_length(namespace, sum(r.key not in started for r in pending))
    if any(r.key == me.key for r in admission.to_start):
        return
    reason = admission.reasons.get(me.key, QueueReason.MAX_CONCURRENT_RUNS)
    limit = limits.max_total if reason is QueueReason.MAX_CONCURRENT_RUNS else limits.per_namespace
    position = admission.positions.get(me.key, 1)
    raise NotStartableError(
        JobPhase.QUEUED,
        reason.value,
        queue_message(position, reason, limit),
        {"queuePosition": position},
    )
