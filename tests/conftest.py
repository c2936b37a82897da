"""Shared pytest fixtures for tests that need the local Kubernetes control plane.

End-to-end tests run against the devcluster (see docs/devcluster.md): a real etcd,
kube-apiserver and kube-controller-manager plus a process node that runs pods as local
processes. These fixtures start it once per session (or reuse one that is already up)
and give each test a fresh namespace. Mark such tests ``@pytest.mark.e2e``.

Fixtures and helpers (exact signatures):

``kube`` (session) -> ``KubeCluster``
    ``.kubeconfig: Path`` (``.devcluster/kubeconfig``), ``.api: kubernetes.client.ApiClient``
    (sync client, admin credential), ``.root: Path`` (repository root),
    ``.kubectl_bin: Path``, ``.logs_dir: Path`` (``.devcluster/logs``), ``.state_dir: Path``,
    ``.env() -> dict[str, str]`` (``os.environ`` plus ``KUBECONFIG``, for subprocesses),
    ``.pod_log(namespace, pod, container) -> str`` (a container's stdout+stderr as written by
    the process node to ``.devcluster/logs/pods/<ns>_<pod>_<container>.log``; "" if absent),
    ``.kubectl(*args, input=None, check=True, timeout=60.0) -> CompletedProcess[str]``.

``namespace`` (function) -> ``str``
    Name of a namespace created for this test (label ``lakeop.io/test=true``); deleted
    afterwards without waiting.

``wait_for`` (fixture) -> ``waiting.wait_for(predicate, timeout=30.0, what="condition",
interval=0.25, *, ignore=(Exception,)) -> T``, the suite's one polling helper (tests/waiting.py)
    Calls ``predicate()`` until it returns a truthy value and returns that value. Exceptions
    raised by the predicate count as "not yet". On timeout raises ``AssertionError`` naming
    ``what``, the last value and the last exception.

``kubectl`` (fixture, needs the cluster) -> ``kube.kubectl``
    ``kubectl("get", "pods", "-n", ns, "-o", "json")``; with ``check=True`` a non-zero exit
    raises ``AssertionError`` showing the command, stdout and stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
# DEVCLUSTER_DIR (as for devcluster/cluster.sh) points the tests at a second cluster.
DEVCLUSTER = Path(os.environ.get("DEVCLUSTER_DIR") or ROOT / ".devcluster")
KUBECONFIG = DEVCLUSTER / "kubeconfig"
KUBECTL = ROOT / ".devcluster" / "bin" / "kubectl"


def _run_kubectl(
    kubeconfig: Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    cmd = [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args]
    proc = subprocess.run(
        cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl failed (exit {proc.returncode}): {' '.join(args)}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@dataclass
class KubeCluster:
    """Handle on the running devcluster, shared by every e2e test in the session."""

    kubeconfig: Path
    api: Any  # kubernetes.client.ApiClient (the sync client ships no type hints)
    root: Path = ROOT
    kubectl_bin: Path = KUBECTL
    logs_dir: Path = field(default=DEVCLUSTER / "logs")
    state_dir: Path = DEVCLUSTER

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        path = self.logs_dir / "pods" / f"{namespace}_{pod}_{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        return _run_kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)


def _cluster_ready() -> bool:
    """Every component running (by pid) and /readyz ok, as ``cluster.sh status`` checks."""
    if not (KUBECONFIG.exists() and KUBECTL.exists()):
        return False
    status = ["bash", str(ROOT / "devcluster" / "cluster.sh"), "status"]
    return subprocess.run(status, capture_output=True, check=False, timeout=30).returncode == 0


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    if not _cluster_ready():
        subprocess.run(["bash", str(ROOT / "devcluster" / "build.sh")], check=True, cwd=ROOT)
        subprocess.run(
            ["bash", str(ROOT / "devcluster" / "cluster.sh"), "up"], check=True, cwd=ROOT
        )
    api = config.new_client_from_config(config_file=str(KUBECONFIG))  # type: ignore[no-untyped-call]
    try:
        wait_for(
            lambda: client.CoreV1Api(api).list_namespace(limit=1) is not None,
            timeout=60,
            what="the devcluster API server to answer",
        )
        yield KubeCluster(kubeconfig=KUBECONFIG, api=api)
    finally:
        api.close()


@pytest.fixture
def namespace(kube: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    core = client.CoreV1Api(kube.api)
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"lakeop.io/test": "true"})
        )
    )
    wait_for(
        lambda: (
            core.list_namespaced_service_account(name, field_selector="metadata.name=default").items
        ),
        timeout=30,
        what=f"ServiceAccount default in namespace {name}",
    )
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(name="kubectl")
def kubectl_fixture(kube: KubeCluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    return kube.kubectl
