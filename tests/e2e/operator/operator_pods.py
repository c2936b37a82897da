"""lakeop installed as the user installs it, for the e2e tests of the operator as a pod.

:func:`installed` runs ``kubectl apply -k`` of a kustomization layered on
``manifests/overlays/devcluster`` (:func:`write_overlay`): the operator's two replicas on
kubenode, in kopf peering, logged in with their ServiceAccount. The layer only gives the
pods a lake they share with their Job pods: a hostPath folder mounted at its own path in
both (``LAKEOP_DEFAULT_LOCATION``, ``LAKEOP_LAKE_VOLUME``/``_MOUNT_PATH``), and sends the Job
pods to kubenode (``LAKEOP_JOB_NODE_SELECTOR``/``_TOLERATIONS``), so runs write where the
test reads. The install is cluster-wide (ClusterKopfPeering, ValidatingWebhookConfiguration,
ClusterRole) and serves every namespace; leaving :func:`installed` removes all of it again,
except the CRDs the rest of the suite shares.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from operator_e2e import REAL_NODE, ROOT, Cluster, toleration

OVERLAY = ROOT / "manifests" / "overlays" / "devcluster"
SELF_SIGNED = ROOT / "manifests" / "overlays" / "self-signed"
NAMESPACE = "lakeop-system"
SELECTOR = "app.kubernetes.io/name=lakeop,app.kubernetes.io/component=operator"


def write_overlay(folder: Path, lake: Path) -> Path:
    """A kustomization in ``folder`` over overlays/devcluster with ``lake`` shared."""
    volume = {"hostPath": {"path": str(lake), "type": "Directory"}}
    settings = {
        "LAKEOP_DEFAULT_LOCATION": lake.as_uri(),
        "LAKEOP_LAKE_VOLUME": json.dumps(volume),
        "LAKEOP_LAKE_MOUNT_PATH": str(lake),
        "LAKEOP_JOB_NODE_SELECTOR": json.dumps({"kubernetes.io/hostname": REAL_NODE}),
        "LAKEOP_JOB_TOLERATIONS": json.dumps([toleration()]),
        "LAKEOP_RESYNC_SECONDS": "5",
    }
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "lakeop-operator"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "operator",
                            "volumeMounts": [{"name": "shared-lake", "mountPath": str(lake)}],
                        }
                    ],
                    "volumes": [{"name": "shared-lake", **volume}],
                }
            }
        },
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": [os.path.relpath(OVERLAY, folder)],
        "configMapGenerator": [
            {
                "name": "lakeop-config",
                "behavior": "merge",
                "literals": [f"{k}={v}" for k, v in settings.items()],
            }
        ],
        "patches": [
            {
                "target": {"kind": "Deployment", "name": "lakeop-operator"},
                "patch": yaml.safe_dump(patch),
            },
            {
                # A hostPath volume is refused in a namespace enforcing the restricted Pod
                # Security level (the base's lakeop-system). The shared hostPath lake is this
                # test's stand-in for the storage-pvc component (a PVC is allowed there), so
                # the test's namespace is privileged; the pods keep their own hardening.
                "target": {"kind": "Namespace", "name": NAMESPACE},
                "patch": yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {
                            "name": NAMESPACE,
                            "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
                        },
                    }
                ),
            },
        ],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return folder


def rendered(kube: Cluster, overlay: Path) -> list[dict[str, Any]]:
    text = kube.kubectl("kustomize", str(overlay)).stdout
    return [d for d in yaml.safe_load_all(text) if d]


@contextmanager
def installed(kube: Cluster, overlay: Path) -> Iterator[list[dict[str, Any]]]:
    """``kubectl apply -k overlay``, both replicas rolled out; everything but CRDs removed after."""
    if not (SELF_SIGNED / "tls.crt").exists():
        subprocess.run(["bash", str(SELF_SIGNED / "generate-certs.sh")], check=True)
    docs = rendered(kube, overlay)
    # CRDs first (the ClusterKopfPeering needs its own CRD established), then the rest
    kube.kubectl("apply", "-k", str(overlay), check=False, timeout=120)
    kube.kubectl("wait", "--for", "condition=established", "crd/clusterkopfpeerings.kopf.dev")
    kube.kubectl("apply", "-k", str(overlay), timeout=120)
    try:
        kube.kubectl(
            "-n",
            NAMESPACE,
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


def operator_pods(kube: Cluster) -> list[dict[str, Any]]:
    """The operator's pods that are not being deleted."""
    out = kube.kubectl("get", "pods", "-n", NAMESPACE, "-l", SELECTOR, "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def peers(kube: Cluster) -> dict[str, Any]:
    """The ClusterKopfPeering's status: pod name -> its priority and keep-alive."""
    peering = json.loads(kube.kubectl("get", "clusterkopfpeering", "lakeop", "-o", "json").stdout)
    return dict(peering.get("status") or {})
