"""End to end on the local cluster: Tables, SchemaVersions and IngestionJobs reconciled by a
real ``lakeop run`` subprocess, with the written Parquet read back independently."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pytest
from kubernetes import client
from operator_e2e import (
    Operator,
    apply,
    ingestion_job,
    lakeop_jobs,
    ready,
    schema_version,
    status_of,
    table,
    wait_for,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIELDS = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "ts", "type": "timestamp", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "score", "type": "double"},
]


def _write_csv(path: Path, rows: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    data = [
        {
            "id": i,
            "ts": start + timedelta(hours=7 * i),
            "name": f"n{rng.randint(0, 50)}",
            "score": round(rng.uniform(0, 100), 3),
        }
        for i in range(rows)
    ]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "ts", "name", "score"])
        for r in data:
            w.writerow([r["id"], r["ts"].strftime("%Y-%m-%dT%H:%M:%SZ"), r["name"], r["score"]])
    return data


def test_apply_ready_succeeded_and_data_reads_back(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    source = _write_csv(tmp_path / "events.csv", 300)
    apply(
        kube,
        ns,
        table("events", partitioning={"strategy": "date", "column": "ts", "granularity": "day"}),
        schema_version("events-v1", "events", 1, FIELDS),
        ingestion_job(
            "load", "events", (tmp_path / "events.csv").as_uri(), options={"header": True}
        ),
    )
    ij = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "load",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="run finished",
        timeout=120,
        operator=operator,
    )
    assert ij["phase"] == "Succeeded", ij
    assert ij["lastRun"]["rowsWritten"] == 300
    assert ij["lastRun"]["schemaVersion"] == 1
    assert ij["lastSuccessfulTime"] == ij["lastRun"]["completionTime"]
    assert ij["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in ij["conditions"]}["Ready"] == "True"
    tbl = wait_status(
        kube,
        ns,
        "tables",
        "events",
        lambda s: s.get("rows") == 300,
        what="totals updated",
        operator=operator,
    )
    assert ready(tbl)
    assert tbl["currentSchemaVersion"] == 1
    assert tbl["partitions"] == len({r["ts"].date() for r in source})
    assert urlparse(tbl["location"]).path == str(operator.lake / ns / "events")
    assert (operator.lake / ns / "events" / "_lakeop" / "table.json").exists()

    dataset = ds.dataset(
        str(operator.lake / ns / "events"),
        format="parquet",
        partitioning="hive",
        exclude_invalid_files=True,
        ignore_prefixes=["_", "."],
    )
    got = dataset.to_table(columns=["id", "ts", "name", "score"]).sort_by("id").to_pylist()
    assert [r["id"] for r in got] == [r["id"] for r in source]
    assert [r["name"] for r in got] == [r["name"] for r in source]
    assert [r["score"] for r in got] == [r["score"] for r in source]
    got_ts = [r["ts"].replace(tzinfo=UTC) if r["ts"].tzinfo is None else r["ts"] for r in got]
    assert got_ts == [r["ts"] for r in source]

    (job,) = lakeop_jobs(kube, ns, "load")
    assert job.metadata.owner_references[0].kind == "IngestionJob"
    pod_spec = job.spec.template.spec
    assert pod_spec.automount_service_account_token is False
    events = client.CoreV1Api(kube.api).list_namespaced_event(ns).items
    reasons = {e.reason for e in events if e.involved_object.name == "load"}
    assert {"JobCreated", "Succeeded"} <= reasons


def test_printer_columns(kube: Any, operator: Operator, ns: str, tmp_path: Path) -> None:
    _write_csv(tmp_path / "p.csv", 10)
    apply(
        kube,
        ns,
        table("cols", partitioning={"strategy": "hash", "column": "id", "buckets": 4}),
        schema_version("cols-v1", "cols", 1, FIELDS),
        ingestion_job("cols-load", "cols", (tmp_path / "p.csv").as_uri(), options={"header": True}),
    )
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "cols-load",
        lambda s: s.get("phase") == "Succeeded",
        what="Succeeded",
        timeout=120,
        operator=operator,
    )
    wait_status(
        kube, ns, "tables", "cols", lambda s: s.get("rows") == 10, what="rows", operator=operator
    )
    out = {
        kind: kube.kubectl("get", kind, "-n", ns).stdout.splitlines()
        for kind in ("ltbl", "lsv", "lij")
    }
    assert out["ltbl"][0].split() == [
        "NAME",
        "FORMAT",
        "PARTITIONING",
        "SCHEMA",
        "READY",
        "ROWS",
        "AGE",
    ]
    assert out["ltbl"][1].split()[:6] == ["cols", "parquet", "hash", "1", "True", "10"]
    assert out["lsv"][0].split() == ["NAME", "TABLE", "VERSION", "PHASE", "AGE"]
    assert out["lsv"][1].split()[:4] == ["cols-v1", "cols", "1", "Accepted"]
    assert out["lij"][0].split() == [
        "NAME",
        "TABLE",
        "PHASE",
        "ROWS",
        "PROGRESS",
        "SCHEDULE",
        "LAST",
        "RUN",
        "AGE",
    ]
    assert out["lij"][1].split()[:4] == ["cols-load", "cols", "Succeeded", "10"]
    listed = kube.kubectl("get", "lakeop", "-n", ns).stdout
    assert "table.lakeop.io/cols" in listed
    assert "schemaversion.lakeop.io/cols-v1" in listed
    assert "ingestionjob.lakeop.io/cols-load" in listed


def test_missing_table_waits_then_proceeds(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    _write_csv(tmp_path / "late.csv", 20)
    apply(
        kube,
        ns,
        schema_version("late-v1", "late", 1, FIELDS),
        ingestion_job(
            "late-load", "late", (tmp_path / "late.csv").as_uri(), options={"header": True}
        ),
    )
    sv = wait_status(
        kube,
        ns,
        "schemaversions",
        "late-v1",
        lambda s: s.get("phase") == "Pending",
        what="Pending",
        operator=operator,
    )
    assert sv["conditions"][0]["reason"] == "TableNotFound"
    ij = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "late-load",
        lambda s: s.get("phase") == "Pending",
        what="Pending",
        operator=operator,
    )
    assert ij["conditions"][0]["reason"] in ("TableNotFound", "TableNotReady", "NoAcceptedSchema")
    assert lakeop_jobs(kube, ns, "late-load") == []
    apply(kube, ns, table("late"))
    wait_status(
        kube,
        ns,
        "schemaversions",
        "late-v1",
        lambda s: s.get("phase") == "Accepted",
        what="Accepted",
        operator=operator,
    )
    done = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "late-load",
        lambda s: s.get("phase") == "Succeeded",
        what="Succeeded",
        timeout=120,
        operator=operator,
    )
    assert done["lastRun"]["rowsWritten"] == 20


def test_incompatible_version_is_rejected_in_status(kube: Any, operator: Operator, ns: str) -> None:
    narrowed = [{**f, "type": "int"} if f["name"] == "id" else f for f in FIELDS]
    apply(kube, ns, table("evo"), schema_version("evo-v1", "evo", 1, FIELDS))
    wait_status(
        kube,
        ns,
        "schemaversions",
        "evo-v1",
        lambda s: s.get("phase") == "Accepted",
        what="v1 Accepted",
        operator=operator,
    )
    apply(
        kube,
        ns,
        schema_version("evo-v2", "evo", 2, narrowed),
        schema_version("evo-v1-again", "evo", 1, FIELDS),
    )
    v2 = wait_status(
        kube,
        ns,
        "schemaversions",
        "evo-v2",
        lambda s: bool(s.get("phase")),
        what="judged",
        operator=operator,
    )
    assert v2["phase"] == "Rejected"
    assert v2["conditions"][0] == {
        **v2["conditions"][0],
        "type": "Ready",
        "status": "False",
        "reason": "Incompatible",
    }
    assert [v["field"] for v in v2["compatibility"]["violations"]] == ["id"]
    assert v2["compatibility"]["checkedAgainst"] == [1]
    dup = wait_status(
        kube,
        ns,
        "schemaversions",
        "evo-v1-again",
        lambda s: bool(s.get("phase")),
        what="judged",
        operator=operator,
    )
    assert (dup["phase"], dup["conditions"][0]["reason"]) == ("Rejected", "DuplicateVersion")
    assert status_of(kube, ns, "tables", "evo")["currentSchemaVersion"] == 1


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion_policy(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, policy: str
) -> None:
    _write_csv(tmp_path / "d.csv", 30)
    name = f"gone-{policy.lower()}"
    apply(
        kube,
        ns,
        table(name, deletionPolicy=policy),
        schema_version(f"{name}-v1", name, 1, FIELDS),
        ingestion_job(
            f"{name}-load", name, (tmp_path / "d.csv").as_uri(), options={"header": True}
        ),
    )
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        f"{name}-load",
        lambda s: s.get("phase") == "Succeeded",
        what="Succeeded",
        timeout=120,
        operator=operator,
    )
    location = operator.lake / ns / name
    assert list(location.rglob("*.parquet"))
    kube.kubectl("delete", "ltbl", name, "-n", ns, "--timeout=60s")
    api = client.CustomObjectsApi(kube.api)

    def gone() -> bool:
        try:
            api.get_namespaced_custom_object("lakeop.io", "v1alpha1", ns, "tables", name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=30, what=f"Table {name} deleted")
    if policy == "Retain":
        assert list(location.rglob("*.parquet"))
        assert (location / "_lakeop" / "table.json").exists()
    else:
        assert not location.exists()


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            table("bad", partitioning={"strategy": "hash", "column": "id"}),
            "buckets is required for strategy hash",
        ),
        (
            table("bad", partitioning={"strategy": "range", "column": "id"}),
            "boundaries is required for strategy range",
        ),
        (
            table("bad", partitioning={"strategy": "list", "column": "c"}),
            "values is required for strategy list",
        ),
        (schema_version("bad", "t", 0, FIELDS), "version must be a positive integer"),
        (table("bad", compression="lz4"), 'Unsupported value: "lz4"'),
    ],
)
def test_invalid_manifest_rejected_by_api_server(
    kube: Any, crds: None, ns: str, manifest: dict[str, Any], message: str
) -> None:
    result = apply(kube, ns, manifest, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_immutability_rules(kube: Any, crds: None, ns: str) -> None:
    apply(
        kube,
        ns,
        table("imm", partitioning={"strategy": "date", "column": "ts"}),
        schema_version("imm-v1", "imm", 1, FIELDS),
    )
    changed = apply(
        kube, ns, table("imm", partitioning={"strategy": "date", "column": "other"}), check=False
    )
    assert "partitioning is immutable once set" in changed.stderr
    edited = apply(kube, ns, schema_version("imm-v1", "imm", 1, FIELDS[:2]), check=False)
    assert "SchemaVersion spec is immutable" in edited.stderr


def test_failed_run_is_recorded_with_its_reason(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    apply(
        kube,
        ns,
        table("broken"),
        schema_version("broken-v1", "broken", 1, FIELDS),
        ingestion_job("broken-load", "broken", (tmp_path / "missing.csv").as_uri(), backoffLimit=0),
    )
    ij = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "broken-load",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="run finished",
        timeout=120,
        operator=operator,
    )
    assert ij["phase"] == "Failed", ij
    assert (ij["runs"], ij["failedRuns"], ij["succeededRuns"]) == (1, 1, 0)
    assert "lastSuccessfulTime" not in ij  # a failed run is no success
    error = ij["lastRun"]["error"]
    assert error["reason"] == "SourceNotFound", error
    assert "missing.csv" in error["message"]
    conds = {c["type"]: c for c in ij["conditions"]}
    assert (conds["Ready"]["status"], conds["Failed"]["status"]) == ("False", "True")
    assert conds["Failed"]["reason"] == "SourceNotFound"

    def warnings() -> list[str]:
        events = client.CoreV1Api(kube.api).list_namespaced_event(ns).items
        return [
            e.reason
            for e in events
            if e.involved_object.name == "broken-load" and e.type == "Warning"
        ]

    # kopf posts Events from a background queue: the status may be read before the Event is
    # (seen once in CI); wait for it, then hold that it is the only Warning
    assert wait_for(warnings, 30, "the run's Warning Event") == ["SourceNotFound"]
    assert len(lakeop_jobs(kube, ns, "broken-load")) == 1


def test_scheduled_job_runs_on_its_schedule_and_suspends(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    _write_csv(tmp_path / "s.csv", 5)
    apply(
        kube,
        ns,
        table("sched"),
        schema_version("sched-v1", "sched", 1, FIELDS),
        ingestion_job(
            "sched-load",
            "sched",
            (tmp_path / "s.csv").as_uri(),
            options={"header": True},
            schedule="* * * * *",
        ),
    )
    waiting = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "sched-load",
        lambda s: bool(s.get("nextScheduleTime")),
        what="next schedule time",
        operator=operator,
    )
    assert waiting.get("phase") in ("Scheduled", "Running")
    ran = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "sched-load",
        lambda s: (s.get("succeededRuns") or 0) >= 1,
        what="a scheduled run",
        timeout=150,
        operator=operator,
    )
    assert ran["phase"] in ("Scheduled", "Running")
    assert ran["lastRun"]["rowsWritten"] == 5
    assert ran["lastScheduleTime"].endswith(":00Z")
    kube.kubectl(
        "patch", "lij", "sched-load", "-n", ns, "--type", "merge", "-p", '{"spec":{"suspend":true}}'
    )
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "sched-load",
        lambda s: s.get("phase") == "Suspended",
        what="Suspended",
        timeout=90,
        operator=operator,
    )


def test_rerun_annotation_starts_one_more_run(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    _write_csv(landing / "a.csv", 7)
    apply(
        kube,
        ns,
        table("again"),
        schema_version("again-v1", "again", 1, FIELDS),
        ingestion_job("again-load", "again", f"{landing.as_uri()}/*.csv", options={"header": True}),
    )
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "again-load",
        lambda s: s.get("phase") == "Succeeded",
        what="first run",
        timeout=120,
        operator=operator,
    )
    _write_csv(landing / "b.csv", 3)  # a re-run picks up files not taken before
    kube.kubectl("annotate", "lij", "again-load", "-n", ns, "lakeop.io/rerun=2026-02-01")
    second = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "again-load",
        lambda s: s.get("runs") == 2 and s.get("phase") == "Succeeded",
        what="second run",
        timeout=120,
        operator=operator,
    )
    assert second["lastRerunToken"] == "2026-02-01"
    assert (second["lastRun"]["number"], second["lastRun"]["rowsWritten"]) == (2, 3)
    assert len(lakeop_jobs(kube, ns, "again-load")) == 2
    wait_status(
        kube,
        ns,
        "tables",
        "again",
        lambda s: s.get("rows") == 10,
        what="rows of both runs",
        operator=operator,
    )


def test_a_plan_that_cannot_run_is_refused_before_any_job(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    """The table is partitioned by ``ts``, which the accepted schema version lacks: the
    operator builds the plan before it creates a Job, so the IngestionJob is Failed with
    InvalidSpec and no Job (and no run) exists, instead of a Job that dies."""
    _write_csv(tmp_path / "events.csv", 3)
    without_ts = [f for f in FIELDS if f["name"] != "ts"]
    apply(
        kube,
        ns,
        table("nots", partitioning={"strategy": "date", "column": "ts", "granularity": "day"}),
        schema_version("nots-v1", "nots", 1, without_ts),
        ingestion_job("refused", "nots", (tmp_path / "events.csv").as_uri()),
    )
    ij = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "refused",
        lambda s: s.get("phase") == "Failed",
        what="plan refused",
        timeout=90,
        operator=operator,
    )
    (cond,) = [c for c in ij["conditions"] if c["type"] == "Ready"]
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert "spec.partitioning.column: 'ts' is not a field of the schema" in cond["message"]
    assert not ij.get("currentRun") and not ij.get("lastRun") and not ij.get("runs")
    assert lakeop_jobs(kube, ns, "refused") == []
