"""A parsed IngestionJob spec for tests of the run decisions, which take the typed spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.spec.resources import IngestionJobSpec, parse_ingestion_job

BASE = {"tableRef": "t", "source": {"uri": "file:///in/*.csv", "format": "csv"}}


def ingestion_job(
    spec: Mapping[str, Any] | None = None, *, name: str = "ij", namespace: str = "ns"
) -> IngestionJobSpec:
    """IngestionJob ``namespace/name`` with ``spec`` over a minimal valid one."""
    manifest = {
        "kind": "IngestionJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**BASE, **dict(spec or {})},
    }
    return parse_ingestion_job(manifest)
