"""Table handlers against the fake API edge: prepare, refuse, refresh, delete — and every status
write going through the one writer (changed keys only)."""

from __future__ import annotations

import json
from pathlib import Path

import kopf
import pytest
from fake_kube import FakeKube
from handler_builders import NS, Event, body, peers_index, sv_obj, table_obj

from lakeop.config import Settings
from lakeop.core.constants import TABLES
from lakeop.core.spec.tenancy import parse_allowed_locations
from lakeop.handlers import table
from lakeop.memo import OperatorMemo


async def test_reconcile_prepares_the_location_and_reports_ready(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    obj = fake.put(TABLES, table_obj())
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())
    where = lake / NS / "events"
    descriptor = json.loads((where / "_lakeop" / "table.json").read_text())
    assert descriptor["uid"] == "uid-events"
    assert descriptor["location"] == where.as_uri()
    (patch,) = fake.writes("patch_status", TABLES)
    assert patch.name == "events"
    assert patch.body["location"] == where.as_uri()
    assert patch.body["observedGeneration"] == 1
    (ready,) = patch.body["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Reconciled")
    assert "currentSchemaVersion" not in patch.body  # no SchemaVersion yet
    assert events == [
        Event("Table", "events", "Normal", "Reconciled", f"table ready at {where.as_uri()}")
    ]


async def test_reconcile_again_writes_nothing(
    fake: FakeKube, memo: OperatorMemo, events: list[Event]
) -> None:
    obj = fake.put(TABLES, table_obj())
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())
    again = fake.obj(TABLES, NS, "events")  # with the status the first pass wrote
    await table.reconcile(body=body(again), memo=memo, uid="uid-events", **peers_index())
    assert len(fake.writes("patch_status", TABLES)) == 1
    assert len(events) == 1  # no second "ready" Event either


async def test_current_schema_version_comes_from_the_index(
    fake: FakeKube, memo: OperatorMemo, events: list[Event]
) -> None:
    obj = fake.put(TABLES, table_obj())
    index = peers_index(sv_obj(1, phase="Accepted"), sv_obj(2, phase="Rejected"))
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **index)
    assert fake.status(TABLES, NS, "events")["currentSchemaVersion"] == 1


async def test_a_location_outside_the_allowed_prefixes_is_refused(
    fake: FakeKube, settings: Settings, lake: Path, events: list[Event]
) -> None:
    fenced = Settings(
        default_location=settings.default_location,
        allowed_locations=parse_allowed_locations(f"{lake.as_uri()}/{{namespace}}"),
    )
    memo = OperatorMemo(settings=fenced, kube=fake)
    outside = (lake.parent / "elsewhere").as_uri()
    obj = fake.put(TABLES, table_obj(location=outside))
    with pytest.raises(kopf.PermanentError, match="not allowed"):
        await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())
    (patch,) = fake.writes("patch_status", TABLES)
    (ready,) = patch.body["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "LocationRefused")
    assert "location" not in patch.body
    assert not (lake.parent / "elsewhere").exists()  # nothing prepared
    assert [(e.type, e.reason) for e in events] == [("Warning", "LocationRefused")]


async def test_refresh_patches_only_what_changed(
    fake: FakeKube, memo: OperatorMemo, events: list[Event]
) -> None:
    obj = fake.put(TABLES, table_obj())
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())
    prepared = fake.obj(TABLES, NS, "events")
    status = prepared["status"]
    await table.refresh(body=body(prepared), memo=memo, status=status, **peers_index())
    assert len(fake.writes("patch_status", TABLES)) == 1  # totals unchanged: no write
    index = peers_index(sv_obj(1, phase="Accepted"))
    await table.refresh(body=body(prepared), memo=memo, status=status, **index)
    last = fake.writes("patch_status", TABLES)[-1]
    assert last.body == {"currentSchemaVersion": 1}


async def test_refresh_waits_for_a_prepared_location(fake: FakeKube, memo: OperatorMemo) -> None:
    obj = fake.put(TABLES, table_obj())
    await table.refresh(body=body(obj), memo=memo, status={}, **peers_index())
    assert fake.calls == []


async def test_delete_retains_data_unless_told(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    obj = fake.put(TABLES, table_obj())
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())
    prepared = fake.obj(TABLES, NS, "events")
    await table.delete(body=body(prepared), memo=memo, status=prepared["status"])
    assert (lake / NS / "events" / "_lakeop" / "table.json").exists()
    assert events[-1].reason == "DataRetained"
    prepared["spec"]["deletionPolicy"] = "Delete"
    await table.delete(body=body(prepared), memo=memo, status=prepared["status"])
    assert not (lake / NS / "events" / "_lakeop" / "table.json").exists()
    assert events[-1].reason == "DataDeleted"
