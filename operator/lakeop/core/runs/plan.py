"""The run plan: everything one ingestion run needs, decided before the run starts.

The operator builds a :class:`RunPlan` from the Table, its current SchemaVersion and the
IngestionJob, and hands it to the Job pod as JSON in an environment variable; ``lakeop
ingest -f`` builds the same plan from files. The engine therefore never reads manifests or
the Kubernetes API. A plan never holds secret values, only the names of environment variables
that carry them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.constants import SOURCE_ENV_PREFIX, SOURCE_SQL_URL_ENV, STORAGE_ENV_PREFIX
from lakeop.core.lake.partitioning import layout_problem
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.core.spec.fields import LABEL_RULE, SUBDOMAIN_RULE, label_problem, subdomain_problem
from lakeop.core.spec.layout import PartitionSpec, parse_partitioning, table_identifier
from lakeop.core.spec.resources import (
    COMPRESSIONS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_COMPRESSION,
    DEFAULT_FORMAT,
    DEFAULT_MODE,
    DEFAULT_ON_INVALID_RECORDS,
    DEFAULT_PARALLELISM,
    FORMATS,
    INVALID_RECORD_POLICIES,
    MODES,
    IngestionJobSpec,
    ObjectKey,
    SchemaVersionSpec,
    TableSpec,
)
from lakeop.core.spec.sources import SourceSpec, SqlSourceSpec, parse_source_dict
from lakeop.core.spec.tenancy import (
    AllowedLocations,
    location_problem,
    resolve_location,
    table_location,
)
from lakeop.errors import InvalidSpecError

__all__ = ["PlanTable", "RunPlan", "build_plan", "check_layout", "resolve_location"]

PLAN_FORMAT = 1
SQL_URL_ENV = SOURCE_SQL_URL_ENV


def check_layout(table: str, partitioning: PartitionSpec, schema: Schema, version: str) -> None:
    """Refuse a schema the table cannot be partitioned by (:func:`layout_problem`), naming
    the table, the field and the SchemaVersion; before any claim, Job or write."""
    problem = layout_problem(partitioning, schema)
    if problem is not None:
        path, message = problem
        raise InvalidSpecError(f"{table}: spec.{path}: {message} (in {version})")


def iceberg_identifier(table: TableSpec) -> tuple[str, str] | None:
    """The Iceberg ``(namespace, name)`` of a ``format: iceberg`` Table, None otherwise."""
    if table.format != "iceberg":
        return None
    return table_identifier(
        table.namespace, table.name, table.iceberg.namespace, table.iceberg.name
    )


@dataclass(frozen=True)
class PlanTable:
    """The part of a Table a run needs (location already resolved)."""

    name: str
    location: str
    compression: str = DEFAULT_COMPRESSION
    partitioning: PartitionSpec = field(default_factory=PartitionSpec)
    format: str = DEFAULT_FORMAT
    #: ``format: iceberg``: the table's ``(namespace, name)`` in its catalog (the catalog's
    #: URL is never in a plan: the run reads it from its environment)
    iceberg: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "location": self.location,
            "compression": self.compression,
            "partitioning": self.partitioning.to_dict(),
            "format": self.format,
        }
        if self.iceberg is not None:
            d["iceberg"] = {"namespace": self.iceberg[0], "name": self.iceberg[1]}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanTable:
        key = ObjectKey("RunPlan", "-", str(d.get("name")))
        return cls(
            name=str(d["name"]),
            location=str(d["location"]),
            compression=str(d.get("compression", DEFAULT_COMPRESSION)),
            partitioning=parse_partitioning(key, d.get("partitioning")),
            format=str(d.get("format", DEFAULT_FORMAT)),
            iceberg=_iceberg_of(d.get("iceberg")),
        )


def plan_table(table: TableSpec, location: str) -> PlanTable:
    """What a run (or the operator creating the table) needs of ``table`` at ``location``."""
    return PlanTable(
        table.name,
        location,
        table.compression,
        table.partitioning,
        table.format,
        iceberg_identifier(table),
    )


def _iceberg_of(raw: Any) -> tuple[str, str] | None:
    if not isinstance(raw, dict):
        return None
    return table_identifier("-", "-", str(raw.get("namespace")), str(raw.get("name")))


@dataclass(frozen=True)
class RunPlan:
    namespace: str
    job: str
    run_id: str
    table: PlanTable
    schema_version: int
    schema_fields: tuple[dict[str, Any], ...] = field(hash=False)
    source: SourceSpec | SqlSourceSpec
    mode: str = DEFAULT_MODE
    batch_size: int = DEFAULT_BATCH_SIZE
    on_invalid_records: str = DEFAULT_ON_INVALID_RECORDS
    # Names of the environment variables carrying credentials (never the values).
    storage_env_prefix: str = STORAGE_ENV_PREFIX
    source_env_prefix: str = SOURCE_ENV_PREFIX
    sql_url_env: str = SQL_URL_ENV
    parallelism: int = DEFAULT_PARALLELISM
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
                mode=str(d.get("mode", DEFAULT_MODE)),
                batch_size=int(d.get("batchSize", DEFAULT_BATCH_SIZE)),
                on_invalid_records=str(d.get("onInvalidRecords", DEFAULT_ON_INVALID_RECORDS)),
                storage_env_prefix=str(d.get("storageEnvPrefix") or STORAGE_ENV_PREFIX),
                source_env_prefix=str(d.get("sourceEnvPrefix") or SOURCE_ENV_PREFIX),
                sql_url_env=str(d.get("sqlUrlEnv") or SQL_URL_ENV),
                parallelism=int(d.get("parallelism", DEFAULT_PARALLELISM)),
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
    real_location: Callable[[str], str] | None = None,
) -> RunPlan:
    """Combine the three specs into a plan (pure: the run id is passed in).

    Every entrance builds its plan here (the operator before it creates any Job, ``lakeop
    ingest -f`` before it claims anything), so the rules a run depends on are checked here
    once: the references agree, the table can be partitioned by the schema
    (:func:`check_layout`), and the location resolves and is allowed for the namespace
    (:func:`lakeop.core.spec.tenancy.table_location`; ``real_location`` is the caller's edge
    that follows symbolic links). Raises a :class:`~lakeop.errors.TerminalError` naming the
    object and field otherwise.
    """
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
    location = table_location(
        table.namespace,
        table.name,
        table.location,
        default_root,
        allowed=allowed,
        resolve=real_location,
    )
    source = job.source
    return RunPlan(
        namespace=job.namespace,
        job=job.name,
        run_id=run_id,
        table=plan_table(table, location),
        schema_version=schema_version.version,
        schema_fields=schema_version.fields,
        source=source,
        mode=job.mode,
        batch_size=job.batch_size,
        on_invalid_records=job.on_invalid_records,
        parallelism=job.parallelism,
        allowed_prefixes=tuple(allowed.prefixes_for(job.namespace)) if allowed else (),
    )
