"""Fixtures for the operator's end-to-end tests: the CRDs, one lakeop operator subprocess per
test module, and fresh namespaces that operator watches.

One operator serves a whole module (``lakeop run --standalone --namespace <tag>-*``), so the
suite stays fast; each test still gets its own namespace matching the module's glob.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from operator_e2e import ROOT, HeldSource, Operator, make_operator

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


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lake")


@pytest.fixture(scope="module")
def operator(
    kube: Any,
    crds: None,
    module_tag: str,
    lake: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    op = make_operator(kube, module_tag, lake, tmp_path_factory.mktemp("operator"))
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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL (the engine tests' service, started the same way)."""
    services = sys.modules.get("engine_services")  # imported already by the engine tests
    if services is None:
        path = ROOT / "tests" / "engine" / "engine_services.py"
        spec = importlib.util.spec_from_file_location("engine_services", path)
        assert spec is not None and spec.loader is not None
        services = sys.modules["engine_services"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(services)
    with services.postgres() as url:
        yield str(url)


@pytest.fixture
def held(
    postgres_url: str, module_tag: str, request: pytest.FixtureRequest
) -> Iterator[HeldSource]:
    """1,000 rows in PostgreSQL that a run reads only once the test releases them."""
    name = f"held_{module_tag}_{request.node.name[5:25]}".replace("-", "_").lower()
    with HeldSource(postgres_url, name, 1000) as source:
        yield source
