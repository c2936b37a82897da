"""Validating admission: refuse bad SchemaVersions, Table changes (location,
``spec.iceberg``) and IngestionJob pod templates at ``kubectl apply``.

The verdicts are the same pure functions the reconcilers use
(:func:`lakeop.core.schema.verdict.judge`,
:func:`lakeop.core.spec.tenancy.table_location`), so the webhook only moves the refusal earlier.
Objects in namespaces this operator does not serve are admitted untouched (the webhook
configuration is cluster-wide). The webhook is registered with ``failurePolicy: Ignore``:
when the operator is down, objects are admitted and the same verdict lands in their status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kopf

from lakeop.core.constants import (
    GROUP,
    INGESTION_JOBS,
    SCHEMA_VERSIONS,
    TABLES,
    VERSION,
    SchemaPhase,
)
from lakeop.core.runs.admission import check_ingestion_job, check_table, check_table_iceberg
from lakeop.core.schema.verdict import judge
from lakeop.core.spec.fields import ObjectKey
from lakeop.core.spec.layout import same_partitioning
from lakeop.core.spec.resources import parse_schema_version, table_compatibility, table_format
from lakeop.core.spec.tenancy import table_location
from lakeop.errors import InvalidSchemaError, InvalidSpecError, LakeopError
from lakeop.handlers.indexes import schema_peers
from lakeop.handlers.table_storage import has_default_catalog
from lakeop.memo import OperatorMemo
from lakeop.storage import real_location

UNPROCESSABLE = 422


@kopf.on.validate(
    GROUP, VERSION, SCHEMA_VERSIONS, id="schemaversion", operations=["CREATE"], ignore_failures=True
)
async def validate_schema_version(
    body: kopf.Body, memo: OperatorMemo, name: str | None, namespace: str | None, **_: Any
) -> None:
    meta = body.get("metadata") or {}
    ns = str(namespace or meta.get("namespace") or "default")
    if not memo.settings.serves(ns):
        return  # other operators serve other namespaces
    manifest = {**body, "metadata": {**meta, "name": name or meta.get("name"), "namespace": ns}}
    try:  # parsed once, here
        sv = parse_schema_version(manifest)
    except InvalidSchemaError as exc:
        raise kopf.AdmissionError(f"invalid schema: {exc}", code=UNPROCESSABLE) from exc
    except InvalidSpecError:
        return  # the CRD schema reports a bad version or tableRef; the reconciler rejects it
    kube = memo.kube
    try:
        table = await kube.get_object(TABLES, ns, sv.table_ref)
        if table is None:
            return  # admitted; it waits as Pending/TableNotFound
        peers = await schema_peers(kube, ns, sv.table_ref)
    except LakeopError:
        return  # cannot decide now: admit, the reconciler will judge
    # Versions applied in the same batch may not be judged yet: count them as they will be.
    undecided = (None, SchemaPhase.PENDING.value)
    hopeful = [
        dataclasses.replace(p, phase=SchemaPhase.ACCEPTED.value) if p.phase in undecided else p
        for p in peers
    ]
    verdict = judge(
        name=sv.name,
        version=sv.version,
        fields=sv.fields,
        created="~",
        table=sv.table_ref,
        mode=table_compatibility(table),
        peers=hopeful,
        admission=True,
        table_format=table_format(table),
    )
    if not verdict.accepted:
        raise kopf.AdmissionError(_message(verdict.message, verdict.violations), code=UNPROCESSABLE)


@kopf.on.validate(
    GROUP, VERSION, TABLES, id="table", operations=["CREATE", "UPDATE"], ignore_failures=True
)
async def validate_table(
    body: kopf.Body,
    memo: OperatorMemo,
    name: str | None,
    namespace: str | None,
    **kwargs: Any,
) -> None:
    settings = memo.settings
    ns = str(namespace or "default")
    if not settings.serves(ns):
        return  # the webhook configuration is cluster-wide; another operator serves ns
    spec = body.get("spec") or {}
    old: Mapping[str, Any] | None = kwargs.get("old")  # kopf passes the old object on UPDATE
    if old:
        before = (old.get("spec") or {}).get("partitioning")
        key = ObjectKey("Table", ns, str(name))
        if before is not None and not same_partitioning(key, before, spec.get("partitioning")):
            raise kopf.AdmissionError(
                f"Table {namespace}/{name}: spec.partitioning is immutable once set "
                f"(was {dict(before)}, now {spec.get('partitioning')})",
                code=UNPROCESSABLE,
            )
    manifest = {**body, "metadata": {**(body.get("metadata") or {}), "name": name, "namespace": ns}}
    # the location, spec.maintenance (podTemplate, schedule, time zone) and spec.iceberg: the
    # rest of a bad spec is the reconciler's to report
    try:
        check_table(manifest)
        location = table_location(
            ns,
            str(name),
            spec.get("location"),
            settings.default_location,
            allowed=settings.allowed_locations,
            resolve=real_location,
        )
        check_table_iceberg(manifest, location, default_catalog=has_default_catalog(settings))
    except LakeopError as exc:
        raise kopf.AdmissionError(str(exc), code=UNPROCESSABLE) from exc


@kopf.on.validate(
    GROUP,
    VERSION,
    INGESTION_JOBS,
    id="ingestionjob",
    operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)
async def validate_ingestion_job(
    body: kopf.Body, memo: OperatorMemo, name: str | None, namespace: str | None, **_: Any
) -> None:
    """Refuse what no run could use: a bad spec, a ``spec.podTemplate`` that would take the run
    over, a cron expression or time zone the scheduler cannot read (the rules of
    :func:`lakeop.core.runs.admission.check_ingestion_job`, which ``lakeop validate`` runs too)."""
    ns = str(namespace or "default")
    if not memo.settings.serves(ns):
        return
    manifest = {**body, "metadata": {**(body.get("metadata") or {}), "name": name, "namespace": ns}}
    try:
        check_ingestion_job(manifest, lake_mount_path=memo.settings.lake_mount_path)
    except LakeopError as exc:
        raise kopf.AdmissionError(str(exc), code=UNPROCESSABLE) from exc


def _message(summary: str, violations: list[dict[str, Any]]) -> str:
    lines = [summary]
    lines += [f"  - {v.get('field')}: {v.get('rule')}: {v.get('message')}" for v in violations]
    return "\n".join(lines)
