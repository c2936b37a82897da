"""Fixtures for the devcluster's own tests.

The process node lives outside the ``lakeop`` package (it is dev tooling, started by
``devcluster/cluster.sh``), so its directory is put on ``sys.path`` for the unit tests.
``objs`` wraps ``kubectl`` for the end-to-end tests: manifests in, JSON dicts out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "devcluster"))

Obj = dict[str, Any]


class Objects:
    """Namespaced object helpers on top of the session's kubectl."""

    def __init__(self, kube: Any, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def apply(self, manifest: Obj) -> None:
        self.kube.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(manifest))

    def get(self, kind: str, name: str) -> Obj | None:
        proc = self.kube.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(f"kubectl get {kind} {name}: {proc.stderr}")
        obj: Obj = json.loads(proc.stdout)
        return obj

    def list(self, kind: str, selector: str = "") -> list[Obj]:
        args = ["get", kind, "-n", self.namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[Obj] = json.loads(self.kube.kubectl(*args).stdout)["items"]
        return items

    def delete(self, kind: str, name: str, *flags: str) -> None:
        self.kube.kubectl("delete", kind, name, "-n", self.namespace, "--wait=false", *flags)


@pytest.fixture
def objs(kube: Any, namespace: str) -> Objects:
    return Objects(kube, namespace)
