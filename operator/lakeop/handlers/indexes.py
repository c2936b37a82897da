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
from lakeop.core.spec.peers import parse_peer, peer_of
from lakeop.kube.client import Kube

PeerIndex = kopf.Index[tuple[str, str], Peer]


@kopf.index(GROUP, VERSION, SCHEMA_VERSIONS)
def schema_versions_by_table(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], Peer]:
    parsed = parse_peer(body)
    if parsed is None:
        return {}
    sv, peer = parsed
    return {(namespace or "default", sv.table_ref): peer}


def peers_of(kwargs: Mapping[str, Any], namespace: str, table: str) -> list[Peer]:
    """The SchemaVersions of a table, from the index kopf passes to every handler."""
    index: PeerIndex = kwargs["schema_versions_by_table"]
    return list(index.get((namespace, table), []))


async def schema_peers(kube: Kube, namespace: str, table: str) -> list[Peer]:
    """The SchemaVersions of a table, listed from the API server (where no index is at hand:
    the webhook must see versions applied a moment ago, before the watch delivers them)."""
    return [
        peer
        for obj in await kube.list_objects(SCHEMA_VERSIONS, namespace)
        if (peer := peer_of(obj, table)) is not None
    ]
