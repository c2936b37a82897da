"""Table handlers: resolve and prepare the location, keep status current, honour deletionPolicy.

Create/resume/update reconcile the table (location, descriptor, Ready); a timer refreshes
``currentSchemaVersion`` and the committed totals, so a table converges even when a run's
result was recorded while the operator was down. The finalizer removes data only under
``deletionPolicy: Delete``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import kopf

from lakeop.config import Settings
from lakeop.core.constants import (
    GROUP,
    SCHEMA_VERSIONS,
    STORAGE_ENV_PREFIX,
    TABLES,
    VERSION,
    DeletionPolicy,
    EventType,
    Reason,
)
from lakeop.core.runs import status as st
from lakeop.core.runs.plan import resolve_location
from lakeop.core.schema.verdict import Peer, current_version
from lakeop.core.spec.resources import TableSpec, parse_table
from lakeop.core.spec.tenancy import check_location
from lakeop.errors import InvalidSpecError, TerminalError
from lakeop.handlers import _lake
from lakeop.handlers._common import (
    conditions,
    generation,
    kopf_errors,
    kube_of,
    now,
    settings_of,
)
from lakeop.handlers.indexes import peers_of
from lakeop.kube.client import Kube
from lakeop.storage import real_location

RESYNC_SECONDS = float(os.environ.get("LAKEOP_RESYNC_SECONDS") or 30)


class LocationRefusedError(TerminalError):
    reason = Reason.LOCATION_REFUSED.value


def location_of(spec: TableSpec, settings: Settings) -> str:
    """The table's resolved location, or LocationRefusedError under LAKEOP_ALLOWED_LOCATIONS."""
    location = resolve_location(settings.default_location, spec.namespace, spec.name, spec.location)
    refusal = check_location(spec.namespace, location, settings.allowed_locations, real_location)
    if refusal:
        raise LocationRefusedError(f"Table {spec.namespace}/{spec.name}: {refusal}")
    return location


async def storage_env(kube: Kube, spec: TableSpec) -> dict[str, str]:
    """The storage Secret's keys as LAKEOP_STORAGE_* names (only the operator's own use)."""
    if not spec.storage_secret_ref:
        return {}
    return await kube.read_secret(spec.namespace, spec.storage_secret_ref, STORAGE_ENV_PREFIX)


async def schema_peers(kube: Kube, namespace: str, table: str) -> list[Peer]:
    peers = []
    for obj in await kube.list_objects(SCHEMA_VERSIONS, namespace):
        spec = obj.get("spec") or {}
        if spec.get("tableRef") != table or not isinstance(spec.get("version"), int):
            continue
        meta = obj.get("metadata") or {}
        peers.append(
            Peer(
                name=str(meta.get("name")),
                version=int(spec["version"]),
                fields=list(spec.get("fields") or []),
                phase=(obj.get("status") or {}).get("phase"),
                created=str(meta.get("creationTimestamp") or ""),
            )
        )
    return peers


def _descriptor(spec: TableSpec, uid: str, location: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Table",
        "namespace": spec.namespace,
        "name": spec.name,
        "uid": uid,
        "location": location,
        "format": spec.format,
        "compression": spec.compression,
        "partitioning": spec.partitioning.to_dict(),
    }


@kopf.on.resume(GROUP, VERSION, TABLES)
@kopf.on.create(GROUP, VERSION, TABLES)
@kopf.on.update(GROUP, VERSION, TABLES, field="spec")
async def reconcile(body: kopf.Body, memo: Any, patch: kopf.Patch, uid: str, **kwargs: Any) -> None:
    kube, settings = kube_of(memo), settings_of(memo)
    gen, stamp = generation(body), now()
    try:
        spec = parse_table(body)
        location = location_of(spec, settings)
    except (InvalidSpecError, LocationRefusedError) as exc:
        patch.status.update(
            st.not_ready(
                conditions(body), generation=gen, now=stamp, reason=exc.reason, message=str(exc)
            )
        )
        kopf.event(body, type=EventType.WARNING.value, reason=exc.reason, message=str(exc))
        raise kopf.PermanentError(str(exc)) from exc
    try:
        with kopf_errors(memo, "Table"):
            env = await storage_env(kube, spec)
            await _lake.prepare_location(location, env, _descriptor(spec, uid, location))
            totals = await _lake.totals(
                location, env, spec.format, spec.maintenance.target_file_size_bytes
            )
    except kopf.TemporaryError as exc:  # say why in status, then let kopf retry
        reason = getattr(exc.__cause__, "reason", Reason.STORAGE_UNAVAILABLE.value)
        await kube.patch_status(
            TABLES,
            spec.namespace,
            spec.name,
            st.not_ready(
                conditions(body), generation=gen, now=stamp, reason=reason, message=str(exc)
            ),
        )
        raise
    current = current_version(peers_of(kwargs, spec.namespace, spec.name))
    status = st.table_ready(
        conditions(body), generation=gen, now=stamp, location=location, totals=totals
    )
    if current is not None:
        status["currentSchemaVersion"] = current
    status["format"] = spec.format
    was_ready = (body.get("status") or {}).get("location") == location
    patch.status.update(status)
    if not was_ready:
        kopf.event(
            body,
            type=EventType.NORMAL.value,
            reason=Reason.RECONCILED.value,
            message=f"table ready at {location}",
        )


@kopf.timer(
    GROUP,
    VERSION,
    TABLES,
    interval=RESYNC_SECONDS,
    initial_delay=RESYNC_SECONDS,
    idle=RESYNC_SECONDS,
)
async def refresh(
    body: kopf.Body,
    memo: Any,
    patch: kopf.Patch,
    status: Mapping[str, Any],
    **kwargs: Any,
) -> None:
    """Keep totals and currentSchemaVersion current (only once the table is prepared)."""
    location = status.get("location")
    if not location:
        return
    kube = kube_of(memo)
    with kopf_errors(memo, "Table"):
        spec = parse_table(body)
        env = await storage_env(kube, spec)
        totals = await _lake.totals(
            str(location), env, spec.format, spec.maintenance.target_file_size_bytes
        )
        current = current_version(peers_of(kwargs, spec.namespace, spec.name))
    update = {k: totals[k] for k in st.TOTAL_KEYS if totals.get(k) is not None}
    update["format"] = spec.format
    if current is not None:
        update["currentSchemaVersion"] = current
    changed = {k: v for k, v in update.items() if status.get(k) != v}
    if changed:
        patch.status.update(changed)


@kopf.on.delete(GROUP, VERSION, TABLES)
async def delete(body: kopf.Body, memo: Any, status: Mapping[str, Any], **_: Any) -> None:
    """Retain never touches data; Delete removes the table's data and metadata."""
    policy = (body.get("spec") or {}).get("deletionPolicy") or DeletionPolicy.RETAIN.value
    location = status.get("location")
    if policy != DeletionPolicy.DELETE.value or not location:
        kopf.event(
            body,
            type=EventType.NORMAL.value,
            reason=Reason.DATA_RETAINED.value,
            message=f"deletionPolicy {policy}: data kept at {location or '(none)'}",
        )
        return
    kube = kube_of(memo)
    with kopf_errors(memo, "Table"):
        spec = parse_table(body)
        env = await storage_env(kube, spec)
        removed = await _lake.delete_location(str(location), env)
    kopf.event(
        body,
        type=EventType.NORMAL.value,
        reason=Reason.DATA_DELETED.value,
        message=f"deleted {location}" if removed else f"nothing at {location}",
    )
