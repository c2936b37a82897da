"""LAKEOP_JOB_NODE_SELECTOR / LAKEOP_JOB_TOLERATIONS: the operator's placement of Job pods."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeop.config import ConfigError, Settings
from lakeop.core.runs.jobs import JobParams, build_job
from lakeop.core.spec.podtemplate import parse_pod_template
from lakeop.core.spec.resources import ObjectKey

TAINT = {"key": "pool/batch", "operator": "Exists", "effect": "NoSchedule"}


def _params(settings: Settings, **extra: object) -> JobParams:
    return JobParams(
        namespace="analytics",
        ingestion_job="daily",
        ingestion_job_uid="0000",
        run=1,
        table="events",
        plan_json="{}",
        image="lakeop:test",
        node_selector=settings.job_node_selector,
        tolerations=settings.job_tolerations,
        **extra,  # type: ignore[arg-type]
    )


def test_settings_place_every_job_pod(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LAKEOP_JOB_NODE_SELECTOR": '{"pool": "batch"}',
            "LAKEOP_JOB_TOLERATIONS": '[{"key": "pool/batch", "operator": "Exists", '
            '"effect": "NoSchedule"}]',
        },
        cwd=tmp_path,
    )
    assert settings.job_node_selector == {"pool": "batch"}
    assert settings.job_tolerations == (TAINT,)
    pod = build_job(_params(settings))["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "batch"}
    assert pod["tolerations"] == [TAINT]


def test_without_settings_the_pod_has_no_placement(tmp_path: Path) -> None:
    pod = build_job(_params(Settings.from_env({}, cwd=tmp_path)))["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    assert "tolerations" not in pod


def test_a_pod_template_adds_to_the_operators_placement(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LAKEOP_JOB_NODE_SELECTOR": '{"pool": "batch", "zone": "a"}',
            "LAKEOP_JOB_TOLERATIONS": '[{"key": "pool/batch", "operator": "Exists", '
            '"effect": "NoSchedule"}]',
        },
        cwd=tmp_path,
    )
    gpu = {"key": "gpu", "operator": "Exists"}
    template = parse_pod_template(
        ObjectKey("IngestionJob", "analytics", "daily"),
        {"spec": {"nodeSelector": {"zone": "b", "disk": "ssd"}, "tolerations": [gpu]}},
    )
    pod = build_job(_params(settings, pod_template=template))["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "batch", "zone": "b", "disk": "ssd"}
    assert pod["tolerations"] == [TAINT, gpu]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEOP_JOB_NODE_SELECTOR": "{nope"}, "not JSON"),
        ({"LAKEOP_JOB_NODE_SELECTOR": '["pool"]'}, "object of strings"),
        ({"LAKEOP_JOB_NODE_SELECTOR": '{"pool": 1}'}, "object of strings"),
        ({"LAKEOP_JOB_TOLERATIONS": '{"key": "x"}'}, "list of tolerations"),
        ({"LAKEOP_JOB_TOLERATIONS": '["x"]'}, "list of tolerations"),
    ],
)
def test_bad_placement_is_refused(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, cwd=tmp_path)
