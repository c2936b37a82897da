"""RunPlan: JSON round trip, location resolution, building from specs."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from lakeop.core.runs.plan import PlanTable, RunPlan, build_plan, resolve_location
from lakeop.core.spec.layout import PartitionSpec
from lakeop.core.spec.resources import parse_ingestion_job, parse_schema_version, parse_table
from lakeop.core.spec.sources import SourceSpec
from lakeop.core.spec.tenancy import parse_allowed_locations
from lakeop.errors import InvalidSpecError


@pytest.mark.parametrize(
    ("root", "explicit", "expected"),
    [
        ("s3://lake", None, "s3://lake/ns/t"),
        ("s3://lake/", None, "s3://lake/ns/t"),
        ("/var/lake", None, "file:///var/lake/ns/t"),
        ("file:///var/lake", None, "file:///var/lake/ns/t"),
        (None, "s3://b/x/", "s3://b/x"),
        ("s3://lake", "/data/t", "file:///data/t"),
    ],
)
def test_resolve_location(root: str | None, explicit: str | None, expected: str) -> None:
    assert resolve_location(root, "ns", "t", explicit) == expected


@pytest.mark.parametrize(
    ("root", "explicit", "message"),
    [
        (None, None, "Table ns/t: spec.location: not set and no default location"),
        ("relative", None, "default location: location 'relative' is neither a URL"),
        (None, "gs://b", "spec.location: location 'gs://b': the scheme must be file:// or s3://"),
        (None, "file://typo/lake", "spec.location: .* 'typo' would be read as a host name"),
        ("file://typo/lake", None, "default location: .* 'typo' would be read as a host"),
        (None, "file:lake", "spec.location: .* neither a URL"),
        (None, "file:///a/../b", "spec.location: .* contains a '..' segment"),
        (None, "s3:///prefix", "spec.location: .* has no bucket or host"),
    ],
)
def test_resolve_location_errors(root: str | None, explicit: str | None, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        resolve_location(root, "ns", "t", explicit)


def sample_plan() -> RunPlan:
    return RunPlan(
        namespace="analytics",
        job="daily",
        run_id="daily-abc12",
        table=PlanTable(
            "events",
            "s3://lake/analytics/events",
            "zstd",
            PartitionSpec("list", "c", values={"eu": ("DE",)}, default="other"),
        ),
        schema_version=2,
        schema_fields=({"name": "c", "type": "string"},),
        source=SourceSpec("s3://in/*.csv", "csv", {"delimiter": ";"}, "landing"),
        mode="overwrite-partitions",
        batch_size=123,
        on_invalid_records="skip",
    )


def test_round_trip() -> None:
    plan = sample_plan()
    text = plan.to_json()
    assert RunPlan.from_json(text) == plan
    d = json.loads(text)
    assert d["runId"] == "daily-abc12" and d["storageEnvPrefix"] == "LAKEOP_STORAGE_"
    assert plan.schema.names() == ["c"]
    assert "claimLeaseSeconds" not in d  # unset: the engine's default
    leased = dataclasses.replace(plan, claim_lease_seconds=900.0)
    assert RunPlan.from_json(leased.to_json()) == leased
    assert json.loads(leased.to_json())["claimLeaseSeconds"] == 900.0


def test_bad_json() -> None:
    with pytest.raises(InvalidSpecError, match="run plan: not valid JSON"):
        RunPlan.from_json("{")
    with pytest.raises(InvalidSpecError, match="run plan: missing or bad field"):
        RunPlan.from_json("{}")


def test_build_plan_sql_round_trip() -> None:
    meta = {"namespace": "ns"}
    table = parse_table(
        {
            "kind": "Table",
            "metadata": {**meta, "name": "t"},
            "spec": {
                "partitioning": {"strategy": "hash", "column": "id", "buckets": 8},
                "storageSecretRef": {"name": "s3"},
            },
        }
    )
    sv = parse_schema_version(
        {
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "t-v1"},
            "spec": {"tableRef": "t", "version": 1, "fields": [{"name": "id", "type": "long"}]},
        }
    )
    job = parse_ingestion_job(
        {
            "kind": "IngestionJob",
            "metadata": {**meta, "name": "j"},
            "spec": {
                "tableRef": "t",
                "source": {
                    "sql": {
                        "urlSecretRef": {"name": "pg", "key": "url"},
                        "query": "select 1",
                        "incrementalColumn": "id",
                    }
                },
            },
        }
    )
    plan = build_plan(table, sv, job, "j-1", "/lake")
    assert plan.table.location == "file:///lake/ns/t"
    assert plan.sql_url_env == "LAKEOP_SOURCE_SQL_URL"
    assert RunPlan.from_json(plan.to_json()) == plan
    assert "url" not in json.dumps(plan.to_dict()["source"]["sql"]["query"])


def test_build_plan_mismatched_table() -> None:
    meta = {"namespace": "ns"}
    table = parse_table({"kind": "Table", "metadata": {**meta, "name": "t"}, "spec": {}})
    sv = parse_schema_version(
        {
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "o-v1"},
            "spec": {"tableRef": "other", "version": 1, "fields": [{"name": "id", "type": "long"}]},
        }
    )
    job = parse_ingestion_job(
        {
            "kind": "IngestionJob",
            "metadata": {**meta, "name": "j"},
            "spec": {"tableRef": "t", "source": {"uri": "file:///x.csv", "format": "csv"}},
        }
    )
    with pytest.raises(InvalidSpecError, match="does not match"):
        build_plan(table, sv, job, "j-1", "/lake")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"run_id": "../../x"}, "run plan: runId: must be a DNS-1123 label"),
        ({"run_id": "Run_1"}, "run plan: runId: must be a DNS-1123 label"),
        ({"run_id": "r" * 64}, "run plan: runId: must be a DNS-1123 label"),
        ({"job": "a/b"}, "run plan: job: must be a DNS-1123 subdomain"),
        ({"job": ".."}, "run plan: job: must be a DNS-1123 subdomain"),
        ({"namespace": "a.b"}, "run plan: namespace: must be a DNS-1123 label"),
        ({"table": PlanTable("..", "s3://lake/x")}, "run plan: table.name: must be a DNS-1123"),
        (
            {"table": PlanTable("events", "file://typo/lake")},
            "run plan: table.location: location 'file://typo/lake': file:// needs an absolute",
        ),
        ({"mode": "upsert"}, "run plan: mode: must be one of append, overwrite-partitions"),
        ({"on_invalid_records": "drop"}, "run plan: onInvalidRecords: must be one of fail,"),
        ({"batch_size": 0}, "run plan: batchSize: must be an integer >= 1, got 0"),
        (
            {"table": PlanTable("events", "s3://lake/x", "lzma")},
            "run plan: table.compression: must be one of snappy, zstd, gzip, none, got 'lzma'",
        ),
    ],
)
def test_a_plan_that_could_not_run_as_given_is_refused(
    changes: dict[str, object], message: str
) -> None:
    """Every entrance (operator, -f, --plan-env, tests) builds a RunPlan before any I/O: a
    name no path may hold, or a value the writer would stumble on, is refused there."""
    with pytest.raises(InvalidSpecError, match=re.escape(message)):
        dataclasses.replace(sample_plan(), **changes)  # type: ignore[arg-type]
    bad = json.loads(sample_plan().to_json())
    if "run_id" in changes:
        bad["runId"] = changes["run_id"]
        with pytest.raises(InvalidSpecError, match=re.escape(message)):
            RunPlan.from_json(json.dumps(bad))


def specs(partitioning: dict[str, object], fields: list[dict[str, object]]) -> tuple[Any, ...]:
    meta = {"namespace": "ns"}
    table = parse_table(
        {"kind": "Table", "metadata": {**meta, "name": "t"}, "spec": {"partitioning": partitioning}}
    )
    sv = parse_schema_version(
        {
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "t-v3"},
            "spec": {"tableRef": "t", "version": 3, "fields": fields},
        }
    )
    job = parse_ingestion_job(
        {
            "kind": "IngestionJob",
            "metadata": {**meta, "name": "j"},
            "spec": {"tableRef": "t", "source": {"uri": "file:///x.csv", "format": "csv"}},
        }
    )
    return table, sv, job


TS = {"name": "ts", "type": "timestamp"}
DAY = {"strategy": "date", "column": "ts", "granularity": "day"}


@pytest.mark.parametrize(
    ("partitioning", "fields", "message"),
    [
        (
            DAY,
            [TS, {"name": "year", "type": "int"}],
            "spec.partitioning: date partitioning "
            "writes the directory key(s) year, which the schema also has as field(s)",
        ),
        (DAY, [TS, {"name": "Day", "type": "int"}], "directory key(s) day, which the schema"),
        ({**DAY, "granularity": "hour"}, [TS, {"name": "hour", "type": "string"}], "key(s) hour"),
        (
            {"strategy": "hash", "column": "ts", "buckets": 2},
            [TS, {"name": "bucket", "type": "int"}],
            "hash partitioning writes the directory key(s) bucket",
        ),
        (
            {"strategy": "range", "column": "n", "boundaries": [0, 100]},
            [{"name": "n", "type": "string"}],
            "spec.partitioning.boundaries: 0 does not fit 'n', a string field, which needs strings",
        ),
        (
            {"strategy": "range", "column": "n", "boundaries": ["5", "a"]},
            [{"name": "n", "type": "int"}],
            "'5' does not fit 'n', a int field, which needs integers",
        ),
        (
            {"strategy": "range", "column": "n", "boundaries": [2**40]},
            [{"name": "n", "type": "int"}],
            "which needs integers in -2147483648..2147483647",
        ),
        (
            {"strategy": "range", "column": "n", "boundaries": [1.5]},
            [{"name": "n", "type": "long"}],
            "1.5 does not fit 'n', a long field, which needs integers",
        ),
        (
            {"strategy": "range", "column": "d", "boundaries": ["2026-13-01"]},
            [{"name": "d", "type": "date"}],
            "which needs ISO date strings such as 2026-01-31",
        ),
        (
            {"strategy": "range", "column": "ts", "boundaries": ["2026-01-01T00:00:00+02:00"]},
            [TS],
            "needs ISO timestamp strings in UTC, without a zone",
        ),
        (
            {"strategy": "range", "column": "n", "boundaries": ["x"]},
            [{"name": "n", "type": "string"}, {"name": "n_range", "type": "string"}],
            "range partitioning writes the directory key(s) n_range",
        ),
        (
            {"strategy": "list", "column": "n", "values": {"g": ["1", "one"]}},
            [{"name": "n", "type": "long"}],
            "spec.partitioning.values.g: 'one' does not fit 'n'",
        ),
        (
            {"strategy": "list", "column": "n", "values": {"g": ["x"]}},
            [{"name": "n", "type": "double"}],
            "'x' does not fit 'n', a double field, which needs",
        ),
        (
            DAY,
            [{"name": "t2", "type": "timestamp"}],
            "spec.partitioning.column: 'ts' is not a field of the schema",
        ),
        (
            DAY,
            [{"name": "ts", "type": "string"}],
            "spec.partitioning.column: date partitioning "
            "needs a field of type date, timestamp; 'ts' is string",
        ),
    ],
)
def test_build_plan_refuses_a_schema_the_table_cannot_be_partitioned_by(
    partitioning: dict[str, object], fields: list[dict[str, object]], message: str
) -> None:
    """The rule the operator applies before it creates a Job, and lakeop ingest before it
    claims anything (lakeop validate calls the same layout_problem)."""
    with pytest.raises(InvalidSpecError) as e:
        build_plan(*specs(partitioning, fields), "r1", "/lake")
    assert str(e.value).startswith("Table ns/t: spec.partitioning")
    assert message in str(e.value)
    assert str(e.value).endswith("(in SchemaVersion ns/t-v3, version 3)")


@pytest.mark.parametrize(
    ("partitioning", "fields"),
    [
        (DAY, [TS, {"name": "years", "type": "int"}]),
        ({**DAY, "granularity": "day"}, [TS, {"name": "hour", "type": "int"}]),
        (
            {"strategy": "range", "column": "n", "boundaries": [5, 10]},
            [{"name": "n", "type": "long"}],
        ),
        (
            {"strategy": "range", "column": "n", "boundaries": [0, 2.5]},
            [{"name": "n", "type": "decimal", "precision": 9, "scale": 2}],
        ),
        (
            {
                "strategy": "range",
                "column": "ts",
                "boundaries": ["2026-01-01", "2026-02-01T12:00:00"],
            },
            [TS],
        ),
        (
            {"strategy": "list", "column": "n", "values": {"g": ["1", "2"]}},
            [{"name": "n", "type": "int"}],
        ),
    ],
)
def test_build_plan_accepts_layouts_that_fit(
    partitioning: dict[str, object], fields: list[dict[str, object]]
) -> None:
    plan = build_plan(*specs(partitioning, fields), "r1", "/lake")
    assert RunPlan.from_json(plan.to_json()) == plan


def test_a_plan_from_json_is_held_to_the_same_layout_rule() -> None:
    plan = build_plan(*specs(DAY, [TS]), "r1", "/lake")
    d = json.loads(plan.to_json())
    d["schemaFields"].append({"name": "month", "type": "int"})
    with pytest.raises(
        InvalidSpecError,
        match=r"run plan: table t: spec.partitioning: date .*"
        r"directory key\(s\) month",
    ):
        RunPlan.from_json(json.dumps(d))


def test_build_plan_carries_the_namespace_s_allowed_prefixes_to_the_pod() -> None:
    allowed = parse_allowed_locations("s3://lake/{namespace} other=s3://x /data/shared")
    plan = build_plan(*specs(DAY, [TS]), "r1", "s3://lake", allowed=allowed)
    assert plan.allowed_prefixes == ("s3://lake/ns", "file:///data/shared")
    assert RunPlan.from_json(plan.to_json()) == plan
    unfenced = build_plan(*specs(DAY, [TS]), "r1", "s3://lake")
    assert unfenced.allowed_prefixes == () and "allowedPrefixes" not in unfenced.to_dict()
