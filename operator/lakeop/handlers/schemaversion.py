"""SchemaVersion handlers: judge the version, record the verdict, advance the table.

A version whose table does not exist yet stays Pending (TableNotFound) and is re-checked
until the table appears; a version with lower-numbered siblings still undecided waits for
them, so v2 is always checked against an accepted v1 even when both arrive in one apply.
The verdict itself is :func:`lakeop.core.schema.verdict.judge`, shared with the webhook.
"""

from __future__ import annotations

from typing import Any

import kopf

from lakeop.core.constants import (
    GROUP,
    SCHEMA_VERSIONS,
    TABLES,
    VERSION,
    EventType,
    Reason,
    SchemaPhase,
)
from lakeop.core.runs import status as st
from lakeop.core.schema.verdict import Peer, current_version, judge
from lakeop.handlers._common import (
    as_body,
    conditions,
    generation,
    kopf_errors,
    kube_of,
    metrics_of,
    now,
)
from lakeop.handlers.indexes import peers_of

WAIT_SECONDS = 3.0


@kopf.on.resume(GROUP, VERSION, SCHEMA_VERSIONS)
@kopf.on.create(GROUP, VERSION, SCHEMA_VERSIONS)
@kopf.on.update(GROUP, VERSION, SCHEMA_VERSIONS, field="spec")
async def reconcile(
    body: kopf.Body,
    memo: Any,
    patch: kopf.Patch,
    name: str,
    namespace: str | None,
    **kwargs: Any,
) -> None:
    kube = kube_of(memo)
    namespace = namespace or "default"
    spec, meta = body.get("spec") or {}, body.get("metadata") or {}
    gen, stamp = generation(body), now()
    table_name, version = str(spec.get("tableRef") or ""), spec.get("version")
    previous_phase = (body.get("status") or {}).get("phase")
    if previous_phase in (SchemaPhase.ACCEPTED.value, SchemaPhase.REJECTED.value):
        return  # the spec is immutable: a verdict, once given, stands
    with kopf_errors(memo, "SchemaVersion"):
        table = await kube.get_object(TABLES, namespace, table_name)
    if table is None:
        message = f"Table {namespace}/{table_name} does not exist (yet)"
        if previous_phase != SchemaPhase.PENDING.value:
            kopf.event(
                body,
                type=EventType.WARNING.value,
                reason=Reason.TABLE_NOT_FOUND.value,
                message=message,
            )
        await _set_status(
            kube,
            namespace,
            name,
            st.schema_version_status(
                conditions(body),
                generation=gen,
                now=stamp,
                phase=SchemaPhase.PENDING,
                reason=Reason.TABLE_NOT_FOUND,
                message=message,
            ),
        )
        raise kopf.TemporaryError(message, delay=WAIT_SECONDS)
    peers = peers_of(kwargs, namespace, table_name)
    if isinstance(version, int):
        undecided = [
            p.name
            for p in peers
            if p.name != name
            and p.version < version
            and p.phase in (None, SchemaPhase.PENDING.value)
        ]
        if undecided:
            raise kopf.TemporaryError(f"waiting for {', '.join(undecided)}", delay=WAIT_SECONDS)
    mode = str((table.get("spec") or {}).get("compatibility") or "BACKWARD")
    verdict = judge(
        name=name,
        version=int(version or 0),
        fields=list(spec.get("fields") or []),
        created=str(meta.get("creationTimestamp") or ""),
        table=table_name,
        mode=mode,
        peers=peers,
        table_format=str((table.get("spec") or {}).get("format") or "parquet"),
    )
    patch.status.update(
        st.schema_version_status(
            conditions(body),
            generation=gen,
            now=stamp,
            phase=verdict.phase,
            reason=verdict.reason,
            message=verdict.message,
            compatibility=verdict.compatibility,
            diff=verdict.diff,
        )
    )
    if not verdict.accepted:
        kopf.event(
            body, type=EventType.WARNING.value, reason=verdict.reason.value, message=verdict.message
        )
        metrics = metrics_of(memo)
        if metrics is not None:
            metrics.schema_version_rejected(namespace, table_name)
        return
    kopf.event(
        body, type=EventType.NORMAL.value, reason=verdict.reason.value, message=verdict.message
    )
    accepted = [*peers, Peer(name, int(version or 0), [], SchemaPhase.ACCEPTED.value)]
    current = current_version(accepted)
    table_status = table.get("status") or {}
    if current is not None and (table_status.get("currentSchemaVersion") or 0) < current:
        with kopf_errors(memo, "SchemaVersion"):
            await kube.patch_status(
                TABLES, namespace, table_name, {"currentSchemaVersion": current}
            )
        kopf.event(
            as_body(table),
            type=EventType.NORMAL.value,
            reason=Reason.SCHEMA_ADVANCED.value,
            message=f"current schema version is now {current} ({name})",
        )


async def _set_status(kube: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Write status now: kopf drops the handler's patch when the handler raises."""
    with kopf_errors():
        await kube.patch_status(SCHEMA_VERSIONS, namespace, name, status)
