"""The ``spec.podTemplate`` rule: what a template may set, and what it may not take over."""

from __future__ import annotations

from typing import Any

import pytest

from lakeop.core.spec.podtemplate import PodTemplate, parse_pod_template
from lakeop.core.spec.resources import ObjectKey, parse_ingestion_job
from lakeop.errors import InvalidSpecError

KEY = ObjectKey("IngestionJob", "analytics", "daily")


def _ingest(**fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "ingest", **fields}]}}


def test_absent_template_is_none_and_a_full_one_is_typed() -> None:
    assert parse_pod_template(KEY, None) is None
    template = parse_pod_template(
        KEY,
        {
            "metadata": {"labels": {"team": "data"}},
            "spec": {
                "serviceAccountName": "lake-writer",
                "nodeSelector": {"kubernetes.io/hostname": "n1"},
                "volumes": [{"name": "landing", "hostPath": {"path": "/data"}}],
                "containers": [
                    {
                        "name": "ingest",
                        "volumeMounts": [{"name": "landing", "mountPath": "/data"}],
                        "env": [{"name": "TZ", "value": "UTC"}],
                    }
                ],
            },
        },
    )
    assert template == PodTemplate(
        labels={"team": "data"},
        service_account_name="lake-writer",
        node_selector={"kubernetes.io/hostname": "n1"},
        volumes=({"name": "landing", "hostPath": {"path": "/data"}},),
        volume_mounts=({"name": "landing", "mountPath": "/data"},),
        env=({"name": "TZ", "value": "UTC"},),
    )


REFUSED: dict[str, tuple[Any, str]] = {
    "command": (_ingest(command=["sh"]), "spec.podTemplate.spec.containers[0].command"),
    "args": (_ingest(args=["--job", "x"]), "spec.podTemplate.spec.containers[0].args"),
    "image": (_ingest(image="evil:1"), "spec.podTemplate.spec.containers[0].image"),
    "lakeop env": (
        _ingest(env=[{"name": "LAKEOP_PLAN", "value": "{}"}]),
        "spec.podTemplate.spec.containers[0].env[0].name",
    ),
    "lakeop env, any case": (
        _ingest(env=[{"name": "lakeop_storage_key", "value": "x"}]),
        "spec.podTemplate.spec.containers[0].env[0].name",
    ),
    "HOME": (
        _ingest(env=[{"name": "HOME", "value": "/"}]),
        "spec.podTemplate.spec.containers[0].env[0].name",
    ),
    "env twice": (
        _ingest(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        "spec.podTemplate.spec.containers[0].env[1].name",
    ),
    "envFrom with lakeop's prefix": (
        _ingest(envFrom=[{"secretRef": {"name": "s"}, "prefix": "LAKEOP_SOURCE_"}]),
        "spec.podTemplate.spec.containers[0].envFrom[0].prefix",
    ),
    "ingest twice": (
        {"spec": {"containers": [{"name": "ingest"}, {"name": "ingest"}]}},
        "spec.podTemplate.spec.containers",
    ),
    "a sidecar": (
        {"spec": {"containers": [{"name": "ingest"}, {"name": "proxy", "image": "p"}]}},
        "spec.podTemplate.spec.containers",
    ),
    "another container name": (
        {"spec": {"containers": [{"name": "main"}]}},
        "spec.podTemplate.spec.containers[0].name",
    ),
    "initContainers": (
        {"spec": {"initContainers": [{"name": "x", "image": "x"}]}},
        "spec.podTemplate.spec.initContainers",
    ),
    "restartPolicy": ({"spec": {"restartPolicy": "Always"}}, "spec.podTemplate.spec.restartPolicy"),
    "scratch volume": (
        {"spec": {"volumes": [{"name": "scratch", "emptyDir": {}}]}},
        "spec.podTemplate.spec.volumes",
    ),
    "volume twice": (
        {"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]}},
        "spec.podTemplate.spec.volumes[1].name",
    ),
    "mount of no volume": (
        _ingest(volumeMounts=[{"name": "nope", "mountPath": "/x"}]),
        "spec.podTemplate.spec.containers[0].volumeMounts[0].name",
    ),
    "mount over scratch": (
        {
            "spec": {
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [
                    {"name": "ingest", "volumeMounts": [{"name": "v", "mountPath": "/scratch/"}]}
                ],
            }
        },
        "spec.podTemplate.spec.containers[0].volumeMounts[0].mountPath",
    ),
    "lakeop's label": (
        {"metadata": {"labels": {"lakeop.io/run": "9"}}},
        "spec.podTemplate.metadata.labels",
    ),
    "a label that is not a string": (
        {"metadata": {"labels": {"n": 1}}},
        "spec.podTemplate.metadata.labels.n",
    ),
    "metadata.name": ({"metadata": {"name": "x"}}, "spec.podTemplate.metadata.name"),
    "automount not a boolean": (
        {"spec": {"automountServiceAccountToken": "yes"}},
        "spec.podTemplate.spec.automountServiceAccountToken",
    ),
    "not a mapping": ([], "spec.podTemplate"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_the_field_named(case: str) -> None:
    raw, path = REFUSED[case]
    with pytest.raises(InvalidSpecError) as err:
        parse_pod_template(KEY, raw)
    assert str(err.value).startswith(f"IngestionJob analytics/daily: {path}: "), str(err.value)


def test_command_refusal_says_why() -> None:
    with pytest.raises(InvalidSpecError, match="always runs lakeop's own command"):
        parse_pod_template(KEY, _ingest(command=["sh"]))


def test_parse_ingestion_job_carries_and_checks_the_template() -> None:
    manifest: dict[str, Any] = {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": "daily", "namespace": "analytics"},
        "spec": {
            "tableRef": "events",
            "source": {"uri": "file:///data/a.csv", "format": "csv"},
            "podTemplate": {"spec": {"serviceAccountName": "lake-writer"}},
        },
    }
    spec = parse_ingestion_job(manifest)
    assert spec.pod_template == PodTemplate(service_account_name="lake-writer")
    manifest["spec"]["podTemplate"] = _ingest(command=["sh"])
    with pytest.raises(InvalidSpecError, match=r"containers\[0\]\.command"):
        parse_ingestion_job(manifest)
