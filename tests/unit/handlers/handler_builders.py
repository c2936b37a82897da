"""Objects of the three kinds, and Ready tables, for the handler tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
from fake_kube import FakeKube

from lakeop.core.constants import SCHEMA_VERSIONS, TABLES
from lakeop.core.schema.verdict import Peer
from lakeop.core.spec.peers import peer_of

NS = "team"


@dataclass(frozen=True)
class Event:
    kind: str
    name: str
    type: str
    reason: str
    message: str


def body(obj: Mapping[str, Any]) -> kopf.Body:
    return kopf.Body(dict(obj))  # type: ignore[arg-type]


def table_obj(name: str = "events", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "Table",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"format": "parquet", **spec},
    }


FIELDS_V1 = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "name", "type": "string"},
]


def sv_obj(
    version: int,
    fields: list[dict[str, Any]] | None = None,
    *,
    table: str = "events",
    phase: str | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "SchemaVersion",
        "metadata": {
            "name": f"{table}-v{version}",
            "namespace": NS,
            "uid": f"uid-{table}-v{version}",
            "generation": 1,
            "creationTimestamp": f"2026-01-01T00:0{version}:00Z",
        },
        "spec": {"tableRef": table, "version": version, "fields": fields or FIELDS_V1},
    }
    if phase is not None:
        obj["status"] = {"phase": phase}
    return obj


def ij_obj(name: str = "load", *, status: Mapping[str, Any] | None = None, **spec: Any) -> dict:
    obj: dict[str, Any] = {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "tableRef": "events",
            "source": {"uri": "file:///data/in.csv", "format": "csv"},
            **spec,
        },
    }
    if status is not None:
        obj["status"] = dict(status)
    return obj


def peers_index(*svs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``schema_versions_by_table`` index kopf passes to handlers, as a plain mapping."""
    index: dict[tuple[str, str], list[Peer]] = {}
    for sv in svs:  # as the index handler builds it (lakeop.core.spec.peers)
        peer = peer_of(sv)
        if peer is not None:
            index.setdefault((NS, sv["spec"]["tableRef"]), []).append(peer)
    return {"schema_versions_by_table": index}


def ready(fake: FakeKube, lake: Path, *, accepted: int = 1) -> None:
    """A Ready table with ``accepted`` SchemaVersions, all Accepted, in the fake."""
    location = (lake / NS / "events").as_uri()
    fake.put(
        TABLES,
        {
            **table_obj(),
            "status": {
                "location": location,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}],
            },
        },
    )
    for v in range(1, accepted + 1):
        fake.put(SCHEMA_VERSIONS, sv_obj(v, phase="Accepted"))
