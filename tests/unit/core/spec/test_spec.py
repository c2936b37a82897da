"""Manifest parsing: defaults from the contract, and errors that name object, field, value."""

from __future__ import annotations

from typing import Any

import pytest

from lakeop.core.schema.types import PrimitiveType
from lakeop.core.spec.layout import PartitionSpec
from lakeop.core.spec.resources import parse_ingestion_job, parse_schema_version, parse_table
from lakeop.core.spec.sources import SourceSpec, SqlSourceSpec
from lakeop.errors import InvalidSchemaError, InvalidSpecError


def manifest(kind: str, spec: Any, name: str = "t1", ns: str = "analytics") -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def test_table_defaults() -> None:
    t = parse_table(manifest("Table", {}))
    assert (t.namespace, t.name, t.location) == ("analytics", "t1", None)
    assert (t.format, t.compression, t.compatibility, t.deletion_policy) == (
        "parquet",
        "snappy",
        "BACKWARD",
        "Retain",
    )
    assert t.partitioning == PartitionSpec("none")
    assert t.storage_secret_ref is None


def test_table_full() -> None:
    t = parse_table(
        manifest(
            "Table",
            {
                "location": "s3://lake/a/b/",
                "compression": "zstd",
                "partitioning": {"strategy": "date", "column": "ts", "granularity": "hour"},
                "compatibility": "FULL_TRANSITIVE",
                "deletionPolicy": "Delete",
                "storageSecretRef": {"name": "lake-s3"},
            },
        )
    )
    assert t.location == "s3://lake/a/b"
    assert t.partitioning == PartitionSpec("date", "ts", granularity="hour")
    assert t.storage_secret_ref == "lake-s3"
    hash(t)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"strategy": "hash", "column": "u", "buckets": 16},
            PartitionSpec("hash", "u", buckets=16),
        ),
        (
            {"strategy": "range", "column": "v", "boundaries": [0, 100, 1000]},
            PartitionSpec("range", "v", boundaries=(0, 100, 1000)),
        ),
        (
            {
                "strategy": "list",
                "column": "c",
                "values": {"eu": ["DE", "FR"], "us": ["US"]},
                "default": "other",
            },
            PartitionSpec("list", "c", values={"eu": ("DE", "FR"), "us": ("US",)}, default="other"),
        ),
        ({"strategy": "date", "column": "ts"}, PartitionSpec("date", "ts", granularity="day")),
    ],
)
def test_partitioning(raw: dict[str, Any], expected: PartitionSpec) -> None:
    p = parse_table(manifest("Table", {"partitioning": raw})).partitioning
    assert p == expected
    assert parse_table(manifest("Table", {"partitioning": p.to_dict()})).partitioning == p


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"compression": "lz4"},
            "spec.compression: must be one of snappy, zstd, gzip, none, got 'lz4'",
        ),
        (
            {"partitioning": {"strategy": "hash", "column": "u", "buckets": 0}},
            "spec.partitioning.buckets: must be an integer 1..4096, got 0",
        ),
        (
            {"partitioning": {"strategy": "hash", "buckets": 4}},
            "spec.partitioning.column: required for strategy hash, got None",
        ),
        (
            {"partitioning": {"strategy": "range", "column": "v", "boundaries": [5, 1]}},
            "spec.partitioning.boundaries: must be strictly increasing, got [5, 1]",
        ),
        (
            {
                "partitioning": {
                    "strategy": "list",
                    "column": "c",
                    "values": {"a": ["x"], "b": ["x"]},
                }
            },
            "spec.partitioning.values.b: value also in group a, got 'x'",
        ),
        (
            {"partitioning": {"strategy": "date", "column": "ts", "granularity": "week"}},
            "spec.partitioning.granularity: must be one of year, month, day, hour, got 'week'",
        ),
        (
            {"location": "relative/dir"},
            "spec.location: location 'relative/dir' is neither a URL (scheme://...) nor an "
            "absolute path",
        ),
        (
            {"location": "file://typo/lake"},
            "spec.location: location 'file://typo/lake': file:// needs an absolute path",
        ),
        ({"location": "file:lake"}, "spec.location: location 'file:lake' is neither a URL"),
        ({"location": "s3://b/a/../c"}, "spec.location: location 's3://b/a/../c' contains a '..'"),
        ({"location": "gs://b/t"}, "spec.location: location 'gs://b/t': the scheme must be"),
        ({"storageSecretRef": "lake"}, "spec.storageSecretRef: must be {name: <secret name>}"),
    ],
)
def test_table_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as e:
        parse_table(manifest("Table", spec))
    assert message in str(e.value)
    assert str(e.value).startswith("Table analytics/t1: ")


def test_wrong_kind_and_missing_name() -> None:
    with pytest.raises(InvalidSpecError, match="kind: expected Table, got 'IngestionJob'"):
        parse_table(manifest("IngestionJob", {}))
    with pytest.raises(InvalidSpecError, match=r"metadata.name: required"):
        parse_table({"kind": "Table", "metadata": {}, "spec": {}})


def test_schema_version() -> None:
    sv = parse_schema_version(
        manifest(
            "SchemaVersion",
            {
                "tableRef": "t1",
                "version": 2,
                "fields": [
                    {"name": "id", "type": "long", "nullable": False},
                    {"name": "s", "type": "string"},
                ],
            },
            name="t1-v2",
        )
    )
    assert (sv.table_ref, sv.version, sv.name) == ("t1", 2, "t1-v2")
    assert sv.schema.names() == ["id", "s"]
    assert sv.schema.fields[0].type == PrimitiveType("long")
    assert sv.fields[0] == {"name": "id", "type": "long", "nullable": False}


@pytest.mark.parametrize(
    ("spec", "err", "message"),
    [
        (
            {"tableRef": "t1", "version": 0, "fields": [{"name": "a", "type": "int"}]},
            InvalidSpecError,
            "spec.version: must be a positive integer, got 0",
        ),
        (
            {"version": 1, "fields": [{"name": "a", "type": "int"}]},
            InvalidSpecError,
            "spec.tableRef: required table name",
        ),
        (
            {"tableRef": "t1", "version": 1, "fields": [{"name": "a", "type": "strng"}]},
            InvalidSchemaError,
            'SchemaVersion analytics/t1: spec.fields: a: unknown type "strng"',
        ),
    ],
)
def test_schema_version_errors(spec: dict[str, Any], err: type[Exception], message: str) -> None:
    with pytest.raises(err) as e:
        parse_schema_version(manifest("SchemaVersion", spec))
    assert message in str(e.value)


def test_job_defaults() -> None:
    j = parse_ingestion_job(
        manifest(
            "IngestionJob",
            {"tableRef": "t1", "source": {"uri": "file:///data/*.csv", "format": "csv"}},
        )
    )
    assert j.source == SourceSpec("file:///data/*.csv", "csv")
    assert (j.mode, j.batch_size, j.priority, j.schedule, j.suspend) == (
        "append",
        10_000,
        0,
        None,
        False,
    )
    assert (j.on_invalid_records, j.backoff_limit, j.parallelism, j.resources) == ("fail", 3, 1, {})
    hash(j)


def test_job_full_and_sql() -> None:
    j = parse_ingestion_job(
        manifest(
            "IngestionJob",
            {
                "tableRef": "t1",
                "source": {
                    "sql": {
                        "urlSecretRef": {"name": "pg", "key": "url"},
                        "query": "select * from e",
                        "incrementalColumn": "updated_at",
                    }
                },
                "mode": "overwrite-partitions",
                "batchSize": 500,
                "priority": 5,
                "schedule": "0 2 * * *",
                "timeZone": "Europe/Berlin",
                "suspend": True,
                "onInvalidRecords": "quarantine",
                "backoffLimit": 0,
                "resources": {"limits": {"memory": "1Gi"}},
                "parallelism": 2,
            },
        )
    )
    assert isinstance(j.source, SqlSourceSpec)
    assert j.source.url_secret_ref.name == "pg" and j.source.incremental_column == "updated_at"
    assert (j.mode, j.batch_size, j.priority, j.time_zone) == (
        "overwrite-partitions",
        500,
        5,
        "Europe/Berlin",
    )
    assert j.source.to_dict()["sql"]["urlSecretRef"] == {"name": "pg", "key": "url"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"source": {"uri": "file:///x.csv", "format": "csv"}}, "spec.tableRef: required"),
        ({"tableRef": "t1"}, "spec.source: required mapping, got None"),
        (
            {"tableRef": "t1", "source": {"uri": "ftp://h/x.csv", "format": "csv"}},
            "spec.source.uri: scheme must be one of file, s3, https, http, got 'ftp://h/x.csv'",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "https://h/*.csv", "format": "csv"}},
            "spec.source.uri: globs are only supported for file:// and s3://",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "file:///x", "format": "avro"}},
            "spec.source.format: must be one of csv, json, parquet, got 'avro'",
        ),
        (
            {
                "tableRef": "t1",
                "source": {"uri": "file:///x", "format": "csv", "options": {"delimiter": ";;"}},
            },
            "spec.source.options.delimiter: must be a single character, got ';;'",
        ),
        (
            {
                "tableRef": "t1",
                "source": {"uri": "file:///x", "format": "json", "options": {"delimiter": ";"}},
            },
            "spec.source.options.delimiter: unknown option for format json",
        ),
        (
            {"tableRef": "t1", "source": {"sql": {"urlSecretRef": {"name": "pg"}, "query": "q"}}},
            "spec.source.sql.urlSecretRef: must be {name: <secret>, key: <key>}",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "file:///x", "format": "csv"}, "batchSize": 0},
            "spec.batchSize: must be an integer >= 1, got 0",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "file:///x", "format": "csv"}, "mode": "upsert"},
            "spec.mode: must be one of append, overwrite-partitions, got 'upsert'",
        ),
        (
            {
                "tableRef": "t1",
                "source": {"uri": "file:///x", "format": "csv"},
                "onInvalidRecords": "drop",
            },
            "spec.onInvalidRecords: must be one of fail, skip, quarantine",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "file:///x", "format": "csv"}, "suspend": "yes"},
            "spec.suspend: must be true or false, got 'yes'",
        ),
    ],
)
def test_job_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as e:
        parse_ingestion_job(manifest("IngestionJob", spec, name="daily"))
    assert str(e.value).startswith("IngestionJob analytics/daily: ")
    assert message in str(e.value)


def csv_job(**options: Any) -> dict[str, Any]:
    return {"tableRef": "t1", "source": {"uri": "file:///x", "format": "csv", "options": options}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (csv_job(skipRows=2**70), "spec.source.options.skipRows: must be an integer 0..2147483647"),
        (csv_job(skipRows=-1), "spec.source.options.skipRows: must be an integer 0..2147483647"),
        (csv_job(nullValues=[1]), "spec.source.options.nullValues: must be a list of strings"),
        (csv_job(delimiter="\n"), "spec.source.options.delimiter: cannot be a line break"),
        (csv_job(quoteChar="\r"), "spec.source.options.quoteChar: cannot be a line break"),
        (csv_job(quoteChar=","), "spec.source.options.quoteChar: must differ from the delimiter"),
        (
            csv_job(quoteChar=";", delimiter=";"),
            "spec.source.options.quoteChar: must differ from the delimiter",
        ),
        ({**csv_job(), "priority": 2**40}, "spec.priority: must be an integer of at most 32 bits"),
        ({**csv_job(), "tableRef": "../t"}, "spec.tableRef: must be a DNS-1123 subdomain"),
        ({**csv_job(), "tableRef": "T1"}, "spec.tableRef: must be a DNS-1123 subdomain"),
        (
            {"tableRef": "t1", "source": {"uri": "file://in/x.csv", "format": "csv"}},
            "spec.source.uri: a file:// URI needs an absolute path (file:///...)",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "file:///in/../x.csv", "format": "csv"}},
            "spec.source.uri: a '..' segment is not allowed",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "s3://b/%2E%2e/x.csv", "format": "csv"}},
            "spec.source.uri: a '..' segment is not allowed",
        ),
        (
            {"tableRef": "t1", "source": {"uri": "s3:///x.csv", "format": "csv"}},
            "spec.source.uri: a s3:// URI needs a bucket or host",
        ),
    ],
)
def test_job_errors_found_by_hostile_manifests(spec: dict[str, Any], message: str) -> None:
    """Each once passed the parser and ended later in a traceback or a mid-run Arrow error."""
    with pytest.raises(InvalidSpecError) as e:
        parse_ingestion_job(manifest("IngestionJob", spec, name="daily"))
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("name", "ns", "message"),
    [
        ("..", "analytics", "metadata.name: must be a DNS-1123 subdomain"),
        ("../../x", "analytics", "metadata.name: must be a DNS-1123 subdomain"),
        ("a/b", "analytics", "metadata.name: must be a DNS-1123 subdomain"),
        ("Events", "analytics", "metadata.name: must be a DNS-1123 subdomain"),
        ("a" * 254, "analytics", "metadata.name: must be a DNS-1123 subdomain"),
        ("t1", "a.b", "metadata.namespace: must be a DNS-1123 label"),
        ("t1", "../x", "metadata.namespace: must be a DNS-1123 label"),
        ("t1", "n" * 64, "metadata.namespace: must be a DNS-1123 label"),
    ],
)
@pytest.mark.parametrize("kind", ["Table", "SchemaVersion", "IngestionJob"])
def test_names_that_would_become_unsafe_paths_are_refused(
    kind: str, name: str, ns: str, message: str
) -> None:
    parse = {
        "Table": parse_table,
        "SchemaVersion": parse_schema_version,
        "IngestionJob": parse_ingestion_job,
    }[kind]
    with pytest.raises(InvalidSpecError) as e:
        parse(manifest(kind, {}, name=name, ns=ns))
    value = ns if "namespace" in message else name
    assert message in str(e.value) and str(e.value).endswith(f"got {value!r}")


@pytest.mark.parametrize("name", ["t", "user-events", "events.v2", "a" * 253, "0x"])
def test_dns_subdomain_names_are_accepted(name: str) -> None:
    assert parse_table(manifest("Table", {}, name=name)).name == name
