"""A SchemaVersion as a :class:`~lakeop.core.schema.verdict.Peer`, from its typed spec: the one
conversion every judge of a chain uses (the kopf index, the run gate, the webhook, the
SchemaVersion handler, ``lakeop validate`` and ``lakeop ingest -f``).

A peer is built from a parsed :class:`~lakeop.core.spec.resources.SchemaVersionSpec`, never from
a raw body: an API object is parsed once, here, at the edge (:func:`parse_peer`). One whose spec
does not parse (its own verdict is Rejected) is no peer, so it holds no version and never makes
a run wait, the same rule ``lakeop validate`` applies to manifests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.schema.verdict import Peer
from lakeop.core.spec.resources import SchemaVersionSpec, parse_schema_version
from lakeop.errors import LakeopError


def schema_peer(sv: SchemaVersionSpec, *, phase: str | None = None, created: str = "") -> Peer:
    """SchemaVersion ``sv`` as a peer of its table's chain, with its verdict's ``phase`` (None:
    not judged yet) and ``creationTimestamp`` (offline manifests carry none: ties go by name)."""
    return Peer(name=sv.name, version=sv.version, fields=sv.fields, phase=phase, created=created)


def parse_peer(obj: Mapping[str, Any]) -> tuple[SchemaVersionSpec, Peer] | None:
    """SchemaVersion API object ``obj`` parsed, and as a peer; None while it is being deleted
    or when its spec does not parse."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    try:
        sv = parse_schema_version(obj)
    except LakeopError:
        return None
    phase = (obj.get("status") or {}).get("phase")
    created = str(meta.get("creationTimestamp") or "")
    return sv, schema_peer(sv, phase=phase, created=created)


def peer_of(obj: Mapping[str, Any], table: str | None = None) -> Peer | None:
    """:func:`parse_peer`'s peer, only if ``obj`` is a SchemaVersion of ``table`` (any table
    when None)."""
    parsed = parse_peer(obj)
    if parsed is None or (table is not None and parsed[0].table_ref != table):
        return None
    return parsed[1]
