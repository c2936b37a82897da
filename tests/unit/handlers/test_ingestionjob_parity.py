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
from lakeop.handlers import ingestionjob
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


def validate(tmp_path: Path, body: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    (tmp_path / "lake.yaml").write_text(yaml.safe_dump_all([TABLE, VERSION_1, body]))
    return [str(p) for p in validate_paths([str(tmp_path)], CRDS, env=env or {}).problems]


def webhook(body: dict[str, Any], settings: Settings | None = None) -> str | None:
    settings = settings or Settings(default_location="s3://lake")
    memo = OperatorMemo(settings=settings, kube=FakeKube())
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


def reconcile(body: dict[str, Any], settings: Settings | None = None) -> str | None:
    """The operator's own reconcile: the refusal lands in the Ready condition (no Job)."""
    settings = settings or Settings(default_location="s3://lake")
    memo = OperatorMemo(settings=settings, kube=FakeKube())
    patch = kopf.Patch()
    meta = body["metadata"]
    try:
        asyncio.run(
            ingestionjob.reconcile(
                body=kopf.Body(body),  # type: ignore[arg-type]
                memo=memo,
                patch=patch,
                name=meta["name"],
                namespace=meta["namespace"],
            )
        )
    except kopf.PermanentError:
        (ready,) = [c for c in patch.status["conditions"] if c["type"] == "Ready"]
        assert (patch.status["phase"], ready["status"]) == ("Failed", "False")
        return str(ready["message"])
    return None


@pytest.mark.parametrize(("body", "message"), BOTH.values(), ids=BOTH.keys())
def test_the_operator_refuses_alike(
    body: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no webhook is installed, the same words land in the IngestionJob's condition:
    e.g. an unknown time zone without a schedule, which no timer would ever read."""
    monkeypatch.setattr(kopf, "event", lambda *_a, **_k: None)
    refused, admitted = reconcile(body), webhook(body)
    assert refused is not None and admitted is not None
    assert message in refused and refused == admitted


LAKE_MOUNT = job(
    podTemplate={
        "spec": {
            "volumes": [{"name": "landing", "emptyDir": {}}],
            "containers": [
                {"name": "ingest", "volumeMounts": [{"name": "landing", "mountPath": "/lake"}]}
            ],
        }
    }
)


def test_a_mount_at_the_lake_volumes_path_is_refused_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lake volume is the operator's setting (LAKEOP_LAKE_MOUNT_PATH): validate reads it
    from its environment, the webhook and the operator from their settings."""
    monkeypatch.setattr(kopf, "event", lambda *_a, **_k: None)
    settings = Settings.from_env(
        {"LAKEOP_LAKE_VOLUME": '{"emptyDir": {}}', "LAKEOP_LAKE_MOUNT_PATH": "/lake"}
    )
    field = "spec.podTemplate.spec.containers[0].volumeMounts[0].mountPath"
    (problem,) = validate(tmp_path, LAKE_MOUNT, {"LAKEOP_LAKE_MOUNT_PATH": "/lake"})
    admitted, refused = webhook(LAKE_MOUNT, settings), reconcile(LAKE_MOUNT, settings)
    assert admitted is not None and refused == admitted
    assert f"{field}: is where the operator mounts the lake volume" in admitted
    assert problem.endswith(admitted.removeprefix("IngestionJob analytics/daily: "))
    assert validate(tmp_path, LAKE_MOUNT) == [] and webhook(LAKE_MOUNT) is None  # no lake volume
