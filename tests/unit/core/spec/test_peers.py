"""One conversion of a SchemaVersion into a chain peer, from its parsed spec."""

from __future__ import annotations

from typing import Any

from lakeop.core.schema.verdict import Peer
from lakeop.core.spec.peers import parse_peer, peer_of, schema_peer
from lakeop.core.spec.resources import parse_schema_version

FIELDS = [{"name": "id", "type": "long"}]


def _body(table: str, version: Any, fields: Any = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "SchemaVersion",
        "metadata": {"name": f"{table}-v{version}", "namespace": "ns", **meta},
        "spec": {
            "tableRef": table,
            "version": version,
            "fields": FIELDS if fields is None else fields,
        },
        "status": {"phase": "Accepted"},
    }


def test_peer_of_keeps_only_the_tables_live_versions() -> None:
    assert peer_of(_body("t", 2), "t") == Peer("t-v2", 2, tuple(FIELDS), "Accepted")
    assert peer_of(_body("other", 2), "t") is None
    assert peer_of(_body("t", "2"), "t") is None
    assert peer_of(_body("t", True), "t") is None
    assert peer_of(_body("t", 2, deletionTimestamp="2026-01-01T00:00:00Z"), "t") is None


def test_a_version_whose_fields_are_no_schema_holds_no_version() -> None:
    """As in ``lakeop validate``: its own verdict is Rejected, it is nobody's peer."""
    assert peer_of(_body("t", 1, fields=[])) is None
    assert parse_peer(_body("t", 1, fields=[{"name": "x", "type": "nope"}])) is None


def test_the_peer_is_the_parsed_specs() -> None:
    body = _body("t", 3, creationTimestamp="2026-01-01T00:00:00Z")
    parsed = parse_peer(body)
    assert parsed is not None
    sv, peer = parsed
    assert sv == parse_schema_version(body)
    assert peer == schema_peer(sv, phase="Accepted", created="2026-01-01T00:00:00Z")
    assert (peer.name, peer.version, list(peer.fields)) == ("t-v3", 3, FIELDS)
