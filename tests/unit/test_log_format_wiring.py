"""The operator's log format reaches its Job pods: settings, the built Job, the manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakeop.config import Settings
from lakeop.core.runs.jobs import JobParams, build_job

PARAMS = JobParams(
    namespace="analytics",
    ingestion_job="daily",
    ingestion_job_uid="0b5c1c4e-2f43-4c55-9c0f-6a1d1c0de001",
    run=1,
    table="events",
    plan_json='{"runId":"x"}',
    image="lakeop:0.1.0",
)


def container_env(params: JobParams) -> dict[str, Any]:
    (container,) = build_job(params)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "text"), ({"LAKEOP_LOG_FORMAT": " JSON "}, "json"), ({"LAKEOP_LOG_FORMAT": "x"}, "text")],
)
def test_settings_read_the_log_format(env: dict[str, str], expected: str) -> None:
    assert Settings.from_env(env, Path("/srv")).log_format == expected


def test_the_job_carries_the_operators_format() -> None:
    assert "LAKEOP_LOG_FORMAT" not in container_env(PARAMS)  # text: the pod's default
    env = container_env(JobParams(**{**PARAMS.__dict__, "log_format": "json"}))
    assert env["LAKEOP_LOG_FORMAT"] == "json"


def test_the_install_manifests_ask_for_json() -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "manifests" / "base" / "deployment.yaml").read_text()
    assert "- name: LAKEOP_LOG_FORMAT\n              value: json" in text
