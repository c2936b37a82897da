"""``spec.iceberg``: parsing, identifier defaults and fences, the plan without the catalog's
URL, and the Job pod's catalog URL by secret reference only."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from lakeop.core.runs.jobs import JobParams, build_job
from lakeop.core.runs.plan import iceberg_identifier
from lakeop.core.spec.resources import parse_table
from lakeop.core.spec.sources import SecretKeyRef
from lakeop.errors import InvalidSpecError


def table(spec: dict[str, Any], name: str = "user-events") -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "Table",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": spec,
    }


def test_iceberg_defaults_and_identifier() -> None:
    t = parse_table(table({"format": "iceberg"}))
    assert t.format == "iceberg" and t.iceberg.catalog_secret_ref is None
    assert iceberg_identifier(t) == ("team_a", "user_events")
    assert iceberg_identifier(parse_table(table({"format": "parquet"}))) is None


def test_iceberg_secret_and_names() -> None:
    t = parse_table(
        table(
            {
                "format": "iceberg",
                "iceberg": {
                    "catalogSecretRef": {"name": "lake-catalog", "key": "uri"},
                    "namespace": "analytics",
                    "name": "events",
                },
            }
        )
    )
    assert t.iceberg.catalog_secret_ref == SecretKeyRef("lake-catalog", "uri")
    assert iceberg_identifier(t) == ("analytics", "events")


@pytest.mark.parametrize(
    "iceberg",
    [
        {"catalogSecretRef": {"name": "x"}},
        {"catalogSecretRef": "postgresql://u:p@h/db"},
        {"namespace": "../etc"},
        {"name": "Events"},
        "analytics",
    ],
)
def test_iceberg_bad_specs_are_refused(iceberg: Any) -> None:
    with pytest.raises(InvalidSpecError, match="iceberg"):
        parse_table(table({"format": "iceberg", "iceberg": iceberg}))


def test_job_pod_gets_the_catalog_by_secret_reference_only() -> None:
    params = JobParams(
        namespace="team-a",
        ingestion_job="load",
        ingestion_job_uid="0b5c1c4e-2f43-4c55-9c0f-6a1d1c0de001",
        run=1,
        table="user-events",
        plan_json='{"runId":"x"}',
        image="lakeop:0.1.0",
        iceberg_catalog_secret=SecretKeyRef("lake-catalog", "uri"),
    )
    job = build_job(params)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["LAKEOP_ICEBERG_CATALOG_URI"] == {
        "name": "LAKEOP_ICEBERG_CATALOG_URI",
        "valueFrom": {"secretKeyRef": {"name": "lake-catalog", "key": "uri"}},
    }
    without = build_job(dataclasses.replace(params, iceberg_catalog_secret=None))
    text = json.dumps(without)
    assert "LAKEOP_ICEBERG_CATALOG_URI" not in text
