"""One rule, two entrances: what ``lakeop validate`` refuses in CI the webhook refuses at apply.

Each case is an IngestionJob that no run could use. It goes through ``lakeop validate`` (a
folder with its Table and SchemaVersion, the repository's CRDs) and through the webhook's
handler itself; both must refuse it with the same message, and both must pass the valid one.
``apiVersion`` and unknown fields are the API server's to refuse at apply time (a version it
does not serve, strict field validation); ``lakeop validate`` reports them as well.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from fake_kube import FakeKube

from lakeop.cli.validate import validate_paths
from lakeop.config import Settings
from lakeop.handlers.webhook import validate_ingestion_job
from lakeop.memo import OperatorMemo

ROOT = Path(__file__).resolve().parents[3]
CRDS = str(ROOT / "crds")
TABLE = {
    "apiVersion": "lakeop.io/v1alpha1",
    "kind": "Table",
    "metadata": {"name": "events", "namespace": "analytics"},
    "spec": {},
}
VERSION_1 = {
    "apiVersion": "lakeop.io/v1alpha1",
    "kind": "SchemaVersion",
    "metadata": {"name": "events-v1", "namespace": "analytics"},
    "spec": {"tableRef": "events", "version": 1, "fields": [{"name": "id", "type": "long"}]},
}
JOB: dict[str, Any] = {
    "apiVersion": "lakeop.io/v1alpha1",
    "kind": "IngestionJob",
    "metadata": {"name": "daily", "namespace": "analytics"},
    "spec": {"tableRef": "events", "source": {"uri": "s3://landing/*.csv", "format": "csv"}},
}


def job(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(JOB)
    body["spec"].update(spec)
    return body


BOTH = {
    "cron out of range": (
        job(schedule="*/15 25 * * *"),
        "spec.schedule: schedule '*/15 25 * * *': hour field: 25 is out of range 0-23",
    ),
    "cron with four fields": (job(schedule="0 2 * *"), "spec.schedule: schedule '0 2 * *'"),
    "unknown time zone": (
        job(schedule="0 2 * * *", timeZone="Europe/Berln"),
        "spec.timeZone: timeZone 'Europe/Berln': not a known IANA time zone",
    ),
    "unknown time zone without a schedule": (
        job(timeZone="Europe/Berln"),
        "spec.timeZone: timeZone 'Europe/Berln'",
    ),
    "podTemplate replaces the command": (
        job(podTemplate={"spec": {"containers": [{"name": "ingest", "command": ["sh"]}]}}),
        "spec.podTemplate.spec.containers[0].command: cannot be set",
    ),
    "podTemplate sets lakeop's own variable": (
        job(
            podTemplate={
                "spec": {"containers": [{"name": "ingest", "env": [{"name": "LAKEOP_PLAN"}]}]}
            }
        ),
        "LAKEOP_PLAN",
    ),
    "podTemplate takes the lake volume's name": (
        job(podTemplate={"spec": {"volumes": [{"name": "lakeop-lake", "emptyDir": {}}]}}),
        "the name is lakeop's lake volume",
    ),
}
VALIDATE_ONLY = {
    "wrong apiVersion": (
        {**job(), "apiVersion": "lakeop.io/v1beta1"},
        "apiVersion: 'lakeop.io/v1beta1' is not served",
    ),
    "unknown field": (job(schedul="0 2 * * *"), "'schedul' was unexpected"),
}


def validate(tmp_path: Path, body: dict[str, Any]) -> list[str]:
    (tmp_path / "lake.yaml").write_text(yaml.safe_dump_all([TABLE, VERSION_1, body]))
    return [str(p) for p in validate_paths([str(tmp_path)], CRDS, env={}).problems]


def webhook(body: dict[str, Any]) -> str | None:
    memo = OperatorMemo(settings=Settings(default_location="s3://lake"), kube=FakeKube())
    meta = body["metadata"]
    try:
        asyncio.run(
            validate_ingestion_job(
                body=body, memo=memo, name=meta["name"], namespace=meta["namespace"]
            )  # type: ignore[arg-type]
        )
    except kopf.AdmissionError as refused:
        return str(refused)
    return None


def test_a_valid_job_passes_both(tmp_path: Path) -> None:
    good = job(schedule="0 2 * * *", timeZone="Europe/Berlin")
    assert validate(tmp_path, good) == []
    assert webhook(good) is None


@pytest.mark.parametrize(("body", "message"), BOTH.values(), ids=BOTH.keys())
def test_validate_and_the_webhook_refuse_alike(
    tmp_path: Path, body: dict[str, Any], message: str
) -> None:
    (problem,) = validate(tmp_path, body)
    refused = webhook(body)
    assert message in problem
    assert refused is not None and message in refused
    # the same words: validate prints "path: Kind ns/name: <what the webhook says after it>"
    assert problem.endswith(refused.removeprefix("IngestionJob analytics/daily: "))


@pytest.mark.parametrize(("body", "message"), VALIDATE_ONLY.values(), ids=VALIDATE_ONLY.keys())
def test_validate_reports_what_the_api_server_refuses(
    tmp_path: Path, body: dict[str, Any], message: str
) -> None:
    (problem,) = validate(tmp_path, body)
    assert message in problem
