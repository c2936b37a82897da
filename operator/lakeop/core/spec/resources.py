"""Manifests (plain dicts) parsed into typed, frozen specs, with the contract's defaults.

Everything downstream (handlers, plan building, the engine, ``lakeop validate``) works on
these values, so a manifest is checked in exactly one place and every error reads the same
way: ``Kind namespace/name: spec.field: problem, got value``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

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
from lakeop.core.spec.maintenance import MaintenanceSpec, parse_maintenance
from lakeop.core.spec.podtemplate import PodTemplate, parse_pod_template
from lakeop.core.spec.tenancy import location_problem
from lakeop.errors import InvalidSchemaError, InvalidSpecError

# Re-exported: callers import these from lakeop.core.spec.resources.
__all__ = ["API_GROUP", "API_VERSION", "DNS_LABEL", "ObjectKey", "object_key"]

API_GROUP = GROUP  # the group is spelled once, in lakeop.core.constants

FORMATS = ("parquet", "delta", "iceberg")
COMPRESSIONS = ("snappy", "zstd", "gzip", "none")
STRATEGIES = ("none", "date", "hash", "range", "list")
GRANULARITIES = ("year", "month", "day", "hour")
COMPATIBILITY_MODES = tuple(m.value for m in CompatibilityMode)
DELETION_POLICIES = ("Retain", "Delete")
SOURCE_FORMATS = ("csv", "json", "parquet")
SOURCE_SCHEMES = ("file", "s3", "https", "http")
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
class PartitionSpec:
    strategy: str = "none"
    column: str | None = None
    granularity: str = "day"
    buckets: int | None = None
    boundaries: tuple[Any, ...] = ()
    # list strategy: group key -> member values; hash=False keeps the dataclass hashable.
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict, hash=False)
    default: str = "default"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"strategy": self.strategy}
        if self.strategy == "none":
            return d
        d["column"] = self.column
        if self.strategy == "date":
            d["granularity"] = self.granularity
        elif self.strategy == "hash":
            d["buckets"] = self.buckets
        elif self.strategy == "range":
            d["boundaries"] = list(self.boundaries)
        elif self.strategy == "list":
            d["values"] = {k: list(v) for k, v in self.values.items()}
            d["default"] = self.default
        return d


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class IcebergSpec:
    """``spec.iceberg``: the catalog (a Secret key holding its SQLAlchemy URL) and the
    table's identifier in it (None: the defaults of :mod:`lakeop.core.lake.iceberg`)."""

    catalog_secret_ref: SecretKeyRef | None = None
    namespace: str | None = None
    name: str | None = None


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
class SourceSpec:
    uri: str
    format: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    secret_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"uri": self.uri, "format": self.format, "options": dict(self.options)}
        if self.secret_ref:
            d["secretRef"] = {"name": self.secret_ref}
        return d


@dataclass(frozen=True)
class SqlSourceSpec:
    url_secret_ref: SecretKeyRef
    query: str
    incremental_column: str | None = None
    split_column: str | None = None  # the key a scaled-out run splits on

    @property
    def split_key(self) -> str | None:
        """The column shares split on: ``splitColumn``, else ``incrementalColumn``."""
        return self.split_column or self.incremental_column

    def to_dict(self) -> dict[str, Any]:
        sql: dict[str, Any] = {
            "urlSecretRef": {"name": self.url_secret_ref.name, "key": self.url_secret_ref.key},
            "query": self.query,
        }
        if self.incremental_column:
            sql["incrementalColumn"] = self.incremental_column
        if self.split_column:
            sql["splitColumn"] = self.split_column
        return {"sql": sql}


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


_ICEBERG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")


def table_identifier(
    k8s_namespace: str, k8s_name: str, namespace: str | None, name: str | None
) -> tuple[str, str]:
    """``(namespace, name)`` of the Iceberg table: given, or the Table's namespace and its
    name with ``-`` as ``_``. Both are fenced: lower-case letters, digits and ``_``."""
    ns = namespace or k8s_namespace.replace("-", "_")
    nm = name or k8s_name.replace("-", "_")
    for what, value in (("namespace", ns), ("name", nm)):
        if not _ICEBERG_NAME.match(value):
            raise ValueError(
                f"iceberg.{what} {value!r}: lower-case letters, digits and '_' (at most 128), "
                "not starting with a digit"
            )
    return ns, nm


def parse_iceberg(key: ObjectKey, raw: Any) -> IcebergSpec:
    if raw is None:
        return IcebergSpec()
    if not isinstance(raw, Mapping):
        raise key.error("iceberg", "must be a mapping", raw)
    ref = raw.get("catalogSecretRef")
    secret = None
    if ref is not None:
        if not (
            isinstance(ref, Mapping)
            and isinstance(ref.get("name"), str)
            and isinstance(ref.get("key"), str)
            and ref["name"]
            and ref["key"]
        ):
            raise key.error("iceberg.catalogSecretRef", "must be {name: <secret>, key: <key>}")
        secret = SecretKeyRef(ref["name"], ref["key"])
    out = IcebergSpec(secret, opt_str(key, raw, "namespace"), opt_str(key, raw, "name"))
    try:
        table_identifier(key.namespace, key.name, out.namespace, out.name)
    except ValueError as e:
        raise key.error("iceberg", str(e), show=False) from e
    return out


def parse_partitioning(key: ObjectKey, raw: Any) -> PartitionSpec:
    p = "partitioning."
    if raw is None:
        return PartitionSpec()
    if not isinstance(raw, Mapping):
        raise key.error("partitioning", "must be a mapping", raw)
    strategy = choice(key, raw, "strategy", STRATEGIES, "none", prefix=p)
    if strategy == "none":
        return PartitionSpec()
    column = raw.get("column")
    if not isinstance(column, str) or not column:
        raise key.error(p + "column", f"required for strategy {strategy}", column)
    if strategy == "date":
        gran = choice(key, raw, "granularity", GRANULARITIES, "day", prefix=p)
        return PartitionSpec(strategy, column, granularity=gran)
    if strategy == "hash":
        buckets = raw.get("buckets")
        if not isinstance(buckets, int) or isinstance(buckets, bool) or not 1 <= buckets <= 4096:
            raise key.error(p + "buckets", "must be an integer 1..4096", buckets)
        return PartitionSpec(strategy, column, buckets=buckets)
    if strategy == "range":
        return PartitionSpec(strategy, column, boundaries=_boundaries(key, raw.get("boundaries")))
    values, default = _list_values(key, raw)
    return PartitionSpec(strategy, column, values=values, default=default)


def _boundaries(key: ObjectKey, raw: Any) -> tuple[Any, ...]:
    path = "partitioning.boundaries"
    if not isinstance(raw, list) or not raw:
        raise key.error(path, "must be a non-empty list", raw)
    numeric = all(isinstance(b, int | float) and not isinstance(b, bool) for b in raw)
    if not numeric and not all(isinstance(b, str) for b in raw):
        raise key.error(path, "must be all numbers or all strings (dates)", raw)
    if any(a >= b for a, b in itertools.pairwise(raw)):
        raise key.error(path, "must be strictly increasing", raw)
    return tuple(raw)


def _list_values(key: ObjectKey, raw: Mapping[str, Any]) -> tuple[dict[str, tuple[Any, ...]], str]:
    path = "partitioning.values"
    values = raw.get("values")
    if not isinstance(values, Mapping) or not values:
        raise key.error(path, "must be a non-empty mapping of group -> list of values", values)
    out: dict[str, tuple[Any, ...]] = {}
    seen: dict[Any, str] = {}
    for group, members in values.items():
        if not isinstance(group, str) or not re.match(r"^[A-Za-z0-9_.-]+$", group):
            raise key.error(f"{path}", "group keys must be [A-Za-z0-9_.-]+", group)
        if not isinstance(members, list) or not members:
            raise key.error(f"{path}.{group}", "must be a non-empty list", members)
        for m in members:
            if m in seen:
                raise key.error(f"{path}.{group}", f"value also in group {seen[m]}", m)
            seen[m] = group
        out[group] = tuple(members)
    default = raw.get("default", "default")
    if not isinstance(default, str) or not re.match(r"^[A-Za-z0-9_.-]+$", default):
        raise key.error("partitioning.default", "must match [A-Za-z0-9_.-]+", default)
    if default in out:
        raise key.error("partitioning.default", "must differ from the group keys", default)
    return out, default


# ---------------------------------------------------------------------------- SchemaVersion


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


def parse_source(key: ObjectKey, raw: Any) -> SourceSpec | SqlSourceSpec:
    """Parse ``spec.source``: either uri/format(/options/secretRef) or ``sql``."""
    if not isinstance(raw, Mapping):
        raise key.error("source", "required mapping", raw)
    if "sql" in raw:
        if "uri" in raw or "format" in raw:
            raise key.error("source", "give either sql or uri/format, not both", dict(raw))
        return _parse_sql(key, raw["sql"])
    p = "source."
    uri = raw.get("uri")
    if not isinstance(uri, str) or "://" not in uri:
        raise key.error(p + "uri", "must be a file://, s3:// or https:// URI", uri)
    scheme = uri.split("://", 1)[0]
    if scheme not in SOURCE_SCHEMES:
        raise key.error(p + "uri", f"scheme must be one of {', '.join(SOURCE_SCHEMES)}", uri)
    if scheme == "file" and not uri.startswith("file:///"):
        raise key.error(p + "uri", "a file:// URI needs an absolute path (file:///...)", uri)
    if scheme != "file" and not uri.split("://", 1)[1].split("/", 1)[0]:
        raise key.error(p + "uri", f"a {scheme}:// URI needs a bucket or host", uri)
    if any(unquote(segment) == ".." for segment in uri.split("://", 1)[1].split("/")):
        raise key.error(p + "uri", "a '..' segment is not allowed", uri)
    if scheme in ("http", "https") and any(c in uri for c in "*?["):
        raise key.error(p + "uri", "globs are only supported for file:// and s3://", uri)
    fmt = choice(key, raw, "format", SOURCE_FORMATS, "", prefix=p)
    options = raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise key.error(p + "options", "must be a mapping", options)
    _check_options(key, fmt, options)
    return SourceSpec(uri, fmt, dict(options), secret_name(key, raw, "secretRef", p))


CSV_OPTIONS = {
    "delimiter": str,
    "header": bool,
    "quoteChar": str,
    "nullValues": list,
    "timestampFormat": str,
    "skipRows": int,
}


def _check_options(key: ObjectKey, fmt: str, options: Mapping[str, Any]) -> None:
    allowed: dict[str, type] = CSV_OPTIONS if fmt == "csv" else {}
    for name, value in options.items():
        path = f"source.options.{name}"
        if name not in allowed:
            raise key.error(path, f"unknown option for format {fmt}", value)
        if not isinstance(value, allowed[name]) or (
            allowed[name] is int and isinstance(value, bool)
        ):
            raise key.error(path, f"must be a {allowed[name].__name__}", value)
        _check_option_value(key, path, name, value)
    if "quoteChar" in options and options["quoteChar"] == options.get("delimiter", ","):
        raise key.error(
            "source.options.quoteChar", "must differ from the delimiter", options["quoteChar"]
        )


def _check_option_value(key: ObjectKey, path: str, name: str, value: Any) -> None:
    """The ranges the CSV reader accepts, refused here rather than failing mid-run."""
    if name in ("delimiter", "quoteChar") and len(value) != 1:
        raise key.error(path, "must be a single character", value)
    if name in ("delimiter", "quoteChar") and value in "\r\n":
        raise key.error(path, "cannot be a line break", value)
    if name == "skipRows" and not 0 <= value < 2**31:
        raise key.error(path, "must be an integer 0..2147483647", value)
    if name == "nullValues" and not all(isinstance(v, str) for v in value):
        raise key.error(path, "must be a list of strings", value)


def _parse_sql(key: ObjectKey, raw: Any) -> SqlSourceSpec:
    p = "source.sql."
    if not isinstance(raw, Mapping):
        raise key.error("source.sql", "must be a mapping", raw)
    ref = raw.get("urlSecretRef")
    if (
        not isinstance(ref, Mapping)
        or not isinstance(ref.get("name"), str)
        or not isinstance(ref.get("key"), str)
        or not ref["name"]
        or not ref["key"]
    ):
        raise key.error(p + "urlSecretRef", "must be {name: <secret>, key: <key>}", ref)
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise key.error(p + "query", "required non-empty string", query)
    return SqlSourceSpec(
        url_secret_ref=SecretKeyRef(ref["name"], ref["key"]),
        query=query,
        incremental_column=opt_str(key, raw, "incrementalColumn", p),
        split_column=opt_str(key, raw, "splitColumn", p),
    )


def parse_source_dict(raw: Mapping[str, Any]) -> SourceSpec | SqlSourceSpec:
    """Parse a source rendered by ``to_dict()`` (used by :mod:`lakeop.core.runs.plan`)."""
    return parse_source(ObjectKey("RunPlan", "-", "-"), raw)
