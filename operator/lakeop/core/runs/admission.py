"""Every rule an IngestionJob must pass before it can run, in one function for every entrance;
and the rules of a Table's ``spec.iceberg`` the same way (:func:`check_table_iceberg`).

The webhook (at ``kubectl apply``), ``lakeop validate`` (in CI) and the operator must refuse
the same things, so each calls :func:`check_ingestion_job`: lakeop's spec parser (fields,
source, podTemplate conflicts), then the scheduler's own parsers for ``spec.schedule`` (cron
syntax and ranges) and ``spec.timeZone`` (IANA names; also without a schedule, where it can
only be a mistake), and a pod template mount that would collide with the operator's lake volume.
Each error names the object, the field and the value. A Table's ``spec.maintenance`` passes the
same rules in :func:`check_table` (its podTemplate, its compaction schedule and time zone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.lake import iceberg
from lakeop.core.runs.cron import InvalidScheduleError, parse_schedule, parse_time_zone
from lakeop.core.runs.mounts import check_lake_mount
from lakeop.core.spec.fields import ObjectKey
from lakeop.core.spec.layout import parse_iceberg
from lakeop.core.spec.resources import IngestionJobSpec, TableSpec, parse_ingestion_job, parse_table
from lakeop.errors import InvalidSpecError


def check_ingestion_job(
    manifest: Mapping[str, Any], *, lake_mount_path: str | None = None
) -> IngestionJobSpec:
    """The parsed spec, or the first lakeop error (``InvalidSpecError`` and subclasses).

    ``lake_mount_path``: where the operator mounts its lake volume in every Job pod
    (``LAKEOP_LAKE_MOUNT_PATH``, when set), which the pod template must leave free
    (:func:`lakeop.core.runs.mounts.check_lake_mount`)."""
    spec = parse_ingestion_job(manifest)
    where = f"IngestionJob {spec.namespace}/{spec.name}"
    check_lake_mount(
        ObjectKey("IngestionJob", spec.namespace, spec.name), spec.pod_template, lake_mount_path
    )
    if spec.schedule is not None:
        try:
            parse_schedule(spec.schedule)
        except InvalidScheduleError as exc:
            raise InvalidScheduleError(f"{where}: spec.schedule: {exc}") from exc
    if spec.time_zone is not None:
        try:
            parse_time_zone(spec.time_zone)
        except InvalidScheduleError as exc:
            raise InvalidScheduleError(f"{where}: spec.timeZone: {exc}") from exc
    return spec


def check_table_iceberg(
    manifest: Mapping[str, Any], location: str | None, *, default_catalog: bool
) -> None:
    """A ``format: iceberg`` Table's ``spec.iceberg``: its shape (``catalogSecretRef`` as
    ``{name, key}``, namespace and name fenced to Iceberg identifiers), and a catalog for its
    ``location`` (an object-store table needs ``catalogSecretRef`` or the operator's default,
    ``default_catalog``). The webhook, ``lakeop validate`` and the Table's reconcile all call
    it; raises :class:`~lakeop.errors.InvalidSpecError` naming the Table and the field."""
    meta, spec = manifest.get("metadata") or {}, manifest.get("spec") or {}
    if spec.get("format") != "iceberg":
        return
    key = ObjectKey("Table", str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
    parsed = parse_iceberg(key, spec.get("iceberg"))
    problem = iceberg.catalog_problem(
        f"{key.namespace}/{key.name}", parsed, location, default_catalog=default_catalog
    )
    if problem:
        raise InvalidSpecError(problem)


def table_catalog_problem(
    table: TableSpec, location: str | None, *, default_catalog: bool
) -> str | None:
    """:func:`check_table_iceberg`'s catalog rule for a parsed Table."""
    if table.format != "iceberg":
        return None
    return iceberg.catalog_problem(
        f"{table.namespace}/{table.name}", table.iceberg, location, default_catalog=default_catalog
    )


def check_table(manifest: Mapping[str, Any]) -> TableSpec:
    """The parsed Table, its ``spec.maintenance`` podTemplate (by the IngestionJob's rules),
    compaction schedule and time zone checked; else the first lakeop error."""
    spec = parse_table(manifest)
    where = f"Table {spec.namespace}/{spec.name}: spec.maintenance.compaction"
    m = spec.maintenance
    if m.schedule is not None:
        try:
            parse_schedule(m.schedule)
        except InvalidScheduleError as exc:
            raise InvalidScheduleError(f"{where}.schedule: {exc}") from exc
    if m.time_zone is not None:
        try:
            parse_time_zone(m.time_zone)
        except InvalidScheduleError as exc:
            raise InvalidScheduleError(f"{where}.timeZone: {exc}") from exc
    return spec
