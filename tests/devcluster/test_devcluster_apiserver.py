"""The devcluster's API server is the real one: CRD schemas, CEL rules, printer columns,
ServiceAccount tokens."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def widget_crd(kube: Any, wait_for: Any) -> Iterator[tuple[str, str]]:
    """A throwaway cluster-scoped CRD (unique group per test) -> (plural.group, kind)."""
    group = f"t{uuid.uuid4().hex[:8]}.devcluster.lakeop.io"
    name = f"widgets.{group}"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "minReplicas": {"type": "integer"},
                    "maxReplicas": {"type": "integer"},
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "self.minReplicas <= self.maxReplicas",
                        "message": "minReplicas must not exceed maxReplicas",
                    }
                ],
            }
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Max", "type": "integer", "jsonPath": ".spec.maxReplicas"},
                    ],
                }
            ],
        },
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(crd))
    kube.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")
    yield name, f"{group}/v1"
    kube.kubectl("delete", "crd", name, "--wait=false")


def test_crd_printer_columns_and_cel_rule_enforced_by_kubectl_apply(
    kube: Any, namespace: str, widget_crd: tuple[str, str], wait_for: Any
) -> None:
    name, api_version = widget_crd

    def widget(wname: str, lo: int, hi: int) -> str:
        spec = {"size": 3, "minReplicas": lo, "maxReplicas": hi}
        body = {
            "apiVersion": api_version,
            "kind": "Widget",
            "metadata": {"name": wname},
            "spec": spec,
        }
        return json.dumps(body)

    wait_for(
        lambda: (
            kube.kubectl(
                "apply", "-n", namespace, "-f", "-", input=widget("ok", 1, 2), check=False
            ).returncode
            == 0
        ),
        30,
        "a valid Widget to be accepted (CRD discovery)",
    )
    bad = kube.kubectl("apply", "-n", namespace, "-f", "-", input=widget("bad", 5, 2), check=False)
    assert bad.returncode != 0
    assert "minReplicas must not exceed maxReplicas" in bad.stderr
    missing = json.dumps(
        {"apiVersion": api_version, "kind": "Widget", "metadata": {"name": "m"}, "spec": {}}
    )
    schema_err = kube.kubectl("apply", "-n", namespace, "-f", "-", input=missing, check=False)
    assert schema_err.returncode != 0
    assert "spec.size: Required value" in schema_err.stderr
    table = kube.kubectl("get", name, "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "MAX"]
    assert table[1].split()[:3] == ["ok", "3", "2"]


def test_service_account_token_request(kube: Any, namespace: str) -> None:
    token = kube.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    review = kube.kubectl(
        "create",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            }
        ),
    )
    status = json.loads(review.stdout)["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == f"system:serviceaccount:{namespace}:default"
