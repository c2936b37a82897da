"""lakeop installed as the user installs it: ``kubectl apply -k`` of a ``manifests/`` overlay
(``overlays/devcluster``, with the test's lake layered on: conftest's ``operator_pods``), the
operator's Deployment running the project's image on the real node (kubelet + containerd),
two replicas in kopf peering, logged in with their ServiceAccount, the validating webhook
reached by the API server through its Service, and metrics scraped from a pod.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from kubernetes import client
from operator_e2e import REAL_NODE, apply, ingestion_job, schema_version, table, wait_for
from operator_pods import operator_pods as operator_pods_of

pytestmark = pytest.mark.e2e

FIELDS = [{"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "string"}]


def test_operator_runs_as_two_peered_pods_on_the_real_node(
    kube: Any, operator_pods: list[dict[str, Any]]
) -> None:
    pods = operator_pods_of(kube)
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["spec"]["nodeName"] == REAL_NODE
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
    kube: Any, operator_pods: list[dict[str, Any]]
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
            for pod in operator_pods_of(kube):
                url = f"http://{pod['status']['podIP']}:9090/metrics"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    text += resp.read().decode()
            return text if "lakeop_" in text else ""

        metrics = wait_for(scraped, timeout=60, what="lakeop metrics from the operator pods")
        assert "# TYPE lakeop_" in metrics
    finally:
        kube.kubectl("delete", "ltbl", "--all", "-n", ns, "--timeout=60s", check=False)
        core.delete_namespace(ns, propagation_policy="Background")
