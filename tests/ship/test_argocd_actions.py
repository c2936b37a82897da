"""ArgoCD resource actions for IngestionJob (rerun, suspend, resume) under a real Lua 5.1.

ArgoCD runs ``discovery.lua`` to list the actions with their ``disabled`` flags and then the
chosen action's ``action.lua``, whose returned object it patches into the cluster. Both run
here under lupa's Lua 5.1 (ArgoCD uses gopher-lua, a Lua 5.1) on sample objects, and the
returned object is compared with what lakeop acts on: a new ``lakeop.io/rerun`` token, or
``spec.suspend``.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".devcluster" / "bin" / "kubectl"
ACTIONS = ROOT / "manifests" / "argocd" / "actions" / "IngestionJob.yaml"
KEY = "resource.customizations.actions.lakeop.io_IngestionJob"
TOKEN = re.compile(r"^argocd-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def customization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ACTIONS.read_text())
    assert set(data) == {"discovery.lua", "definitions"}
    return data


def to_python(value: Any) -> Any:
    if lua51.lua_type(value) == "table":
        items = {k: to_python(v) for k, v in value.items()}
        return items
    return value


def run(script: str, body: dict[str, Any]) -> dict[str, Any]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(copy.deepcopy(body), recursive=True)
    out: dict[str, Any] = to_python(lua.execute(script))
    return out


def action(customization: dict[str, Any], name: str) -> str:
    (found,) = [d["action.lua"] for d in customization["definitions"] if d["name"] == name]
    return str(found)


def ij(
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "daily", "namespace": "analytics", "generation": 2}
    if annotations is not None:
        meta["annotations"] = annotations
    body: dict[str, Any] = {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": meta,
        "spec": {"tableRef": "events", "source": {"uri": "s3://in/*.csv", "format": "csv"}},
    }
    body["spec"].update(spec or {})
    if status is not None:
        body["status"] = status
    return body


RUNNING = {"phase": "Running", "currentRun": {"number": 3, "jobName": "daily-1a2b3c4d"}}
DONE = {"phase": "Succeeded", "lastRun": {"number": 2}}


@pytest.mark.parametrize(
    ("case", "body", "enabled"),
    [
        ("no status yet", ij(), {"rerun", "suspend"}),
        ("finished", ij(status=DONE), {"rerun", "suspend"}),
        ("scheduled, between runs", ij({"schedule": "@daily"}, DONE), {"rerun", "suspend"}),
        ("running", ij(status=RUNNING), {"suspend"}),
        ("suspended", ij({"suspend": True}, DONE), {"resume"}),
        ("suspended while running", ij({"suspend": True}, RUNNING), {"resume"}),
        ("explicitly not suspended", ij({"suspend": False}, DONE), {"rerun", "suspend"}),
    ],
)
def test_discovery_enables_what_makes_sense(
    customization: dict[str, Any], case: str, body: dict[str, Any], enabled: set[str]
) -> None:
    found = run(customization["discovery.lua"], body)
    assert set(found) == {"rerun", "suspend", "resume"}, case
    assert {name for name, a in found.items() if not a["disabled"]} == enabled, case
    assert all(a["displayName"] and a["iconClass"] for a in found.values())


def test_every_discovered_action_has_a_definition(customization: dict[str, Any]) -> None:
    names = [d["name"] for d in customization["definitions"]]
    assert sorted(names) == ["rerun", "resume", "suspend"]


@pytest.mark.parametrize("annotations", [None, {}, {"team": "data", "lakeop.io/rerun": "old"}])
def test_rerun_sets_a_new_token_and_nothing_else(
    customization: dict[str, Any], annotations: dict[str, str] | None
) -> None:
    body = ij(status=DONE, annotations=annotations)
    out = run(action(customization, "rerun"), body)
    token = out["metadata"]["annotations"].pop("lakeop.io/rerun")
    assert TOKEN.match(token), token
    assert token != "old"
    expected = copy.deepcopy(body)
    expected["metadata"]["annotations"] = {
        k: v for k, v in (annotations or {}).items() if k != "lakeop.io/rerun"
    }
    assert out == expected


@pytest.mark.parametrize(
    ("name", "start", "suspend"),
    [("suspend", None, True), ("suspend", False, True), ("resume", True, False)],
)
def test_suspend_and_resume_set_spec_suspend(
    customization: dict[str, Any], name: str, start: bool | None, suspend: bool
) -> None:
    body = ij({} if start is None else {"suspend": start}, DONE)
    out = run(action(customization, name), body)
    assert out["spec"].pop("suspend") is suspend
    body["spec"].pop("suspend", None)
    assert out == body


def test_the_argocd_cm_snippet_carries_the_actions_as_shipped() -> None:
    assert KUBECTL.exists(), f"{KUBECTL} is missing: `make cluster-bin` builds it"
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "manifests" / "argocd")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (config_map,) = list(yaml.safe_load_all(out))
    assert config_map["data"][KEY] == ACTIONS.read_text()
