"""Fixtures for the operator's end-to-end tests: the CRDs, one lakeop operator subprocess per
test module, and fresh namespaces that operator watches.

One operator serves a whole module (``lakeop run --standalone --namespace <tag>-*``), so the
suite stays fast; each test still gets its own namespace matching the module's glob. Its Job
pods run on the real node by default (``job_node``; operator_e2e's docstring says how and how
a module opts into the process node instead).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from operator_e2e import (
    REAL_NODE,
    ROOT,
    HeldSource,
    JobNode,
    Operator,
    make_operator,
    set_module_node,
)
from operator_pods import installed, write_overlay

from waiting import wait_for

CRD_NAMES = ("tables.lakeop.io", "schemaversions.lakeop.io", "ingestionjobs.lakeop.io")


@pytest.fixture(scope="session")
def crds(kube: Any) -> None:
    kube.kubectl("apply", "-k", str(ROOT / "crds"))

    def established(name: str) -> bool:
        # polled rather than `kubectl wait`, which fails at once ("accessor error") while a
        # just-created CRD has no status conditions yet, as on a loaded API server
        out = kube.kubectl(
            "get",
            f"crd/{name}",
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}",
        ).stdout
        return out.strip() == "True"

    for name in CRD_NAMES:
        wait_for(lambda n=name: established(n), timeout=60, what=f"CRD {name} Established")


@pytest.fixture(scope="module")
def module_tag() -> str:
    return f"lko-{uuid.uuid4().hex[:5]}"


@pytest.fixture(scope="session")
def real_node(kube: Any) -> JobNode | None:
    """kubenode, when this cluster has one (not under ``DEVCLUSTER_NODE=process``)."""
    found = kube.kubectl("get", "node", REAL_NODE, "-o", "json", check=False)
    if found.returncode != 0:
        return None
    addresses = json.loads(found.stdout)["status"].get("addresses") or []
    (gateway,) = [a["address"] for a in addresses if a["type"] == "InternalIP"]
    return JobNode(real=True, host=gateway)


@pytest.fixture(scope="session")
def shared_root() -> Iterator[Path]:
    """The session's folder for lakes and tests' files, at the same path in every Job pod.

    Outside pytest's own temp root, whose parent pytest keeps at mode 0700 (another session
    starting would close it again): the pods' uid must get through every parent.
    """
    root = Path(tempfile.mkdtemp(prefix="lakeop-e2e-"))
    root.chmod(0o777)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def job_node(
    request: pytest.FixtureRequest, real_node: JobNode | None, shared_root: Path
) -> Iterator[JobNode]:
    """Where this module's Job pods run: kubenode, unless the module is marked
    ``process_node`` or the cluster has no real node. Every ``make_operator`` of the module
    uses it unless told otherwise."""
    node = JobNode(real=False)
    wanted = os.environ.get("LAKEOP_E2E_NODE", "real")  # "process": every module there
    if (
        real_node is not None
        and wanted != "process"
        and request.node.get_closest_marker("process_node") is None
    ):
        node = JobNode(real=True, host=real_node.host, shared=shared_root)
    set_module_node(node)
    yield node
    set_module_node(None)


@pytest.fixture(scope="module")
def kubenode(job_node: JobNode) -> JobNode:
    """The real node, for a module whose tests are about it (skipped without one)."""
    if not job_node.real:
        pytest.skip("no real node in this cluster (DEVCLUSTER_NODE=process)")
    return job_node


@pytest.fixture(scope="module")
def operator_pods(
    kube: Any, crds: None, kubenode: JobNode, lake: Path
) -> Iterator[list[dict[str, Any]]]:
    """lakeop installed with ``kubectl apply -k`` (operator_pods.py): two replicas on
    kubenode in peering, sharing the module's ``lake`` with their Job pods; yields the
    rendered documents. Removed again (CRDs kept) when the module is done."""
    overlay = write_overlay(_open_dir(lake.parent, "overlay"), lake)
    with installed(kube, overlay) as docs:
        yield docs


def _open_dir(parent: Path, stem: str) -> Path:
    path = parent / f"{stem[:40]}-{uuid.uuid4().hex[:6]}"
    path.mkdir(mode=0o777)
    path.chmod(0o777)  # whatever the umask: the Job pods (uid 65532) write here too
    return path


@pytest.fixture
def tmp_path(shared_root: Path, request: pytest.FixtureRequest) -> Path:
    """A test's own folder, under the folder every Job pod mounts (see ``shared_root``)."""
    return _open_dir(
        shared_root, "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name)
    )


@pytest.fixture(scope="module")
def lake(shared_root: Path) -> Path:
    return _open_dir(shared_root, "lake")


@pytest.fixture(scope="module")
def operator(
    kube: Any,
    crds: None,
    *,
    module_tag: str,
    lake: Path,
    job_node: JobNode,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    op = make_operator(kube, module_tag, lake, tmp_path_factory.mktemp("operator"), job_node)
    op.start()
    yield op
    op.stop()


@pytest.fixture
def ns(kube: Any, module_tag: str) -> Iterator[str]:
    """A fresh namespace the module's operator watches (``<module tag>-<n>``)."""
    yield from _namespace(kube, module_tag)


@pytest.fixture
def ns2(kube: Any, module_tag: str) -> Iterator[str]:
    """A second fresh namespace, for tests across namespaces."""
    yield from _namespace(kube, module_tag)


def _namespace(kube: Any, module_tag: str) -> Iterator[str]:
    core = client.CoreV1Api(kube.api)
    name = f"{module_tag}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"lakeop.io/test": "true"})
        )
    )
    yield name
    # Tables carry the operator's finalizer: delete them while the module's operator still
    # runs, or the namespace would hang in Terminating once the operator is gone.
    kube.kubectl("delete", "ltbl", "--all", "-n", name, "--timeout=60s", check=False)
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def _engine_services() -> Any:
    services = sys.modules.get("engine_services")  # imported already by the engine tests
    if services is None:
        path = ROOT / "tests" / "engine" / "engine_services.py"
        spec = importlib.util.spec_from_file_location("engine_services", path)
        assert spec is not None and spec.loader is not None
        services = sys.modules["engine_services"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(services)
    return services


@pytest.fixture(scope="session")
def postgres_url(real_node: JobNode | None) -> Iterator[str]:
    """A real PostgreSQL (the engine tests' service, started the same way); with a real node
    it listens on the pod bridge's gateway too, trusts the pods' network, and the URL names
    the gateway (reachable from the host and from Job pods on either node)."""
    listen: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    if real_node is not None:
        listen = (real_node.host,)
        allow = (str(ipaddress.ip_network(f"{real_node.host}/24", strict=False)),)
    with _engine_services().postgres(listen=listen, allow=allow) as url:
        yield str(url)


@pytest.fixture(scope="session")
def minio_server(real_node: JobNode | None) -> Iterator[Any]:
    """A real MinIO (``engine_services.S3Server``); with a real node it listens on the pod
    bridge's gateway, which the host and the Job pods of either node reach."""
    host = real_node.host if real_node is not None else "127.0.0.1"
    with _engine_services().minio(host=host) as server:
        yield server


@pytest.fixture
def held(
    postgres_url: str, module_tag: str, request: pytest.FixtureRequest
) -> Iterator[HeldSource]:
    """1,000 rows in PostgreSQL that a run reads only once the test releases them."""
    name = f"held_{module_tag}_{request.node.name[5:25]}".replace("-", "_").lower()
    with HeldSource(postgres_url, name, 1000) as source:
        yield source
