"""The run plan: everything one ingestion run needs, decided before the run starts.

The operator builds a :class:`RunPlan` from the Table, its current SchemaVersion and the
IngestionJob, and hands it to the Job pod as JSON in an environment variable; ``lakeop
ingest -f`` builds the same plan from files. The engine therefore never reads manifests or
the Kubernetes API. A plan never holds secret values, only the names of environment variables
that carry them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.lake.partitioning import layout_problem
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.core.spec.fields import LABEL_RULE, SUBDOMAIN_RULE, label_problem, subdomain_problem
from lakeop.core.spec.resources import (
    COMPRESSIONS,
    FORMATS,
    INVALID_RECORD_POLICIES,
    MODES,
    IngestionJobSpec,
    ObjectKey,
    PartitionSpec,
    SchemaVersionSpec,
    SourceSpec,
    SqlSourceSpec,
    TableSpec,
    parse_partitioning,
    parse_source_dict,
)
from lakeop.core.spec.tenancy import AllowedLocations, location_problem
from lakeop.errors import InvalidSpecError

PLAN_FORMAT = 1
STORAGE_ENV_PREFIX = "LAKEOP_STORAGE_"
SOURCE_ENV_PREFIX = "LAKEOP_SOURCE_"
SQL_URL_ENV = "LAKEOP_SOURCE_SQL_URL"


def resolve_location(
    default_root: str | None, namespace: str, name: str, explicit: str | None
) -> str:
    """The table's location URL: the explicit one, else ``<default_root>/<namespace>/<name>``.

    Bare absolute paths become ``file://`` URLs so that every location has a scheme.
    """
    where = f"Table {namespace}/{name}"
    if explicit:
        return _as_url(explicit.rstrip("/"), f"{where}: spec.location")
    if not default_root:
        raise InvalidSpecError(
            f"{where}: spec.location: not set and no default location "
            "configured (LAKEOP_DEFAULT_LOCATION)"
        )
    # the names become path segments of the default location: fence them first
    if label_problem(namespace):
        raise InvalidSpecError(f"{where}: metadata.namespace: {LABEL_RULE}, got {namespace!r}")
    if subdomain_problem(name):
        raise InvalidSpecError(f"{where}: metadata.name: {SUBDOMAIN_RULE}, got {name!r}")
    root = _as_url(default_root.rstrip("/"), f"{where}: default location")
    return f"{root}/{namespace}/{name}"


def _as_url(location: str, what: str) -> str:
    problem = location_problem(location)
    if problem:
        raise InvalidSpecError(f"{what}: {problem}")
    return "file://" + location if location.startswith("/") else location


def check_layout(table: str, partitioning: PartitionSpec, schema: Schema, version: str) -> None:
    """Refuse a schema the table cannot be partitioned by (:func:`layout_problem`), naming
    the table, the field and the SchemaVersion; before any claim, Job or write."""
    problem = layout_problem(partitioning, schema)
    if problem is not None:
        path, message = problem
        raise InvalidSpecError(f"{table}: spec.{path}: {message} (in {version})")


@dataclass(frozen=True)
class PlanTable:
    """The part of a Table a run needs (location already resolved)."""

    name: str
    location: str
    compression: str = "snappy"
    partitioning: PartitionSpec = field(default_factory=PartitionSpec)
    format: str = "parquet"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "compression": self.compression,
            "partitioning": self.partitioning.to_dict(),
            "format": self.format,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanTable:
        key = ObjectKey("RunPlan", "-", str(d.get("name")))
        return cls(
            name=str(d["name"]),
            location=str(d["location"]),
            compression=str(d.get("compression", "snappy")),
            partitioning=parse_partitioning(key, d.get("partitioning")),
            format=str(d.get("format", "parquet")),
        )


@dataclass(frozen=True)
class RunPlan:
    namespace: str
    job: str
    run_id: str
    table: PlanTable
    schema_version: int
    schema_fields: tuple[dict[str, Any], ...] = field(hash=False)
    source: SourceSpec | SqlSourceSpec
    mode: str = "append"
    batch_size: int = 10_000
    on_invalid_records: str = "fail"
    # Names of the environment variables carrying credentials (never the values).
    storage_env_prefix: str = STORAGE_ENV_PREFIX
    source_env_prefix: str = SOURCE_ENV_PREFIX
    sql_url_env: str = SQL_URL_ENV
    parallelism: int = 1
    #: the run's claim lease in seconds (the operator's LAKEOP_JOB_CLAIM_LEASE_SECONDS); None:
    #: the engine's default. ``LAKEOP_CLAIM_LEASE_SECONDS`` in the run's environment wins.
    claim_lease_seconds: float | None = None
    # LAKEOP_ALLOWED_LOCATIONS as it applies to this namespace, so the Job pod, which has
    # the volumes, checks the location again with its symbolic links resolved (empty: none)
    allowed_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Every name below becomes a storage path (claims, staging, commits, quarantine):
        # a plan, from the operator, a file or a test, is refused before any I/O otherwise.
        for what, value, problem in (
            ("namespace", self.namespace, label_problem),
            ("job", self.job, subdomain_problem),
            ("runId", self.run_id, label_problem),
            ("table.name", self.table.name, subdomain_problem),
        ):
            if problem(value):
                rule = LABEL_RULE if problem is label_problem else SUBDOMAIN_RULE
                raise InvalidSpecError(f"run plan: {what}: {rule}, got {value!r}")
        where = location_problem(self.table.location)
        if where:
            raise InvalidSpecError(f"run plan: table.location: {where}")
        for what, value, allowed in (
            ("table.compression", self.table.compression, COMPRESSIONS),
            ("table.format", self.table.format, FORMATS),
            ("mode", self.mode, MODES),
            ("onInvalidRecords", self.on_invalid_records, INVALID_RECORD_POLICIES),
        ):
            if value not in allowed:
                raise InvalidSpecError(
                    f"run plan: {what}: must be one of {', '.join(allowed)}, got {value!r}"
                )
        for what, number in (
            ("batchSize", self.batch_size),
            ("parallelism", self.parallelism),
            ("schemaVersion", self.schema_version),
        ):
            if number < 1:
                raise InvalidSpecError(f"run plan: {what}: must be an integer >= 1, got {number}")

    @property
    def schema(self) -> Schema:
        return parse_fields(list(self.schema_fields))

    def to_dict(self) -> dict[str, Any]:
        return {
            "planFormat": PLAN_FORMAT,
            "namespace": self.namespace,
            "job": self.job,
            "runId": self.run_id,
            "table": self.table.to_dict(),
            "schemaVersion": self.schema_version,
            "schemaFields": [dict(f) for f in self.schema_fields],
            "source": self.source.to_dict(),
            "mode": self.mode,
            "batchSize": self.batch_size,
            "onInvalidRecords": self.on_invalid_records,
            "storageEnvPrefix": self.storage_env_prefix,
            "sourceEnvPrefix": self.source_env_prefix,
            "sqlUrlEnv": self.sql_url_env,
            "parallelism": self.parallelism,
            **({"allowedPrefixes": list(self.allowed_prefixes)} if self.allowed_prefixes else {}),
            **(
                {}
                if self.claim_lease_seconds is None
                else {"claimLeaseSeconds": self.claim_lease_seconds}
            ),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunPlan:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidSpecError(f"run plan: not valid JSON: {e}") from e
        if not isinstance(d, dict):
            raise InvalidSpecError(f"run plan: must be a JSON object, got {type(d).__name__}")
        try:
            plan = cls(
                namespace=str(d["namespace"]),
                job=str(d["job"]),
                run_id=str(d["runId"]),
                table=PlanTable.from_dict(d["table"]),
                schema_version=int(d["schemaVersion"]),
                schema_fields=tuple(d["schemaFields"]),
                source=parse_source_dict(d["source"]),
                mode=str(d.get("mode", "append")),
                batch_size=int(d.get("batchSize", 10_000)),
                on_invalid_records=str(d.get("onInvalidRecords", "fail")),
                storage_env_prefix=str(d.get("storageEnvPrefix") or STORAGE_ENV_PREFIX),
                source_env_prefix=str(d.get("sourceEnvPrefix") or SOURCE_ENV_PREFIX),
                sql_url_env=str(d.get("sqlUrlEnv") or SQL_URL_ENV),
                parallelism=int(d.get("parallelism", 1)),
                allowed_prefixes=tuple(str(p) for p in d.get("allowedPrefixes") or ()),
                claim_lease_seconds=None
                if d.get("claimLeaseSeconds") is None
                else float(d["claimLeaseSeconds"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidSpecError(f"run plan: missing or bad field: {e}") from e
        check_layout(
            f"run plan: table {plan.table.name}",
            plan.table.partitioning,
            plan.schema,
            f"schema version {plan.schema_version}",
        )
        return plan


def build_plan(
    table: TableSpec,
    schema_version: SchemaVersionSpec,
    job: IngestionJobSpec,
    run_id: str,
    default_root: str | None,
    *,
    allowed: AllowedLocations | None = None,
) -> RunPlan:
    """Combine the three specs into a plan (pure: the run id is passed in)."""
    if job.table_ref != table.name or schema_version.table_ref != table.name:
        raise InvalidSpecError(
            f"IngestionJob {job.namespace}/{job.name}: spec.tableRef: {job.table_ref!r} does not "
            f"match Table {table.name!r} / SchemaVersion tableRef {schema_version.table_ref!r}"
        )
    check_layout(
        f"Table {table.namespace}/{table.name}",
        table.partitioning,
        schema_version.schema,
        f"SchemaVersion {schema_version.namespace}/{schema_version.name}, version "
        f"{schema_version.version}",
    )
    location = resolve_location(default_root, table.namespace, table.name, table.location)
    source = job.source
    return RunPlan(
        namespace=job.namespace,
        job=job.name,
        run_id=run_id,
        table=PlanTable(table.name, location, table.compression, table.partitioning, table.format),
        schema_version=schema_version.version,
        schema_fields=schema_version.fields,
        source=source,
        mode=job.mode,
        batch_size=job.batch_size,
        on_invalid_records=job.on_invalid_records,
        parallelism=job.parallelism,
        allowed_prefixes=tuple(allowed.prefixes_for(job.namespace)) if allowed else (),
    )
