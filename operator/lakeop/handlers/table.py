"""Table handlers: resolve and prepare the location, keep status current, honour deletionPolicy.

Create/resume/update reconcile the table (location, descriptor, Ready); a timer refreshes
``currentSchemaVersion`` and the committed totals, so a table converges even when a run's
result was recorded while the operator was down. The finalizer removes data only under
``deletionPolicy: Delete``. Every status write goes through
:func:`lakeop.handlers.table_status.write_table_status`; where the data lives is
:mod:`lakeop.handlers.table_storage`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from lakeop.core.constants import (
    GROUP,
    TABLES,
    VERSION,
    DeletionPolicy,
    EventType,
    Reason,
)
from lakeop.core.runs.mounts import LocationNotMountedError, require_mounted
from lakeop.core.runs.status import TableFacts
from lakeop.core.schema.verdict import current_version
from lakeop.core.spec.resources import TableSpec, parse_table
from lakeop.errors import InvalidSpecError
from lakeop.handlers import _lake
from lakeop.handlers._common import RESYNC_SECONDS, kopf_errors
from lakeop.handlers.indexes import peers_of
from lakeop.handlers.table_status import write_table_status
from lakeop.handlers.table_storage import LocationRefusedError, location_of, storage_env
from lakeop.memo import OperatorMemo


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
async def reconcile(body: kopf.Body, memo: OperatorMemo, uid: str, **kwargs: Any) -> None:
    kube, settings = memo.kube, memo.settings
    try:
        spec = parse_table(body)
        location = location_of(spec, settings)
        if settings.require_mounts:  # every Job pod writing it has the lake volume, no other
            mounts = [settings.lake_mount_path] if settings.lake_mount_path else []
            require_mounted(f"Table {spec.namespace}/{spec.name}", {"location": location}, mounts)
    except (InvalidSpecError, LocationRefusedError, LocationNotMountedError) as exc:
        with kopf_errors(memo, "Table"):
            await write_table_status(kube, body, TableFacts(refusal=(exc.reason, str(exc))))
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
        with kopf_errors(memo, "Table"):
            await write_table_status(kube, body, TableFacts(refusal=(reason, str(exc))))
        raise
    current = current_version(peers_of(kwargs, spec.namespace, spec.name))
    was_ready = (body.get("status") or {}).get("location") == location
    facts = TableFacts(
        location=location,
        totals=totals,
        current_schema_version=current,
        table_format=spec.format,
    )
    with kopf_errors(memo, "Table"):
        await write_table_status(kube, body, facts)
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
    body: kopf.Body, memo: OperatorMemo, status: Mapping[str, Any], **kwargs: Any
) -> None:
    """Keep totals and currentSchemaVersion current (only once the table is prepared)."""
    location = status.get("location")
    if not location:
        return
    with kopf_errors(memo, "Table"):
        spec = parse_table(body)
        env = await storage_env(memo.kube, spec)
        totals = await _lake.totals(
            str(location), env, spec.format, spec.maintenance.target_file_size_bytes
        )
        current = current_version(peers_of(kwargs, spec.namespace, spec.name))
        facts = TableFacts(totals=totals, current_schema_version=current, table_format=spec.format)
        await write_table_status(memo.kube, body, facts)


@kopf.on.delete(GROUP, VERSION, TABLES)
async def delete(body: kopf.Body, memo: OperatorMemo, status: Mapping[str, Any], **_: Any) -> None:
    """Retain never touches data; Delete removes the table's data and metadata."""
    try:
        policy = parse_table(body).deletion_policy
    except InvalidSpecError:  # never delete data on the word of a spec that does not parse
        policy = DeletionPolicy.RETAIN.value
    location = status.get("location")
    if policy != DeletionPolicy.DELETE.value or not location:
        kopf.event(
            body,
            type=EventType.NORMAL.value,
            reason=Reason.DATA_RETAINED.value,
            message=f"deletionPolicy {policy}: data kept at {location or '(none)'}",
        )
        return
    with kopf_errors(memo, "Table"):
        spec = parse_table(body)
        env = await storage_env(memo.kube, spec)
        removed = await _lake.delete_location(str(location), env)
    kopf.event(
        body,
        type=EventType.NORMAL.value,
        reason=Reason.DATA_DELETED.value,
        message=f"deleted {location}" if removed else f"nothing at {location}",
    )
