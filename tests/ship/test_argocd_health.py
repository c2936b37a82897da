"""ArgoCD health checks for lakeop kinds, run under a real Lua 5.1 interpreter (lupa).

The scripts are taken from the rendered argocd-cm snippet (``kubectl kustomize
manifests/argocd``), i.e. exactly what an ArgoCD installation would be given. ArgoCD runs them
under gopher-lua, a Lua 5.1: lupa's ``lua51`` runtime is the closest real interpreter.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".devcluster" / "bin" / "kubectl"
KEY = "resource.customizations.health.lakeop.io_{kind}"
KINDS = ("Table", "SchemaVersion", "IngestionJob")


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    assert KUBECTL.exists(), f"{KUBECTL} is missing: `make cluster-bin` builds it"
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "manifests" / "argocd")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (config_map,) = list(yaml.safe_load_all(out))
    assert config_map["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    }
    data: dict[str, str] = config_map["data"]
    actions = {"resource.customizations.actions.lakeop.io_IngestionJob"}  # test_argocd_actions
    assert set(data) == {KEY.format(kind=k) for k in KINDS} | actions
    for kind in KINDS:
        shipped = (ROOT / "manifests" / "argocd" / "health" / f"{kind}.lua").read_text()
        assert data[KEY.format(kind=kind)] == shipped
    return {
        kind: data[KEY.format(kind=kind)] for kind in ("Table", "SchemaVersion", "IngestionJob")
    }


def health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    status, message = result["status"], result["message"]
    assert status in {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
    return str(status), str(message)


def ready(status: str, reason: str, message: str = "", generation: int = 1) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def obj(
    kind: str,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "analytics", "generation": generation},
        "spec": spec or {},
    }
    if status is not None:
        body["status"] = status
    return body


TABLE_CASES = [
    ("no status yet", obj("Table"), "Progressing", "Waiting"),
    (
        "ready",
        obj("Table", status={"observedGeneration": 1, "conditions": [ready("True", "Reconciled")]}),
        "Healthy",
        "",
    ),
    (
        "location refused",
        obj(
            "Table",
            status={
                "observedGeneration": 1,
                "conditions": [ready("False", "LocationRefused", "not under s3://lake/analytics")],
            },
        ),
        "Degraded",
        "LocationRefused: not under s3://lake/analytics",
    ),
    (
        "storage unavailable",
        obj("Table", status={"conditions": [ready("False", "StorageUnavailable", "timeout")]}),
        "Degraded",
        "StorageUnavailable",
    ),
    (
        "being deleted",
        obj("Table", status={"conditions": [ready("False", "Deleting", "removing data")]}),
        "Progressing",
        "removing data",
    ),
    (
        "ready unknown",
        obj("Table", status={"conditions": [ready("Unknown", "Reconciling")]}),
        "Progressing",
        "",
    ),
    (
        "spec change not yet observed",
        obj(
            "Table",
            generation=3,
            status={"observedGeneration": 2, "conditions": [ready("True", "Reconciled")]},
        ),
        "Progressing",
        "generation 3",
    ),
    ("status without conditions", obj("Table", status={"rows": 0}), "Progressing", ""),
]

SCHEMA_CASES = [
    ("no status yet", obj("SchemaVersion"), "Progressing", "Waiting"),
    (
        "accepted",
        obj(
            "SchemaVersion",
            status={
                "observedGeneration": 1,
                "phase": "Accepted",
                "conditions": [ready("True", "Accepted", "compatible with 1 under BACKWARD")],
            },
        ),
        "Healthy",
        "compatible with 1",
    ),
    (
        "rejected as incompatible",
        obj(
            "SchemaVersion",
            status={
                "observedGeneration": 1,
                "phase": "Rejected",
                "conditions": [ready("False", "Incompatible", "violates BACKWARD")],
                "compatibility": {
                    "mode": "BACKWARD",
                    "checkedAgainst": [1],
                    "violations": [
                        {"field": "amount", "rule": "TypeNarrowed", "message": "..."},
                        {"field": "id", "rule": "FieldRemoved", "message": "..."},
                    ],
                },
            },
        ),
        "Degraded",
        "Rejected (Incompatible): 2 compatibility violation(s), first: amount TypeNarrowed",
    ),
    (
        "rejected as invalid",
        obj(
            "SchemaVersion",
            status={
                "phase": "Rejected",
                "conditions": [ready("False", "InvalidSchema", "fields[0].type: unknown 'strng'")],
            },
        ),
        "Degraded",
        "Rejected (InvalidSchema): fields[0].type: unknown 'strng'",
    ),
    (
        "pending on its table",
        obj(
            "SchemaVersion",
            status={
                "phase": "Pending",
                "conditions": [ready("False", "TableNotFound", "Table user-events not found")],
            },
        ),
        "Progressing",
        "TableNotFound",
    ),
    (
        "not yet observed",
        obj("SchemaVersion", generation=2, status={"observedGeneration": 1, "phase": "Accepted"}),
        "Progressing",
        "generation 2",
    ),
]

SCHEDULE = {"tableRef": "t", "schedule": "0 2 * * *"}
LAST_OK = {"rowsWritten": 1000, "error": None}
LAST_FAILED = {"rowsWritten": 0, "error": {"reason": "SourceNotFound", "message": "no files"}}

JOB_CASES = [
    ("no status yet", obj("IngestionJob", {"tableRef": "t"}), "Progressing", "Waiting"),
    (
        "one-off succeeded",
        obj(
            "IngestionJob",
            {"tableRef": "t"},
            {"observedGeneration": 1, "phase": "Succeeded", "lastRun": LAST_OK},
        ),
        "Healthy",
        "Succeeded (1000 rows written)",
    ),
    (
        "failed",
        obj("IngestionJob", {"tableRef": "t"}, {"phase": "Failed", "lastRun": LAST_FAILED}),
        "Degraded",
        "SourceNotFound: no files",
    ),
    ("failed without run", obj("IngestionJob", {}, {"phase": "Failed"}), "Degraded", "Failed"),
    ("pending", obj("IngestionJob", {}, {"phase": "Pending"}), "Progressing", "Pending"),
    (
        "queued",
        obj(
            "IngestionJob",
            {},
            {"phase": "Queued", "conditions": [ready("False", "Queued", "position 3 of 5")]},
        ),
        "Progressing",
        "Queued: position 3 of 5",
    ),
    ("running", obj("IngestionJob", {}, {"phase": "Running"}), "Progressing", "Running"),
    ("suspended phase", obj("IngestionJob", {}, {"phase": "Suspended"}), "Suspended", ""),
    (
        "suspended before any status",
        obj("IngestionJob", {"suspend": True}),
        "Suspended",
        "spec.suspend",
    ),
    (
        "suspend asked while a run is still running",
        obj("IngestionJob", {"suspend": True}, {"phase": "Running"}),
        "Progressing",
        "Running",
    ),
    (
        "scheduled, last run fine",
        obj("IngestionJob", SCHEDULE, {"phase": "Scheduled", "lastRun": LAST_OK}),
        "Healthy",
        "next scheduled run (1000 rows written)",
    ),
    (
        "scheduled, no run yet",
        obj("IngestionJob", SCHEDULE, {"phase": "Scheduled"}),
        "Healthy",
        "next scheduled run",
    ),
    (
        "scheduled, last run failed",
        obj("IngestionJob", SCHEDULE, {"phase": "Scheduled", "lastRun": LAST_FAILED}),
        "Degraded",
        "Last scheduled run failed: SourceNotFound",
    ),
    (
        "scheduled, next run in flight after a good one",
        obj("IngestionJob", SCHEDULE, {"phase": "Running", "lastRun": LAST_OK}),
        "Healthy",
        "a run is running",
    ),
    (
        "scheduled, first run queued",
        obj("IngestionJob", SCHEDULE, {"phase": "Queued"}),
        "Healthy",
        "a run is queued",
    ),
    (
        "scheduled, running after a failed run",
        obj("IngestionJob", SCHEDULE, {"phase": "Running", "lastRun": LAST_FAILED}),
        "Degraded",
        "Last scheduled run failed",
    ),
    (
        "scheduled, last run failed with phase Failed",
        obj("IngestionJob", SCHEDULE, {"phase": "Failed", "lastRun": LAST_FAILED}),
        "Degraded",
        "SourceNotFound",
    ),
    (
        "scheduled and suspended",
        obj("IngestionJob", {**SCHEDULE, "suspend": True}, {"phase": "Suspended"}),
        "Suspended",
        "",
    ),
    (
        "spec change not yet observed",
        obj("IngestionJob", {}, {"observedGeneration": 1, "phase": "Succeeded"}, generation=2),
        "Progressing",
        "generation 2",
    ),
]


CASES = (
    [("Table", *c) for c in TABLE_CASES]
    + [("SchemaVersion", *c) for c in SCHEMA_CASES]
    + [("IngestionJob", *c) for c in JOB_CASES]
)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_health(scripts: dict[str, str], case: tuple[str, str, dict[str, Any], str, str]) -> None:
    kind, what, body, expected, fragment = case
    status, message = health(scripts[kind], body)
    assert (status, fragment in message) == (expected, True), f"{what}: {status}: {message!r}"


def test_scripts_keep_to_lua_51() -> None:
    """gopher-lua has no goto, integer division, bitwise operators or utf8 library."""
    for path in (ROOT / "manifests" / "argocd" / "health").glob("*.lua"):
        text = path.read_text()
        for construct in ("goto ", "//", " & ", " | ", "utf8.", "<const>", "<close>"):
            assert construct not in text, (path.name, construct)
