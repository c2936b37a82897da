"""The devcluster's real node: kubelet + containerd running the project's own image.

``kubenode`` is tainted, so only pods that ask for it land there. A test namespace asks for
it through the API server's PodNodeSelector and PodTolerationRestriction admission plugins
(namespace annotations), so the pods lakeop builds run there unchanged. The hardening is
shown from inside a container whose pod spec is exactly what ``lakeop.core.runs.jobs.build_job``
renders for a run; only the command is replaced by a probe.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lakeop.core.runs.jobs import JobParams, build_job

pytestmark = pytest.mark.e2e

NODE = "kubenode"
TAINT = "devcluster.lakeop.io/real-node"
IMAGE = "lakeop:0.1.0"
Obj = dict[str, Any]


@pytest.fixture
def node(kube: Any) -> Obj:
    proc = kube.kubectl("get", "node", NODE, "-o", "json", check=False)
    if proc.returncode != 0:
        pytest.skip(f"no real node in this cluster (DEVCLUSTER_NODE=process?): {proc.stderr}")
    obj: Obj = json.loads(proc.stdout)
    return obj


@pytest.fixture
def real_ns(kube: Any, namespace: str, node: Obj) -> str:
    """The test namespace, with every pod created in it sent to the real node."""
    tolerations = [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}]
    kube.kubectl(
        "annotate",
        "namespace",
        namespace,
        f"scheduler.alpha.kubernetes.io/node-selector=kubernetes.io/hostname={NODE}",
        f"scheduler.alpha.kubernetes.io/defaultTolerations={json.dumps(tolerations)}",
    )
    return namespace


def pod_of_job(kube: Any, ns: str, job: str) -> Obj:
    pods: list[Obj] = json.loads(
        kube.kubectl("get", "pods", "-n", ns, "-l", f"job-name={job}", "-o", "json").stdout
    )["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def terminated(kube: Any, ns: str, job: str) -> Obj | None:
    pod = pod_of_job(kube, ns, job)
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        state: Obj = (cs.get("state") or {}).get("terminated") or {}
        if state:
            return {"pod": pod, "state": state, "status": cs}
    return None


def lakeop_job(ns: str, name: str, script: str, **params: Any) -> Obj:
    """The Job lakeop builds for a run, with a probe script as its command."""
    job = build_job(
        JobParams(
            namespace=ns,
            ingestion_job=name,
            ingestion_job_uid="00000000-0000-0000-0000-000000000001",
            run=1,
            table="t",
            plan_json="{}",
            image=IMAGE,
            backoff_limit=0,
            **params,
        )
    )
    job["metadata"].pop("ownerReferences")
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python3", "-c", textwrap.dedent(script)]
    container["args"] = []
    return job


def test_node_runs_containerd_and_is_ready(node: Obj) -> None:
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://"), info
    assert info["kubeletVersion"] == "v1.34.4"
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True", node["status"]["conditions"]
    assert {t["key"] for t in node["spec"].get("taints") or []} >= {TAINT}
    images = {n for img in node["status"].get("images") or [] for n in img.get("names") or []}
    assert any(n == IMAGE or n.endswith(f"/{IMAGE}") for n in images), images


def test_kubectl_get_nodes_wide_shows_kubenode_on_containerd(kube: Any, node: Obj) -> None:
    """What the README promises a user sees: ``kubectl get nodes -o wide``."""
    lines = kube.kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    header = lines[0].split()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert NODE in rows, lines
    # CONTAINER-RUNTIME is the last column; OS-IMAGE and KERNEL-VERSION may contain spaces
    assert header[-1] == "CONTAINER-RUNTIME", header
    fields = rows[NODE].split()
    assert fields[1] == "Ready", rows[NODE]
    assert fields[-1].startswith("containerd://"), rows[NODE]
    assert fields[-1] == node["status"]["nodeInfo"]["containerRuntimeVersion"]
    assert fields[header.index("INTERNAL-IP")] == next(
        a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"
    )


PROBE = """
    import json, os
    r = {"uid": os.getuid(), "gid": os.getgid()}
    try:
        open("/probe", "w")
        r["root_write"] = "written"
    except OSError as exc:
        r["root_write"] = exc.strerror
    with open(os.path.join(os.environ["TMPDIR"], "probe"), "w") as f:
        r["scratch_write"] = f.write("ok")
    r["token"] = os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount")
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines())
    r["cap_eff"] = status["CapEff"].strip()
    r["seccomp"] = status["Seccomp"].strip()
    r["no_new_privs"] = status["NoNewPrivs"].strip()
    r["service_host"] = os.environ.get("KUBERNETES_SERVICE_HOST")
    print(json.dumps(r))
"""


def test_job_pod_is_hardened_inside_the_container(
    kube: Any, real_ns: str, wait_for: Callable[..., Any]
) -> None:
    job = lakeop_job(real_ns, "probe", PROBE)
    kube.kubectl("apply", "-n", real_ns, "-f", "-", input=json.dumps(job))
    name = job["metadata"]["name"]
    done = wait_for(lambda: terminated(kube, real_ns, name), timeout=120, what="the probe")
    assert done["pod"]["spec"]["nodeName"] == NODE
    assert done["status"]["containerID"].startswith("containerd://")
    pod = done["pod"]["metadata"]["name"]
    out = kube.kubectl("logs", "-n", real_ns, pod).stdout  # through the kubelet's API
    assert done["state"]["exitCode"] == 0, out
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["uid"] == 65532 and facts["gid"] == 65532
    assert facts["root_write"] == "Read-only file system"
    assert facts["scratch_write"] == 2  # the scratch emptyDir is writable
    assert facts["token"] is False  # automountServiceAccountToken: false
    assert facts["cap_eff"] == "0000000000000000"  # capabilities: drop ALL
    assert facts["seccomp"] == "2"  # RuntimeDefault: a seccomp filter is on
    assert facts["no_new_privs"] == "1"  # allowPrivilegeEscalation: false


CGROUP = """
    print(open("/proc/self/cgroup").read())
"""


def test_pods_live_under_the_clusters_own_cgroup_root(
    kube: Any, real_ns: str, wait_for: Callable[..., Any]
) -> None:
    """Two clusters on one machine (a second one with its own DEVCLUSTER_BRIDGE) keep their pods
    apart: a kubelet kills the pods it finds under its cgroup root and does not know."""
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("cgroup v2: the container sees its own cgroup namespace, not the path")
    job = lakeop_job(real_ns, "cgroup", CGROUP)
    kube.kubectl("apply", "-n", real_ns, "-f", "-", input=json.dumps(job))
    name = job["metadata"]["name"]
    done = wait_for(lambda: terminated(kube, real_ns, name), timeout=120, what="the probe")
    out = kube.kubectl("logs", "-n", real_ns, done["pod"]["metadata"]["name"]).stdout
    assert done["state"]["exitCode"] == 0, out
    (memory,) = [line for line in out.splitlines() if line.split(":")[1:2] == ["memory"]]
    root = f"/devcluster-{os.environ.get('DEVCLUSTER_BRIDGE', 'lakeop0')}/kubepods/"
    assert memory.split(":", 2)[2].startswith(root), out


def test_memory_limit_is_enforced_oomkilled(
    kube: Any, real_ns: str, wait_for: Callable[..., Any]
) -> None:
    script = """
        chunks = []
        for _ in range(64):
            chunks.append(bytearray(16 * 1024 * 1024))
        print("allocated", len(chunks) * 16, "MiB: the limit was not enforced")
    """
    limits = {"limits": {"memory": "128Mi"}, "requests": {"memory": "128Mi"}}
    job = lakeop_job(real_ns, "hog", script, resources=limits)
    kube.kubectl("apply", "-n", real_ns, "-f", "-", input=json.dumps(job))
    name = job["metadata"]["name"]
    done = wait_for(lambda: terminated(kube, real_ns, name), timeout=120, what="the hog")
    assert done["state"]["reason"] == "OOMKilled", done["state"]
    assert done["state"]["exitCode"] == 137


LOGIN = """
    import json, os, ssl, urllib.request
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    req = urllib.request.Request(
        f"https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                         "kind": "SelfSubjectReview"}).encode(),
        headers={"Authorization": "Bearer " + open(sa + "/token").read(),
                 "Content-Type": "application/json"},
    )
    ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
    review = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))
    print(json.dumps({"host": host, "user": review["status"]["userInfo"]["username"]}))
"""


def test_pod_logs_in_to_the_api_server_with_its_service_account(
    kube: Any, real_ns: str, wait_for: Callable[..., Any]
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "login"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "login",
                    "image": IMAGE,
                    "command": ["python3", "-c", textwrap.dedent(LOGIN)],
                    "securityContext": {"readOnlyRootFilesystem": True},
                }
            ],
        },
    }
    kube.kubectl("apply", "-n", real_ns, "-f", "-", input=json.dumps(pod))
    core = client.CoreV1Api(kube.api)

    def finished() -> Any:
        st = core.read_namespaced_pod("login", real_ns).status
        return st if st.phase in ("Succeeded", "Failed") else None

    status = wait_for(finished, timeout=120, what="the login pod")
    out = kube.kubectl("logs", "-n", real_ns, "login").stdout
    assert status.phase == "Succeeded", out
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["host"] == "10.96.0.1"  # the kubernetes Service's address
    assert facts["user"] == f"system:serviceaccount:{real_ns}:default"
