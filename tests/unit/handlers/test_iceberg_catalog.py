"""An Iceberg table's catalog URL in the operator: taken from the Table's Secret or the
operator's settings (never from the process environment), handed to Job pods only as a
secret reference, and never written to a plan, a Job's literal env, a status or an Event;
an s3:// Iceberg table with no catalog refused by the webhook and the Table's reconcile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube
from handler_builders import NS, Event, body, ij_obj, peers_index, ready, sv_obj, table_obj
from pyiceberg.catalog.sql import SqlCatalog

from lakeop.config import Settings
from lakeop.core.constants import INGESTION_JOBS, SCHEMA_VERSIONS, TABLES
from lakeop.core.spec.sources import SecretKeyRef
from lakeop.handlers import ingestionjob, maintenance, table
from lakeop.handlers.webhook import validate_table
from lakeop.memo import OperatorMemo

TOKEN = "catalog-7f3a9c"  # in every catalog URL below: must never show outside the Secret


def iceberg_ready(fake: FakeKube, lake: Path, **iceberg: Any) -> None:
    ready(fake, lake)
    obj = fake.obj(TABLES, NS, "events")
    obj["spec"] = {**obj["spec"], "format": "iceberg", "iceberg": iceberg}
    fake.put(TABLES, obj)


def url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path}/{TOKEN}-{name}.db"


def operator_memo(fake: FakeKube, lake: Path, **catalog: Any) -> OperatorMemo:
    settings = Settings(default_location=lake.as_uri(), job_image="lakeop:test", **catalog)
    return OperatorMemo(settings=settings, kube=fake)


async def start(memo: OperatorMemo, fake: FakeKube) -> dict[str, Any]:
    fake.put(INGESTION_JOBS, ij_obj())
    await ingestionjob.reconcile(
        body=body(fake.obj(INGESTION_JOBS, NS, "load")),
        memo=memo,
        patch=kopf.Patch(),
        name="load",
        namespace=NS,
    )
    (created,) = fake.writes("create_job")
    return dict(created.body)


def catalog_env(job: dict[str, Any]) -> list[dict[str, Any]]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return [e for e in container["env"] if e["name"] == "LAKEOP_ICEBERG_CATALOG_URI"]


def leaks(fake: FakeKube, events: list[Event]) -> list[str]:
    """Every API write and Event that carries the catalog URL."""
    out = [f"{c.verb} {c.kind} {c.name}" for c in fake.calls if TOKEN in json.dumps(c.body)]
    return out + [f"event {e.reason}" for e in events if TOKEN in e.message]


async def test_the_tables_secret_goes_to_the_pod_by_reference(
    fake: FakeKube, lake: Path, tmp_path: Path, events: list[Event]
) -> None:
    memo = operator_memo(
        fake,
        lake,
        iceberg_catalog_uri=url(tmp_path, "operator"),
        iceberg_catalog_secret=SecretKeyRef("lake-default", "uri"),
    )
    iceberg_ready(fake, lake, catalogSecretRef={"name": "lake-catalog", "key": "dsn"})
    fake.secrets[(NS, "lake-catalog")] = {"dsn": url(tmp_path, "table")}
    job = await start(memo, fake)
    assert catalog_env(job) == [
        {
            "name": "LAKEOP_ICEBERG_CATALOG_URI",
            "valueFrom": {"secretKeyRef": {"name": "lake-catalog", "key": "dsn"}},
        }
    ]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    (plan,) = [e["value"] for e in container["env"] if e["name"] == "LAKEOP_PLAN"]
    assert json.loads(plan)["table"]["iceberg"] == {"namespace": NS, "name": "events"}
    assert TOKEN not in plan
    assert leaks(fake, events) == []


async def test_the_operator_default_goes_to_the_pod_as_its_secret(
    fake: FakeKube, lake: Path, tmp_path: Path, events: list[Event]
) -> None:
    memo = operator_memo(
        fake,
        lake,
        iceberg_catalog_uri=url(tmp_path, "operator"),
        iceberg_catalog_secret=SecretKeyRef("lake-default", "uri"),
    )
    iceberg_ready(fake, lake)
    job = await start(memo, fake)
    assert catalog_env(job) == [
        {
            "name": "LAKEOP_ICEBERG_CATALOG_URI",
            "valueFrom": {"secretKeyRef": {"name": "lake-default", "key": "uri"}},
        }
    ]
    assert leaks(fake, events) == []


async def test_an_embedded_catalog_table_gets_no_catalog_env(
    fake: FakeKube, lake: Path, memo: OperatorMemo
) -> None:
    iceberg_ready(fake, lake)
    assert catalog_env(await start(memo, fake)) == []


async def test_the_operator_reads_its_default_from_settings_not_its_environment(
    fake: FakeKube,
    lake: Path,
    tmp_path: Path,
    events: list[Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Table's reconcile opens the catalog the settings name: the operator's
    LAKEOP_ICEBERG_CATALOG_URI, or else the default Secret read in the Table's namespace."""
    monkeypatch.setenv("LAKEOP_ICEBERG_CATALOG_URI", url(tmp_path, "environ"))
    memo = operator_memo(fake, lake, iceberg_catalog_secret=SecretKeyRef("lake-default", "uri"))
    fake.secrets[(NS, "lake-default")] = {"uri": url(tmp_path, "secret")}
    obj = fake.put(TABLES, table_obj(format="iceberg"))
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())
    status = fake.status(TABLES, NS, "events")
    assert status["conditions"][0]["status"] == "True"
    assert status["format"] == "iceberg"
    assert (tmp_path / f"{TOKEN}-secret.db").exists()  # opened by the operator
    assert not (tmp_path / f"{TOKEN}-environ.db").exists()
    assert leaks(fake, events) == []


async def test_a_default_secret_without_the_key_is_a_clear_refusal(
    fake: FakeKube, lake: Path
) -> None:
    memo = operator_memo(fake, lake, iceberg_catalog_secret=SecretKeyRef("lake-default", "uri"))
    fake.secrets[(NS, "lake-default")] = {"other": "x"}
    obj = fake.put(TABLES, table_obj(format="iceberg"))
    with pytest.raises(kopf.PermanentError, match=r"LAKEOP_ICEBERG_CATALOG_SECRET.*no key 'uri'"):
        await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())


def s3_table(**iceberg: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"location": "s3://lake/team/events", "format": "iceberg"}
    if iceberg:
        spec["iceberg"] = iceberg
    return table_obj(**spec)


@pytest.mark.parametrize(
    ("iceberg", "settings", "refused"),
    [
        ({}, {}, "an s3:// Iceberg table needs a SQL catalog"),
        ({"catalogSecretRef": {"name": "c", "key": "uri"}}, {}, None),
        ({}, {"iceberg_catalog_secret": SecretKeyRef("lake-default", "uri")}, None),
        ({"namespace": "../etc"}, {}, "spec.iceberg"),
        ({"catalogSecretRef": {"name": "c"}}, {}, "catalogSecretRef: must be"),
    ],
)
async def test_the_webhook_checks_spec_iceberg(
    fake: FakeKube,
    lake: Path,
    iceberg: dict[str, Any],
    settings: dict[str, Any],
    refused: str | None,
) -> None:
    memo = operator_memo(fake, lake, **settings)
    obj = body(s3_table(**iceberg))
    if refused is None:
        await validate_table(body=obj, memo=memo, name="events", namespace=NS)
        return
    with pytest.raises(kopf.AdmissionError, match=refused) as info:
        await validate_table(body=obj, memo=memo, name="events", namespace=NS)
    assert str(info.value).startswith(f"Table {NS}/events: spec.iceberg")


async def test_the_reconcile_refuses_an_s3_table_without_a_catalog(
    fake: FakeKube, memo: OperatorMemo, events: list[Event]
) -> None:
    obj = fake.put(TABLES, s3_table())
    with pytest.raises(kopf.PermanentError, match="needs a SQL catalog"):
        await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **peers_index())
    (ready_cond,) = fake.status(TABLES, NS, "events")["conditions"]
    assert (ready_cond["status"], ready_cond["reason"]) == ("False", "InvalidSpec")
    assert [e.type for e in events] == ["Warning"]


async def test_the_first_accepted_version_creates_the_table_in_its_catalog(
    fake: FakeKube, lake: Path, tmp_path: Path, events: list[Event]
) -> None:
    """Before any run: the Table's reconcile registers the Iceberg table (schema of the
    Accepted version, day(ts) partition spec) and its status shows the metadata location."""
    fields = [
        {"name": "id", "type": "long", "nullable": False},
        {"name": "ts", "type": "timestamp", "nullable": False},
    ]
    memo = operator_memo(fake, lake)
    fake.secrets[(NS, "lake-catalog")] = {"uri": url(tmp_path, "table")}
    obj = fake.put(
        TABLES,
        table_obj(
            format="iceberg",
            iceberg={"catalogSecretRef": {"name": "lake-catalog", "key": "uri"}},
            partitioning={"strategy": "date", "column": "ts", "granularity": "day"},
        ),
    )
    index = peers_index(sv_obj(1, fields, phase="Accepted"))
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **index)
    catalog = SqlCatalog("lakeop", uri=url(tmp_path, "table"))
    iceberg = catalog.load_table((NS, "events"))
    assert [f.name for f in iceberg.schema().fields] == ["id", "ts"]
    assert [(f.name, str(f.transform)) for f in iceberg.spec().fields] == [("ts_day", "day")]
    assert iceberg.location() == (lake / NS / "events").as_uri()
    status = fake.status(TABLES, NS, "events")
    assert status["metadataLocation"] == iceberg.metadata_location
    assert (status["rows"], status["currentSchemaVersion"]) == (0, 1)
    assert leaks(fake, events) == []


async def test_an_embedded_catalog_is_left_to_the_first_run(
    fake: FakeKube, lake: Path, memo: OperatorMemo
) -> None:
    obj = fake.put(TABLES, table_obj(format="iceberg"))
    index = peers_index(sv_obj(1, phase="Accepted"))
    await table.reconcile(body=body(obj), memo=memo, uid="uid-events", **index)
    assert not (lake / NS / "events" / "_lakeop" / "iceberg-catalog.db").exists()
    assert not (lake / NS / "events" / "metadata").exists()


async def test_a_maintenance_pod_gets_the_operator_default_as_its_secret(
    fake: FakeKube, lake: Path, tmp_path: Path, events: list[Event]
) -> None:
    """A maintenance pod opens the same catalog as the table's ingestion pods: the Table
    names none, so the operator's default Secret (it was left without any, the pod then
    opened an embedded catalog that does not hold the table)."""
    memo = operator_memo(fake, lake, iceberg_catalog_secret=SecretKeyRef("lake-default", "uri"))
    iceberg_ready(fake, lake)
    fake.put(SCHEMA_VERSIONS, sv_obj(1, phase="Accepted"))
    obj = fake.obj(TABLES, NS, "events")
    obj["metadata"]["annotations"] = {"lakeop.io/compact": "t1"}
    await maintenance.on_demand(memo, "events", NS)
    (created,) = fake.writes("create_job")
    assert catalog_env(dict(created.body)) == [
        {
            "name": "LAKEOP_ICEBERG_CATALOG_URI",
            "valueFrom": {"secretKeyRef": {"name": "lake-default", "key": "uri"}},
        }
    ]
    assert leaks(fake, events) == []
