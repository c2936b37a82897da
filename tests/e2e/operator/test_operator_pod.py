"""lakeop installed as the user installs it: ``kubectl apply -k`` of a ``manifests/`` overlay
(``overlays/devcluster``), the operator's Deployment running the project's image on the real
node (kubelet + containerd), two replicas in kopf peering, logged in with their
ServiceAccount, the validating webhook reached by the API server through its Service, and
metrics scraped from a pod.

The install is cluster-wide (ClusterKopfPeering, ValidatingWebhookConfiguration, ClusterRole)
and serves every namespace, so the test removes all of it again, except the CRDs that the
rest of the suite shares.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from operator_e2e import ROOT, apply, ingestion_job, schema_version, table, wait_for

pytestmark = pytest.mark.e2e

NODE = "kubenode"
OVERLAY = ROOT / "manifests" / "overlays" / "devcluster"
SELF_SIGNED = ROOT / "manifests" / "overlays" / "self-signed"
FIELDS = [{"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "string"}]


def _rendered(kube: Any) -> list[dict[str, Any]]:
    text = kube.kubectl("kustomize", str(OVERLAY)).stdout
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def installed(kube: Any, crds: None) -> Iterator[list[dict[str, Any]]]:
    if kube.kubectl("get", "node", NODE, check=False).returncode != 0:
        pytest.skip("no real node in this cluster (DEVCLUSTER_NODE=process)")
    if not (SELF_SIGNED / "tls.crt").exists():
        subprocess.run(["bash", str(SELF_SIGNED / "generate-certs.sh")], check=True)
    docs = _rendered(kube)
    # CRDs first (the ClusterKopfPeering needs its own CRD established), then the rest
    kube.kubectl("apply", "-k", str(OVERLAY), check=False, timeout=120)
    kube.kubectl("wait", "--for", "condition=established", "crd/clusterkopfpeerings.kopf.dev")
    kube.kubectl("apply", "-k", str(OVERLAY), timeout=120)
    try:
        kube.kubectl(
            "-n",
            "lakeop-system",
            "rollout",
            "status",
            "deploy/lakeop-operator",
            "--timeout=180s",
            timeout=200,
        )
        yield docs
    finally:
        keep = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
        kube.kubectl(
            "delete",
            "--ignore-not-found",
            "--wait=false",
            "-f",
            "-",
            input=yaml.safe_dump_all(keep),
            check=False,
            timeout=120,
        )


def _operator_pods(kube: Any) -> list[dict[str, Any]]:
    out = kube.kubectl(
        "get",
        "pods",
        "-n",
        "lakeop-system",
        "-l",
        "app.kubernetes.io/name=lakeop,app.kubernetes.io/component=operator",
        "-o",
        "json",
    ).stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def test_operator_runs_as_two_peered_pods_on_the_real_node(
    kube: Any, installed: list[dict[str, Any]]
) -> None:
    pods = _operator_pods(kube)
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE
        (cs,) = pod["status"]["containerStatuses"]
        assert cs["ready"] is True
        assert cs["containerID"].startswith("containerd://")
        assert cs["image"].endswith("lakeop:0.1.0")
        assert pod["spec"]["serviceAccountName"] == "lakeop-operator"
    names = {p["metadata"]["name"] for p in pods}

    def peers() -> Any:
        peering = json.loads(
            kube.kubectl("get", "clusterkopfpeering", "lakeop", "-o", "json").stdout
        )
        status = peering.get("status") or {}
        return status if names <= set(status) else None

    # each replica writes its keep-alive with its own ServiceAccount login, from its pod
    status = wait_for(peers, timeout=90, what="both replicas in the ClusterKopfPeering")
    assert len({status[n]["priority"] for n in names}) == 2  # one active, one standby


def test_webhook_in_the_pod_refuses_an_incompatible_version_and_metrics_are_scraped(
    kube: Any, installed: list[dict[str, Any]]
) -> None:
    ns = f"lko-pod-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        apply(kube, ns, table("events"), schema_version("events-v1", "events", 1, FIELDS))

        def accepted() -> Any:
            sv = json.loads(kube.kubectl("get", "lsv", "events-v1", "-n", ns, "-o", "json").stdout)
            return (sv.get("status") or {}).get("phase") == "Accepted"

        wait_for(accepted, timeout=90, what="v1 Accepted by the operator pod")
        narrowed = [
            {"name": "id", "type": "int", "nullable": False},
            {"name": "extra", "type": "string", "nullable": False},
        ]
        refused = apply(kube, ns, schema_version("events-v2", "events", 2, narrowed), check=False)
        assert refused.returncode != 0, refused.stdout
        assert "denied the request" in refused.stderr
        assert "incompatible under BACKWARD" in refused.stderr
        # the webhook.yaml of the base manifests routes IngestionJobs to the pod as well
        job = ingestion_job("load", "events", "file:///data/a.csv")
        job["spec"]["podTemplate"] = {"spec": {"containers": [{"name": "ingest", "args": ["x"]}]}}
        refused = apply(kube, ns, job, check=False)
        assert refused.returncode != 0, refused.stdout
        assert "spec.podTemplate.spec.containers[0].args: cannot be set" in refused.stderr

        def scraped() -> str:
            text = ""
            for pod in _operator_pods(kube):
                url = f"http://{pod['status']['podIP']}:9090/metrics"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    text += resp.read().decode()
            return text if "lakeop_" in text else ""

        metrics = wait_for(scraped, timeout=60, what="lakeop metrics from the operator pods")
        assert "# TYPE lakeop_" in metrics
    finally:
        kube.kubectl("delete", "ltbl", "--all", "-n", ns, "--timeout=60s", check=False)
        core.delete_namespace(ns, propagation_policy="Background")
