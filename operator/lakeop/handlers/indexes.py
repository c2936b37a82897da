"""In-memory indexes kopf keeps current from its watch streams.

Judging a SchemaVersion and computing a table's ``currentSchemaVersion`` need all
SchemaVersions of one table. Listing them from the API server on every event costs
O(versions) per event, which is what made hundreds of tables applied at once slow; an index
keyed by ``(namespace, tableRef)`` answers from memory, fed by the watch kopf already runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from lakeop.core.constants import GROUP, SCHEMA_VERSIONS, VERSION
from lakeop.core.schema.verdict import Peer

PeerIndex = kopf.Index[tuple[str, str], Peer]


@kopf.index(GROUP, VERSION, SCHEMA_VERSIONS)
def schema_versions_by_table(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    **_: Any,
) -> dict[tuple[str, str], Peer]:
    version, table = spec.get("version"), spec.get("tableRef")
    if not isinstance(version, int) or not isinstance(table, str):
        return {}
    peer = Peer(
        name=name,
        version=version,
        fields=list(spec.get("fields") or []),
        phase=status.get("phase"),
        created=str(meta.get("creationTimestamp") or ""),
    )
    return {(namespace or "default", table): peer}


def peers_of(kwargs: Mapping[str, Any], namespace: str, table: str) -> list[Peer]:
    """The SchemaVersions of a table, from the index kopf passes to every handler."""
    index: PeerIndex = kwargs["schema_versions_by_table"]
    return list(index.get((namespace, table), []))
