"""The install's storage: a default location from a ConfigMap, and the S3 and PVC components.

Each set-up is rendered as a user's overlay would be (the cert-manager overlay plus one
component) and then checked against the code that will read it: the ConfigMap's values must
load as the operator's :class:`~lakeop.config.Settings` in a pod, a default-location Table
must pass the LocationNotMounted rule under them, and a run's Job pod must get the lake
volume at the path where the operator mounts it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakeop.config import Settings
from lakeop.core.runs.jobs import JobParams, build_job
from lakeop.core.runs.mounts import local_path, require_mounted
from lakeop.core.runs.plan import resolve_location

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".devcluster" / "bin" / "kubectl"
IN_A_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}


def render(tmp_path: Path, component: str | None) -> list[dict[str, Any]]:
    assert KUBECTL.exists(), f"{KUBECTL} is missing: `make cluster-bin` builds it"
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    shutil.copytree(ROOT / "crds", tmp_path / "crds")
    mine = tmp_path / "manifests" / "overlays" / "mine"
    mine.mkdir()
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../cert-manager"],
    }
    if component:
        overlay["components"] = [f"../../components/{component}"]
    (mine / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(mine)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "operator"]
    return dict(container)


def settings_of(docs: list[dict[str, Any]]) -> tuple[Settings, dict[str, str]]:
    config = only(docs, "ConfigMap")
    refs = [
        e["configMapRef"]["name"]
        for e in operator_container(docs)["envFrom"]
        if "configMapRef" in e
    ]
    assert refs == [config["metadata"]["name"]]  # the generated name, hash and all
    assert config["metadata"]["namespace"] == "lakeop-system"
    data = dict(config["data"])
    return Settings.from_env({**data, **IN_A_POD}), data


def test_the_base_takes_the_default_location_from_its_config_map(tmp_path: Path) -> None:
    settings, data = settings_of(render(tmp_path, None))
    assert data == {"LAKEOP_DEFAULT_LOCATION": "s3://lake"}
    assert settings.default_location.rstrip("/") == "s3://lake"
    assert settings.require_mounts  # in a pod


def test_s3_component_reads_credentials_by_reference(tmp_path: Path) -> None:
    docs = render(tmp_path, "storage-s3")
    settings, _ = settings_of(docs)
    assert settings.default_location.rstrip("/") == "s3://lake"
    assert {"secretRef": {"name": "lakeop-storage"}} in operator_container(docs)["envFrom"]
    assert not [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "lakeop-storage"
    ]
    example = ROOT / "manifests" / "components" / "storage-s3" / "storage-secret.example.env"
    keys = [
        line.split("=")[0]
        for line in example.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    assert keys == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION"]
    location = resolve_location(settings.default_location, "analytics", "events", None)
    require_mounted("Table analytics/events", {"location": location}, [])  # s3: nothing to mount


def test_pvc_component_mounts_one_lake_in_the_operator_and_the_job_pods(tmp_path: Path) -> None:
    docs = render(tmp_path, "storage-pvc")
    settings, _ = settings_of(docs)
    claim = only(docs, "PersistentVolumeClaim")
    assert claim["metadata"] == {
        **claim["metadata"],
        "name": "lakeop-lake",
        "namespace": "lakeop-system",
    }
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # both replicas mount it
    # the operator mounts the claim where the settings say the Job pods will have it
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in operator_container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["lake"]["persistentVolumeClaim"] == {"claimName": "lakeop-lake"}
    assert mounts["lake"] == settings.lake_mount_path == local_path(settings.default_location)
    assert settings.lake_volume == {"persistentVolumeClaim": {"claimName": "lakeop-lake"}}
    # a Table at the default location is covered; one elsewhere is not
    location = resolve_location(settings.default_location, "analytics", "events", None)
    mounted = [str(settings.lake_mount_path)]
    require_mounted("Table analytics/events", {"location": location}, mounted)
    with pytest.raises(Exception, match="LAKEOP_LAKE_VOLUME"):
        require_mounted("Table analytics/x", {"location": "file:///srv/x"}, mounted)
    job = build_job(
        JobParams(
            namespace="analytics",
            ingestion_job="daily",
            ingestion_job_uid="u",
            run=1,
            table="events",
            plan_json="{}",
            image="lakeop:0.1.0",
            lake_volume=settings.lake_volume,
            lake_mount_path=settings.lake_mount_path,
        )
    )
    job_pod = job["spec"]["template"]["spec"]
    assert {
        "name": "lakeop-lake",
        "persistentVolumeClaim": {"claimName": "lakeop-lake"},
    } in job_pod["volumes"]
    (ingest,) = job_pod["containers"]
    assert {"name": "lakeop-lake", "mountPath": mounts["lake"]} in ingest["volumeMounts"]
