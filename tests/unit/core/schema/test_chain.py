"""One chain walker: the operator's rules, applied to a whole chain at once (lakeop validate,
lakeop ingest -f), so the offline commands pick the version the operator accepts."""

from __future__ import annotations

import itertools
from typing import Any

from lakeop.core.schema.verdict import Peer, current_step, holds_before, judge, walk_chain

V1 = [{"name": "id", "type": "long"}]
V2 = [*V1, {"name": "note", "type": "string"}]  # an optional field: BACKWARD-compatible
BAD = [{"name": "id", "type": "string"}]  # a type change: incompatible with v1


def peer(name: str, version: int, fields: list[dict[str, Any]], created: str = "") -> Peer:
    return Peer(name, version, fields, None, created)


def outcome(peers: list[Peer], mode: str = "BACKWARD") -> list[tuple[str, bool, str | None]]:
    return [
        (s.peer.name, s.accepted, s.duplicate_of.name if s.duplicate_of else None)
        for s in walk_chain(peers, mode)
    ]


def test_versions_in_order_each_against_the_accepted_lower_ones() -> None:
    chain = [peer("t-v3", 3, V2), peer("t-v1", 1, V1), peer("t-v2", 2, BAD)]
    assert outcome(chain) == [("t-v1", True, None), ("t-v2", False, None), ("t-v3", True, None)]
    current = current_step(walk_chain(chain, "BACKWARD"))
    assert current is not None and current.peer.name == "t-v3"


def test_tie_break_oldest_then_smaller_name_whatever_the_order_read() -> None:
    a, b = peer("t-b", 1, V1), peer("t-a", 1, V2)
    for order in itertools.permutations([a, b]):
        assert outcome(list(order)) == [("t-a", True, None), ("t-b", False, "t-a")]
    older = peer("t-z", 1, V1, created="2026-01-01T00:00:00Z")
    newer = peer("t-a", 1, V1, created="2026-01-02T00:00:00Z")
    assert outcome([newer, older]) == [("t-z", True, None), ("t-a", False, "t-z")]
    assert holds_before(older, newer) and not holds_before(newer, older)


def test_the_walk_agrees_with_the_operators_verdict_on_a_duplicate() -> None:
    """judge() rejects the SchemaVersion that walk_chain calls the duplicate, and only it."""
    a, b = peer("t-a", 1, V1, "2026-01-01T00:00:00Z"), peer("t-b", 1, V1, "2026-01-01T00:00:00Z")
    steps = {s.peer.name: s for s in walk_chain([b, a], "BACKWARD")}
    for me, other in ((a, b), (b, a)):
        verdict = judge(
            name=me.name,
            version=1,
            fields=me.fields,
            created=me.created,
            table="t",
            mode="BACKWARD",
            peers=[other],
        )
        assert verdict.accepted is steps[me.name].accepted


def test_a_rejected_version_never_constrains_a_later_one() -> None:
    chain = [peer("v1", 1, V1), peer("v2", 2, BAD), peer("v3", 3, V1)]
    assert [s.accepted for s in walk_chain(chain, "BACKWARD")] == [True, False, True]


def test_invalid_fields_and_an_empty_chain() -> None:
    steps = walk_chain([peer("v1", 1, [{"name": "x", "type": "nope"}])], "BACKWARD")
    assert not steps[0].accepted and steps[0].invalid
    assert current_step(steps) is None
    assert walk_chain([], "NONE") == []
