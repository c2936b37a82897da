"""Which schema a run starts under: only once every SchemaVersion of its table is decided."""

from __future__ import annotations

import pytest

from lakeop.core.schema.verdict import Peer, SchemaGate, gate_message, schema_gate


def _peer(version: int, phase: str | None) -> Peer:
    return Peer(f"t-v{version}", version, [], phase)


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        # one kubectl apply of v1 and v2: v2 not judged yet -> wait, never v1
        ({1: "Accepted", 2: None}, SchemaGate(1, ("t-v2",))),
        ({1: "Accepted", 2: "Pending"}, SchemaGate(1, ("t-v2",))),
        ({1: None, 2: None}, SchemaGate(None, ("t-v1", "t-v2"))),
        ({1: "Accepted", 2: "Accepted"}, SchemaGate(2)),
        # rejected is decided: it never holds a run back, and is never used
        ({1: "Accepted", 2: "Accepted", 3: "Rejected"}, SchemaGate(2)),
        ({1: "Accepted", 2: "Rejected", 3: "Accepted"}, SchemaGate(3)),
        # an undecided version below the highest Accepted one still holds the run
        ({1: "Accepted", 2: None, 3: "Accepted"}, SchemaGate(3, ("t-v2",))),
        ({1: "Rejected"}, SchemaGate(None)),
        ({}, SchemaGate(None)),
    ],
)
def test_run_waits_until_every_version_is_decided(
    phases: dict[int, str | None], expected: SchemaGate
) -> None:
    gate = schema_gate([_peer(v, p) for v, p in phases.items()])
    assert gate == expected
    assert gate.settled == (expected.version is not None and not expected.waiting)


def test_a_run_in_flight_keeps_its_recorded_version() -> None:
    peers = [_peer(1, "Accepted"), _peer(2, "Accepted"), _peer(3, None)]
    assert schema_gate(peers, pinned=1) == SchemaGate(1)
    # a pinned version that is no longer Accepted is not kept: the gate decides afresh
    assert schema_gate(peers[1:], pinned=1) == SchemaGate(2, ("t-v3",))


def test_messages_name_the_table_and_the_versions_waited_for() -> None:
    one = gate_message(SchemaGate(1, ("t-v2",)), "ns/t")
    assert one == "waiting for the verdict on SchemaVersion t-v2 of table ns/t"
    two = gate_message(SchemaGate(None, ("t-v1", "t-v2")), "ns/t")
    assert two == "waiting for the verdict on SchemaVersions t-v1, t-v2 of table ns/t"
    assert gate_message(SchemaGate(None), "ns/t") == "Table ns/t has no Accepted SchemaVersion yet"
