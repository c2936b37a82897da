"""The maintenance run's plan and Job: an ingestion Job's pod, the Table as owner."""

from __future__ import annotations

import json

import pytest

from lakeop.core.runs.jobs import JobParams, build_job
from lakeop.core.runs.maintenance import (
    LABEL_MAINTENANCE,
    Action,
    MaintenancePlan,
    build_maintenance_job,
    maintenance_run_id,
)
from lakeop.errors import InvalidSpecError

PLAN = MaintenancePlan(
    namespace="analytics",
    table="events",
    action=Action.COMPACT,
    run_id=maintenance_run_id("uid-1", Action.COMPACT, "2026-12-02T03:00:00Z"),
    location="s3://lake/analytics/events",
    format="parquet",
    compression="zstd",
    schema_version=3,
    schema_fields=({"name": "id", "type": "long", "nullable": False},),
    target_file_size_bytes=128 * 1024 * 1024,
    min_input_files=5,
    snapshot_retention_s=604800.0,
    rejected_retention_s=2592000.0,
)
PARAMS = JobParams(
    namespace="analytics",
    ingestion_job="events",
    ingestion_job_uid="uid-1",
    run=0,
    table="events",
    plan_json="",
    image="lakeop:dev",
    storage_secret="lake-creds",
    source_secret="never-for-maintenance",
    active_deadline_seconds=3600,
)


def test_plan_round_trips() -> None:
    assert MaintenancePlan.from_json(PLAN.to_json()) == PLAN


@pytest.mark.parametrize("text", ["{}", "[]", '{"action": "vacuum"}', "not json"])
def test_bad_plans_are_refused(text: str) -> None:
    with pytest.raises(InvalidSpecError, match="maintenance plan"):
        MaintenancePlan.from_json(text)


def test_run_ids_are_stable_per_token_and_apart_per_action() -> None:
    a = maintenance_run_id("u", Action.COMPACT, "t1")
    assert a == maintenance_run_id("u", Action.COMPACT, "t1")
    assert a != maintenance_run_id("u", Action.COMPACT, "t2")
    assert a != maintenance_run_id("u", Action.EXPIRE, "t1").replace("expire", "compact")


def test_job_is_an_ingestion_pod_owned_by_the_table() -> None:
    job = build_maintenance_job(PLAN, PARAMS)
    ingest = build_job(PARAMS)
    meta = job["metadata"]
    assert meta["name"] == f"events-{PLAN.run_id}"
    assert meta["ownerReferences"][0]["kind"] == "Table"
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert meta["labels"][LABEL_MAINTENANCE] == "compact"
    assert "lakeop.io/ingestionjob" not in meta["labels"]
    pod, ipod = job["spec"]["template"]["spec"], ingest["spec"]["template"]["spec"]
    (c,), (ic,) = pod["containers"], ipod["containers"]
    assert c["command"] == ["lakeop", "compact"]
    assert c["args"][:2] == ["--plan-env", "LAKEOP_PLAN"]
    # the same hardening, deadlines and failure policy as an ingestion run
    assert c["securityContext"] == ic["securityContext"]
    assert pod["securityContext"] == ipod["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    for key in ("backoffLimit", "activeDeadlineSeconds", "podFailurePolicy"):
        assert job["spec"].get(key) == ingest["spec"].get(key)
    # secrets by reference: the storage Secret only, and no value in the plan
    assert c["envFrom"] == [{"secretRef": {"name": "lake-creds"}, "prefix": "LAKEOP_STORAGE_"}]
    plan = json.loads(next(e["value"] for e in c["env"] if e["name"] == "LAKEOP_PLAN"))
    assert plan["runId"] == PLAN.run_id and "secret" not in json.dumps(plan).lower()
