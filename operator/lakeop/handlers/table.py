"""Table handlers: resolve and prepare the location, keep status current, honour deletionPolicy.

Create/resume/update reconcile the table (location, descriptor, Ready; an Iceberg table is
registered in its catalog at its first Accepted SchemaVersion); a timer refreshes
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
    SchemaPhase,
)
from lakeop.core.lake.iceberg import CATALOG_ENV
from lakeop.core.runs.mounts import LocationNotMountedError, require_mounted
from lakeop.core.runs.plan import PlanTable, plan_table
from lakeop.core.runs.status import TableFacts
from lakeop.core.schema.verdict import Peer, current_version
from lakeop.core.spec.resources import TableSpec, parse_table
from lakeop.errors import InvalidSpecError
from lakeop.handlers import _lake
from lakeop.handlers._common import kopf_errors
from lakeop.handlers.indexes import peers_of
from lakeop.handlers.table_status import write_table_status
from lakeop.handlers.table_storage import (
    LocationRefusedError,
    catalog_problem,
    location_of,
    storage_env,
)
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


def _known(spec: TableSpec, location: str, env: Mapping[str, str]) -> PlanTable | None:
    """The table as status reads it: an Iceberg table in a named catalog by its identifier
    (before any run); else told from its files (the embedded catalog's, once a run made it)."""
    return plan_table(spec, location) if CATALOG_ENV in env else None


async def _ensure(
    spec: TableSpec, location: str, env: Mapping[str, str], peers: list[Peer], done: Any = None
) -> None:
    """``format: iceberg``: the operator registers the table in its catalog at the first
    Accepted SchemaVersion (engines see it, empty, before any run) and follows later ones
    (``done``: the version the status already shows, nothing to do). Only in a named SQL
    catalog: an embedded SQLite catalog lives in the lake's folder, which the first run
    (as the Job pods' user) creates."""
    current = current_version(peers)
    if spec.format != "iceberg" or CATALOG_ENV not in env:
        return
    if current is None or current == done:
        return
    accepted = SchemaPhase.ACCEPTED.value
    fields = next(p.fields for p in peers if p.version == current and p.phase == accepted)
    await _lake.ensure(plan_table(spec, location), fields, env)


@kopf.on.resume(GROUP, VERSION, TABLES)
@kopf.on.create(GROUP, VERSION, TABLES)
@kopf.on.update(GROUP, VERSION, TABLES, field="spec")
async def reconcile(body: kopf.Body, memo: OperatorMemo, uid: str, **kwargs: Any) -> None:
    kube, settings = memo.kube, memo.settings
    try:
        spec = parse_table(body)
        location = location_of(spec, settings)
        refused = catalog_problem(spec, location, settings)
        if refused:  # an s3:// Iceberg table with no catalog: the webhook's rule too
            raise InvalidSpecError(refused)
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
            env = await storage_env(kube, spec, settings)
            await _lake.prepare_location(location, env, _descriptor(spec, uid, location))
            await _ensure(spec, location, env, peers_of(kwargs, spec.namespace, spec.name))
            totals = await _lake.totals(
                location,
                env,
                spec.format,
                spec.maintenance.target_file_size_bytes,
                _known(spec, location, env),
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


async def refresh(
    body: kopf.Body, memo: OperatorMemo, status: Mapping[str, Any], **kwargs: Any
) -> None:
    """Keep totals and currentSchemaVersion current (only once the table is prepared): a timer
    every ``settings.resync_seconds`` (:func:`lakeop.handlers.timers.register_timers`)."""
    location = status.get("location")
    if not location:
        return
    with kopf_errors(memo, "Table"):
        spec = parse_table(body)
        env = await storage_env(memo.kube, spec, memo.settings)
        peers = peers_of(kwargs, spec.namespace, spec.name)
        await _ensure(spec, str(location), env, peers, status.get("currentSchemaVersion"))
        totals = await _lake.totals(
            str(location),
            env,
            spec.format,
            spec.maintenance.target_file_size_bytes,
            _known(spec, str(location), env),
        )
        current = current_version(peers)
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
        env = await storage_env(memo.kube, spec, memo.settings)
        removed = await _lake.delete_location(str(location), env)
    kopf.event(
        body,
        type=EventType.NORMAL.value,
        reason=Reason.DATA_DELETED.value,
        message=f"deleted {location}" if removed else f"nothing at {location}",
    )
