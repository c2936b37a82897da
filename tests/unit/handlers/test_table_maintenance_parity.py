"""A Table's ``spec.maintenance``: what ``lakeop validate`` refuses, the webhook refuses too.

The maintenance podTemplate follows IngestionJob's rules (the same parser, its errors naming
``spec.maintenance.podTemplate``), and the compaction schedule and time zone the scheduler's
parsers; both entrances call :func:`lakeop.core.runs.admission.check_table`.
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
from lakeop.handlers.webhook import validate_table
from lakeop.memo import OperatorMemo

ROOT = Path(__file__).resolve().parents[3]
CRDS = str(ROOT / "crds")
TABLE: dict[str, Any] = {
    "apiVersion": "lakeop.io/v1alpha1",
    "kind": "Table",
    "metadata": {"name": "events", "namespace": "analytics"},
    "spec": {},
}


def table(**maintenance: Any) -> dict[str, Any]:
    body = copy.deepcopy(TABLE)
    body["spec"]["maintenance"] = maintenance
    return body


def container(**fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "ingest", **fields}]}}


BOTH = {
    "cron out of range": (
        table(compaction={"schedule": "*/15 25 * * *"}),
        "spec.maintenance.compaction.schedule: schedule '*/15 25 * * *': hour field: 25",
    ),
    "unknown time zone": (
        table(compaction={"schedule": "0 3 * * *", "timeZone": "Europe/Berln"}),
        "spec.maintenance.compaction.timeZone: timeZone 'Europe/Berln'",
    ),
    "podTemplate replaces the command": (
        table(podTemplate=container(command=["sh"])),
        "spec.maintenance.podTemplate.spec.containers[0].command: cannot be set",
    ),
    "podTemplate sets lakeop's own variable": (
        table(podTemplate=container(env=[{"name": "LAKEOP_PLAN", "value": "{}"}])),
        "spec.maintenance.podTemplate.spec.containers[0].env[0].name: lakeop sets LAKEOP_*",
    ),
    "podTemplate sets lakeop's maintenance label": (
        table(podTemplate={"metadata": {"labels": {"lakeop.io/maintenance": "x"}}}),
        "spec.maintenance.podTemplate.metadata.labels: is lakeop's own label",
    ),
}


def validate(tmp_path: Path, body: dict[str, Any]) -> list[str]:
    (tmp_path / "lake.yaml").write_text(yaml.safe_dump_all([body]))
    return [str(p) for p in validate_paths([str(tmp_path)], CRDS, env={}).problems]


def webhook(body: dict[str, Any]) -> str | None:
    memo = OperatorMemo(settings=Settings(default_location="s3://lake"), kube=FakeKube())
    meta = body["metadata"]
    try:
        asyncio.run(
            validate_table(body=body, memo=memo, name=meta["name"], namespace=meta["namespace"])  # type: ignore[arg-type]
        )
    except kopf.AdmissionError as refused:
        return str(refused)
    return None


def test_a_valid_maintenance_spec_passes_both(tmp_path: Path) -> None:
    good = table(
        compaction={"schedule": "0 3 * * *", "timeZone": "Europe/Berlin"},
        retention={"snapshots": "24h"},
        podTemplate=container(env=[{"name": "AWS_REGION", "value": "eu-west-1"}]),
    )
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
    assert problem.endswith(refused.removeprefix("Table analytics/events: "))
