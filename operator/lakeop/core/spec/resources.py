"""Manifests (plain dicts) parsed into typed, frozen specs, with the contract's defaults.

Everything downstream (handlers, plan building, the engine, ``lakeop validate``) works on
these values, so a manifest is checked in exactly one place and every error reads the same
way: ``Kind namespace/name: spec.field: problem, got value``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.constants import API_VERSION, GROUP
from lakeop.core.schema.compat import DEFAULT_MODE as DEFAULT_COMPATIBILITY_MODE
from lakeop.core.schema.compat import CompatibilityMode
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.core.spec.fields import (
    DNS_LABEL,
    ObjectKey,
    choice,
    int_field,
    object_key,
    opt_int,
    opt_str,
    ref_name,
    secret_name,
    spec_of,
)
from lakeop.core.spec.layout import IcebergSpec, PartitionSpec, parse_iceberg, parse_partitioning
from lakeop.core.spec.maintenance import MaintenanceSpec, parse_maintenance
from lakeop.core.spec.podtemplate import PodTemplate, parse_pod_template
from lakeop.core.spec.sources import SourceSpec, SqlSourceSpec, parse_source
from lakeop.core.spec.tenancy import location_problem
from lakeop.errors import InvalidSchemaError, InvalidSpecError

# Re-exported: callers import these from lakeop.core.spec.resources.
__all__ = ["API_GROUP", "API_VERSION", "DNS_LABEL", "ObjectKey", "object_key"]

API_GROUP = GROUP  # the group is spelled once, in lakeop.core.constants

FORMATS = ("parquet", "delta", "iceberg")
COMPRESSIONS = ("snappy", "zstd", "gzip", "none")
COMPATIBILITY_MODES = tuple(m.value for m in CompatibilityMode)
DELETION_POLICIES = ("Retain", "Delete")
MODES = ("append", "overwrite-partitions")
INVALID_RECORD_POLICIES = ("fail", "skip", "quarantine")

# Every default of the three kinds, once; everything downstream reads the parsed spec.
DEFAULT_FORMAT = "parquet"
DEFAULT_COMPRESSION = "snappy"
DEFAULT_COMPATIBILITY = DEFAULT_COMPATIBILITY_MODE.value
DEFAULT_DELETION_POLICY = "Retain"
DEFAULT_MODE = "append"
DEFAULT_ON_INVALID_RECORDS = "fail"
DEFAULT_BATCH_SIZE = 10_000
DEFAULT_PRIORITY = 0
DEFAULT_BACKOFF_LIMIT = 3
DEFAULT_PARALLELISM = 1
#: ``successfulRunsHistoryLimit`` / ``failedRunsHistoryLimit``, as a CronJob's
DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT = 3
DEFAULT_FAILED_RUNS_HISTORY_LIMIT = 1


@dataclass(frozen=True)
class TableSpec:
    namespace: str
    name: str
    location: str | None = None
    format: str = DEFAULT_FORMAT
    compression: str = DEFAULT_COMPRESSION
    partitioning: PartitionSpec = field(default_factory=PartitionSpec)
    compatibility: str = DEFAULT_COMPATIBILITY
    deletion_policy: str = DEFAULT_DELETION_POLICY
    storage_secret_ref: str | None = None
    description: str | None = None
    iceberg: IcebergSpec = field(default_factory=IcebergSpec)
    maintenance: MaintenanceSpec = field(default_factory=MaintenanceSpec, hash=False)


@dataclass(frozen=True)
class SchemaVersionSpec:
    namespace: str
    name: str
    table_ref: str
    version: int
    schema: Schema
    fields: tuple[dict[str, Any], ...] = field(hash=False)
    description: str | None = None


@dataclass(frozen=True)
class IngestionJobSpec:
    namespace: str
    name: str
    table_ref: str
    source: SourceSpec | SqlSourceSpec
    mode: str = DEFAULT_MODE
    batch_size: int = DEFAULT_BATCH_SIZE
    priority: int = DEFAULT_PRIORITY
    schedule: str | None = None
    time_zone: str | None = None
    suspend: bool = False
    on_invalid_records: str = DEFAULT_ON_INVALID_RECORDS
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    resources: dict[str, Any] = field(default_factory=dict, hash=False)
    parallelism: int = DEFAULT_PARALLELISM
    pod_template: PodTemplate | None = field(default=None, hash=False)
    #: ``Forbid``, ``Allow`` or ``Replace``; None: the default, decided by
    #: :func:`lakeop.core.runs.schedule.parse_concurrency_policy` (with the schedule's errors)
    concurrency_policy: str | None = None
    starting_deadline_seconds: int | None = None
    successful_runs_history_limit: int = DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT
    failed_runs_history_limit: int = DEFAULT_FAILED_RUNS_HISTORY_LIMIT
    #: the run Job's own settings; None: not set on the Job (ttl: the operator's default)
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    priority_class_name: str | None = None


# ---------------------------------------------------------------------------- Table


def parse_table(manifest: Mapping[str, Any]) -> TableSpec:
    key = object_key(manifest, "Table")
    spec = spec_of(manifest, key)
    location = opt_str(key, spec, "location")
    if location is not None:
        problem = location_problem(location)
        if problem:
            raise key.error("location", problem, show=False)
    return TableSpec(
        namespace=key.namespace,
        name=key.name,
        location=location.rstrip("/") if location else None,
        format=choice(key, spec, "format", FORMATS, DEFAULT_FORMAT),
        compression=choice(key, spec, "compression", COMPRESSIONS, DEFAULT_COMPRESSION),
        partitioning=parse_partitioning(key, spec.get("partitioning")),
        compatibility=_compatibility(key, spec),
        deletion_policy=choice(
            key, spec, "deletionPolicy", DELETION_POLICIES, DEFAULT_DELETION_POLICY
        ),
        storage_secret_ref=secret_name(key, spec, "storageSecretRef"),
        description=opt_str(key, spec, "description"),
        iceberg=parse_iceberg(key, spec.get("iceberg")),
        maintenance=parse_maintenance(key, spec.get("maintenance")),
    )


def _compatibility(key: ObjectKey, spec: Mapping[str, Any]) -> str:
    return choice(key, spec, "compatibility", COMPATIBILITY_MODES, DEFAULT_COMPATIBILITY)


def table_compatibility(manifest: Mapping[str, Any]) -> str:
    """A Table's ``spec.compatibility`` (its default when unset), read on its own: judging a
    SchemaVersion needs only the mode, even of a Table whose other fields do not parse
    (an unknown mode, which its CRD refuses, judges as the default)."""
    spec = manifest.get("spec") if isinstance(manifest, Mapping) else None
    try:
        return _compatibility(
            ObjectKey("Table", "-", "-"), spec if isinstance(spec, Mapping) else {}
        )
    except InvalidSpecError:
        return DEFAULT_COMPATIBILITY


def table_format(manifest: Mapping[str, Any]) -> str:
    """A Table's ``spec.format`` (its default when unset), read on its own like
    :func:`table_compatibility`: what the table's format can apply judges a SchemaVersion."""
    spec = manifest.get("spec") if isinstance(manifest, Mapping) else None
    try:
        return choice(
            ObjectKey("Table", "-", "-"),
            spec if isinstance(spec, Mapping) else {},
            "format",
            FORMATS,
            DEFAULT_FORMAT,
        )
    except InvalidSpecError:
        return DEFAULT_FORMAT


# ---------------------------------------------------------------------------- SchemaVersion


def schema_version_table(manifest: Mapping[str, Any]) -> str:
    """A SchemaVersion's ``spec.tableRef`` read on its own ("" when it is not a name): the
    table to count a SchemaVersion whose spec does not parse against."""
    spec = manifest.get("spec") if isinstance(manifest, Mapping) else None
    ref = spec.get("tableRef") if isinstance(spec, Mapping) else None
    return ref if isinstance(ref, str) and DNS_LABEL.match(ref) else ""


def parse_schema_version(manifest: Mapping[str, Any]) -> SchemaVersionSpec:
    key = object_key(manifest, "SchemaVersion")
    spec = spec_of(manifest, key)
    table_ref = ref_name(key, spec, "tableRef", "table")
    version = spec.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise key.error("version", "must be a positive integer", version)
    raw_fields = spec.get("fields")
    try:
        schema = parse_fields(raw_fields)
    except InvalidSchemaError as e:
        raise InvalidSchemaError(f"{key}: spec.fields: {e}") from e
    return SchemaVersionSpec(
        namespace=key.namespace,
        name=key.name,
        table_ref=table_ref,
        version=version,
        schema=schema,
        fields=tuple(dict(f) for f in raw_fields or ()),
        description=opt_str(key, spec, "description"),
    )


# ---------------------------------------------------------------------------- IngestionJob


def parse_ingestion_job(manifest: Mapping[str, Any]) -> IngestionJobSpec:
    key = object_key(manifest, "IngestionJob")
    spec = spec_of(manifest, key)
    table_ref = ref_name(key, spec, "tableRef", "table")
    suspend = spec.get("suspend", False)
    if not isinstance(suspend, bool):
        raise key.error("suspend", "must be true or false", suspend)
    resources = spec.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise key.error("resources", "must be a mapping", resources)
    priority = spec.get("priority", DEFAULT_PRIORITY)
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) >= 2**31:
        raise key.error("priority", "must be an integer of at most 32 bits", priority)
    source = parse_source(key, spec.get("source"))
    parallelism = int_field(key, spec, "parallelism", DEFAULT_PARALLELISM, 1)
    if isinstance(source, SqlSourceSpec) and parallelism > 1 and not source.split_key:
        raise key.error(
            "source.sql.splitColumn",
            f"required with spec.parallelism {parallelism} when the query has no "
            "incrementalColumn: name an integer, date or timestamp column to split the rows "
            "on (or set spec.parallelism to 1)",
            show=False,
        )
    return IngestionJobSpec(
        namespace=key.namespace,
        name=key.name,
        table_ref=table_ref,
        source=source,
        mode=choice(key, spec, "mode", MODES, DEFAULT_MODE),
        batch_size=int_field(key, spec, "batchSize", DEFAULT_BATCH_SIZE, 1),
        priority=priority,
        schedule=opt_str(key, spec, "schedule"),
        time_zone=opt_str(key, spec, "timeZone"),
        suspend=suspend,
        on_invalid_records=choice(
            key, spec, "onInvalidRecords", INVALID_RECORD_POLICIES, DEFAULT_ON_INVALID_RECORDS
        ),
        backoff_limit=int_field(key, spec, "backoffLimit", DEFAULT_BACKOFF_LIMIT, 0),
        resources=dict(resources),
        parallelism=parallelism,
        pod_template=parse_pod_template(key, spec.get("podTemplate")),
        concurrency_policy=opt_str(key, spec, "concurrencyPolicy"),
        starting_deadline_seconds=opt_int(key, spec, "startingDeadlineSeconds", 0),
        successful_runs_history_limit=int_field(
            key, spec, "successfulRunsHistoryLimit", DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT, 0
        ),
        failed_runs_history_limit=int_field(
            key, spec, "failedRunsHistoryLimit", DEFAULT_FAILED_RUNS_HISTORY_LIMIT, 0
        ),
        active_deadline_seconds=opt_int(key, spec, "activeDeadlineSeconds", 1),
        ttl_seconds_after_finished=opt_int(key, spec, "ttlSecondsAfterFinished", 0),
        priority_class_name=opt_str(key, spec, "priorityClassName"),
    )
