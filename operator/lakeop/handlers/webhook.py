"""Validating admission: refuse bad SchemaVersions, Table changes and IngestionJob pod
templates at ``kubectl apply``.

The verdicts are the same pure functions the reconcilers use
(:func:`lakeop.core.schema.verdict.judge`,
:func:`lakeop.core.spec.tenancy.check_location`), so the webhook only moves the refusal earlier.
Objects in namespaces this operator does not serve are admitted untouched (the webhook
configuration is cluster-wide). The webhook is registered with ``failurePolicy: Ignore``:
when the operator is down, objects are admitted and the same verdict lands in their status.
"""

from __future__ import annotations

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
from lakeop.core.runs.plan import resolve_location
from lakeop.core.schema.verdict import Peer, judge
from lakeop.core.spec.fields import ObjectKey
from lakeop.core.spec.podtemplate import parse_pod_template
from lakeop.core.spec.tenancy import check_location
from lakeop.errors import LakeopError
from lakeop.handlers._common import kube_of, settings_of
from lakeop.handlers.table import schema_peers
from lakeop.storage import real_location

UNPROCESSABLE = 422


@kopf.on.validate(
    GROUP, VERSION, SCHEMA_VERSIONS, id="schemaversion", operations=["CREATE"], ignore_failures=True
)
async def validate_schema_version(
    body: kopf.Body, memo: Any, name: str | None, namespace: str | None, **_: Any
) -> None:
    spec, meta = body.get("spec") or {}, body.get("metadata") or {}
    table_name, version = str(spec.get("tableRef") or ""), spec.get("version")
    ns = str(namespace or meta.get("namespace") or "default")
    if not isinstance(version, int) or not settings_of(memo).serves(ns):
        return  # the CRD schema reports a bad version; other operators serve other namespaces
    kube = kube_of(memo)
    try:
        table = await kube.get_object(TABLES, ns, table_name)
        if table is None:
            return  # admitted; it waits as Pending/TableNotFound
        peers = await schema_peers(kube, ns, table_name)
    except LakeopError:
        return  # cannot decide now: admit, the reconciler will judge
    # Versions applied in the same batch may not be judged yet: count them as they will be.
    hopeful = [
        Peer(
            p.name,
            p.version,
            p.fields,
            SchemaPhase.ACCEPTED.value if p.phase in (None, SchemaPhase.PENDING.value) else p.phase,
            p.created,
        )
        for p in peers
    ]
    verdict = judge(
        name=str(name or meta.get("name") or ""),
        version=version,
        fields=list(spec.get("fields") or []),
        created="~",
        table=table_name,
        mode=str((table.get("spec") or {}).get("compatibility") or "BACKWARD"),
        peers=hopeful,
        admission=True,
        table_format=str((table.get("spec") or {}).get("format") or "parquet"),
    )
    if not verdict.accepted:
        raise kopf.AdmissionError(_message(verdict.message, verdict.violations), code=UNPROCESSABLE)


@kopf.on.validate(
    GROUP, VERSION, TABLES, id="table", operations=["CREATE", "UPDATE"], ignore_failures=True
)
async def validate_table(
    body: kopf.Body,
    memo: Any,
    name: str | None,
    namespace: str | None,
    **kwargs: Any,
) -> None:
    settings = settings_of(memo)
    ns = str(namespace or "default")
    if not settings.serves(ns):
        return  # the webhook configuration is cluster-wide; another operator serves ns
    spec = body.get("spec") or {}
    old: Mapping[str, Any] | None = kwargs.get("old")  # kopf passes the old object on UPDATE
    if old:
        before = (old.get("spec") or {}).get("partitioning")
        if before is not None and spec.get("partitioning") != before:
            raise kopf.AdmissionError(
                f"Table {namespace}/{name}: spec.partitioning is immutable once set "
                f"(was {dict(before)}, now {spec.get('partitioning')})",
                code=UNPROCESSABLE,
            )
    try:
        location = resolve_location(settings.default_location, ns, str(name), spec.get("location"))
    except LakeopError as exc:
        raise kopf.AdmissionError(str(exc), code=UNPROCESSABLE) from exc
    refusal = check_location(ns, location, settings.allowed_locations, real_location)
    if refusal:
        raise kopf.AdmissionError(f"Table {ns}/{name}: {refusal}", code=UNPROCESSABLE)


@kopf.on.validate(
    GROUP,
    VERSION,
    INGESTION_JOBS,
    id="ingestionjob",
    operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)
async def validate_ingestion_job(
    body: kopf.Body, memo: Any, name: str | None, namespace: str | None, **_: Any
) -> None:
    """Refuse a ``spec.podTemplate`` that would take the run over (the rule of
    :func:`lakeop.core.spec.podtemplate.parse_pod_template`, which ``lakeop validate`` runs too)."""
    ns = str(namespace or "default")
    if not settings_of(memo).serves(ns):
        return
    spec = body.get("spec") or {}
    try:
        parse_pod_template(ObjectKey("IngestionJob", ns, str(name)), spec.get("podTemplate"))
    except LakeopError as exc:
        raise kopf.AdmissionError(str(exc), code=UNPROCESSABLE) from exc


def _message(summary: str, violations: list[dict[str, Any]]) -> str:
    lines = [summary]
    lines += [f"  - {v.get('field')}: {v.get('rule')}: {v.get('message')}" for v in violations]
    return "\n".join(lines)
