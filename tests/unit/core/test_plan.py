"""RunPlan: JSON round trip, location resolution, building from specs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lakeop.core.plan import PlanTable, RunPlan, build_plan, resolve_location
from lakeop.core.spec import (
    PartitionSpec,
    SourceSpec,
    parse_ingestion_job,
    parse_schema_version,
    parse_table,
)
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
        ("relative", None, "default location: must be a URL or an absolute path"),
        (None, "gs://b", "spec.location: scheme must be file:// or s3://"),
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
