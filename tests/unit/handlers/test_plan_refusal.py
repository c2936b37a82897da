"""The operator refuses a run whose plan cannot work before it creates anything: a schema
the table cannot be partitioned by sets the IngestionJob Failed (InvalidSpec) and no Job is
created, no run recorded. The plan is built, and refused, by the same build_plan that
``lakeop ingest`` calls; here it runs behind the real reconcile handler, against a small
in-memory stand-in for the one Kubernetes edge (lakeop.kube.client.Kube)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
import pytest

from lakeop.config import Settings
from lakeop.handlers import ingestionjob
from lakeop.kube.client import Kube
from lakeop.memo import OperatorMemo

READY = {"conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}]}
DAY = {"strategy": "date", "column": "ts", "granularity": "day"}


class FakeKube(Kube):
    """The API objects of one namespace, and a record of what the handler wrote."""

    def __init__(self, objects: Mapping[str, list[dict[str, Any]]]) -> None:  # no API client
        self.objects = {plural: list(items) for plural, items in objects.items()}
        self.created: list[Mapping[str, Any]] = []
        self.patched: list[tuple[str, str, dict[str, Any]]] = []

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return next(
            (o for o in self.objects.get(plural, []) if o["metadata"]["name"] == name), None
        )

    async def list_objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        return list(self.objects.get(plural, []))

    async def list_all_objects(self, plural: str) -> list[dict[str, Any]]:
        return list(self.objects.get(plural, []))

    async def list_jobs(self, label_selector: str) -> list[dict[str, Any]]:
        return []

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.patched.append((plural, name, dict(status)))
        return {}

    async def create_job(self, manifest: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        self.created.append(manifest)
        return True, dict(manifest)


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1, **extra}


def objects(fields: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    table = {"kind": "Table", "metadata": meta("events"), "spec": {"partitioning": DAY}}
    version = {
        "kind": "SchemaVersion",
        "metadata": meta("events-v1", creationTimestamp="2026-01-01T00:00:00Z"),
        "spec": {"tableRef": "events", "version": 1, "fields": fields},
        "status": {"phase": "Accepted"},
    }
    return {"tables": [{**table, "status": READY}], "schemaversions": [version]}


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
    kube = FakeKube(objects([{"name": "id", "type": "long"}]))
    with pytest.raises(kopf.PermanentError) as e:
        reconcile(kube, tmp_path, events)
    assert "spec.partitioning.column: 'ts' is not a field of the schema" in str(e.value)
    assert kube.created == []  # no Job
    assert not any("currentRun" in status for _, _, status in kube.patched)  # no run
    status = e.value.__cause__
    assert status is not None and getattr(status, "reason", None) == "InvalidSpec"
    assert events and events[-1][:2] == ("Warning", "InvalidSpec")
    assert "(in SchemaVersion ns/events-v1, version 1)" in events[-1][2]


def test_the_refusal_lands_in_status_as_a_condition(
    tmp_path: Path, events: list[tuple[str, str, str]]
) -> None:
    kube = FakeKube(objects([{"name": "ts", "type": "string"}]))
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
    assert kube.created == []


def test_a_schema_that_fits_creates_the_job(
    tmp_path: Path, events: list[tuple[str, str, str]]
) -> None:
    """The same path with the column present: the stand-in is faithful enough to start a run."""
    kube = FakeKube(objects([{"name": "ts", "type": "timestamp"}]))
    reconcile(kube, tmp_path, events)
    assert len(kube.created) == 1
    assert any("currentRun" in status for _, _, status in kube.patched)
