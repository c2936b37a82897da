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
from lakeop.core.schema.verdict import Verdict, current_version, judge
from lakeop.core.spec.peers import schema_peer
from lakeop.core.spec.resources import (
    parse_schema_version,
    schema_version_table,
    table_compatibility,
    table_format,
)
from lakeop.errors import InvalidSchemaError, InvalidSpecError
from lakeop.handlers._common import as_body, conditions, generation, kopf_errors, now
from lakeop.handlers.indexes import peers_of
from lakeop.handlers.table_status import write_table_status
from lakeop.kube.client import Kube
from lakeop.memo import OperatorMemo

WAIT_SECONDS = 3.0


@kopf.on.resume(GROUP, VERSION, SCHEMA_VERSIONS)
@kopf.on.create(GROUP, VERSION, SCHEMA_VERSIONS)
@kopf.on.update(GROUP, VERSION, SCHEMA_VERSIONS, field="spec")
async def reconcile(
    body: kopf.Body,
    memo: OperatorMemo,
    patch: kopf.Patch,
    name: str,
    namespace: str | None,
    **kwargs: Any,
) -> None:
    kube = memo.kube
    namespace = namespace or "default"
    gen, stamp = generation(body), now()
    previous_phase = (body.get("status") or {}).get("phase")
    if previous_phase in (SchemaPhase.ACCEPTED.value, SchemaPhase.REJECTED.value):
        return  # the spec is immutable: a verdict, once given, stands
    try:  # parsed once, here; everything below reads the typed spec
        sv = parse_schema_version(body)
    except (InvalidSchemaError, InvalidSpecError) as exc:  # no peer, no table to wait for
        verdict = (
            Verdict(SchemaPhase.REJECTED, Reason.INVALID_SCHEMA, f"invalid schema: {exc}")
            if isinstance(exc, InvalidSchemaError)
            else Verdict(SchemaPhase.REJECTED, Reason.INVALID_SPEC, str(exc))
        )
        _record_verdict(body, patch, verdict, gen, stamp)
        memo.metrics.schema_version_rejected(namespace, schema_version_table(body))
        return
    table_name, version, created = sv.table_ref, sv.version, _created(body)
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
    undecided = [
        p.name
        for p in peers
        if p.name != name and p.version < version and p.phase in (None, SchemaPhase.PENDING.value)
    ]
    if undecided:
        raise kopf.TemporaryError(f"waiting for {', '.join(undecided)}", delay=WAIT_SECONDS)
    verdict = judge(
        name=sv.name,
        version=version,
        fields=sv.fields,
        created=created,
        table=table_name,
        mode=table_compatibility(table),
        peers=peers,
        table_format=table_format(table),
    )
    _record_verdict(body, patch, verdict, gen, stamp)
    if not verdict.accepted:
        memo.metrics.schema_version_rejected(namespace, table_name)
        return
    accepted = [*peers, schema_peer(sv, phase=SchemaPhase.ACCEPTED.value, created=created)]
    current = current_version(accepted)
    table_status = table.get("status") or {}
    if current is not None and (table_status.get("currentSchemaVersion") or 0) < current:
        with kopf_errors(memo, "SchemaVersion"):
            await write_table_status(kube, table, st.TableFacts(current_schema_version=current))
        kopf.event(
            as_body(table),
            type=EventType.NORMAL.value,
            reason=Reason.SCHEMA_ADVANCED.value,
            message=f"current schema version is now {current} ({name})",
        )


def _record_verdict(
    body: kopf.Body, patch: kopf.Patch, verdict: Verdict, gen: int, stamp: str
) -> None:
    """The verdict in status (phase, Ready, compatibility, diff) and as an Event."""
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
    kind = EventType.NORMAL if verdict.accepted else EventType.WARNING
    kopf.event(body, type=kind.value, reason=verdict.reason.value, message=verdict.message)


def _created(body: kopf.Body) -> str:
    return str((body.get("metadata") or {}).get("creationTimestamp") or "")


async def _set_status(kube: Kube, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Write status now: kopf drops the handler's patch when the handler raises."""
    with kopf_errors():
        await kube.patch_status(SCHEMA_VERSIONS, namespace, name, status)
