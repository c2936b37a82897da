"""The operator refuses a run whose plan cannot work before it creates anything: a schema
the table cannot be partitioned by sets the IngestionJob Failed (InvalidSpec) and no Job is
created, no run recorded. The plan is built, and refused, by the same build_plan that
``lakeop ingest`` calls; here it runs behind the real reconcile handler, against a small
in-memory stand-in for the one Kubernetes edge (fake_kube.FakeKube, shared by the handler
tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube

from lakeop.config import Settings
from lakeop.core.constants import SCHEMA_VERSIONS, TABLES
from lakeop.handlers import ingestionjob
from lakeop.memo import OperatorMemo

READY = {"conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}]}
DAY = {"strategy": "date", "column": "ts", "granularity": "day"}


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1, **extra}


def objects(fields: list[dict[str, Any]]) -> FakeKube:
    """The Ready table and its one Accepted SchemaVersion in the shared API stand-in."""
    table = {"kind": "Table", "metadata": meta("events"), "spec": {"partitioning": DAY}}
    version = {
        "kind": "SchemaVersion",
        "metadata": meta("events-v1", creationTimestamp="2026-01-01T00:00:00Z"),
        "spec": {"tableRef": "events", "version": 1, "fields": fields},
        "status": {"phase": "Accepted"},
    }
    kube = FakeKube()
    kube.put(TABLES, {**table, "status": READY})
    kube.put(SCHEMA_VERSIONS, version)
    return kube


def created(kube: FakeKube) -> list[Any]:
    return [call.body for call in kube.writes("create_job")]


def patched(kube: FakeKube) -> list[dict[str, Any]]:
    return [call.body for call in kube.writes("patch_status")]


def ingestion_job() -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": meta("load", creationTimestamp="2026-01-01T00:00:00Z"),
        "spec": {"tableRef": "events", "source": {"uri": "file:///in/*.csv", "format": "csv"}},
    }


def reconcile(kube: FakeKube, lake: Path, events: list[tuple[str, str, str]]) -> kopf.Patch:
    body = kopf.Body(ingestion_job())  # type: ignore[arg-type]
    patch = kopf.Patch()
    memo = OperatorMemo(kube=kube, settings=Settings(default_location=f"file://{lake}"))
    asyncio.run(
        ingestionjob.reconcile(body=body, memo=memo, patch=patch, name="load", namespace="ns")
    )
    return patch


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []

    def event(_obj: Any, *, type: str, reason: str, message: str) -> None:
        posted.append((type, reason, message))

    monkeypatch.setattr(kopf, "event", event)
    return posted


def test_a_schema_without_the_partition_column_is_refused_before_any_job(
    tmp_path: Path, events: list[tuple[str, str, str]]
) -> None:
    kube = objects([{"name": "id", "type": "long"}])
    with pytest.raises(kopf.PermanentError) as e:
        reconcile(kube, tmp_path, events)
    assert "spec.partitioning.column: 'ts' is not a field of the schema" in str(e.value)
    assert created(kube) == []  # no Job
    assert not any("currentRun" in status for status in patched(kube))  # no run
    status = e.value.__cause__
    assert status is not None and getattr(status, "reason", None) == "InvalidSpec"
    assert events and events[-1][:2] == ("Warning", "InvalidSpec")
    assert "(in SchemaVersion ns/events-v1, version 1)" in events[-1][2]


def test_the_refusal_lands_in_status_as_a_condition(
    tmp_path: Path, events: list[tuple[str, str, str]]
) -> None:
    kube = objects([{"name": "ts", "type": "string"}])
    patch = kopf.Patch()
    body = kopf.Body(ingestion_job())  # type: ignore[arg-type]
    memo = OperatorMemo(kube=kube, settings=Settings(default_location=f"file://{tmp_path}"))
    with pytest.raises(kopf.PermanentError):
        asyncio.run(
            ingestionjob.reconcile(body=body, memo=memo, patch=patch, name="load", namespace="ns")
        )
    assert patch.status["phase"] == "Failed"
    (ready,) = [c for c in patch.status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert (
        "date partitioning needs a field of type date, timestamp; 'ts' is string"
        in (ready["message"])
    )
    assert created(kube) == []


def test_a_schema_that_fits_creates_the_job(
    tmp_path: Path, events: list[tuple[str, str, str]]
) -> None:
    """The same path with the column present: the stand-in is faithful enough to start a run."""
    kube = objects([{"name": "ts", "type": "timestamp"}])
    reconcile(kube, tmp_path, events)
    assert len(created(kube)) == 1
    assert any("currentRun" in status for status in patched(kube))
