"""The one computation behind every write of a Table's status: changed keys only."""

from __future__ import annotations

from lakeop.core.runs.status import TableFacts, table_status

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"
LOC = "file:///lake/ns/t"


def test_ready_from_nothing_writes_location_conditions_generation_and_totals() -> None:
    patch = table_status({}, TableFacts(location=LOC, totals={"rows": 0}), generation=2, now=NOW)
    assert patch["location"] == LOC
    assert patch["observedGeneration"] == 2
    assert patch["rows"] == 0
    (cond,) = patch["conditions"]
    assert (cond["type"], cond["status"], cond["lastTransitionTime"]) == ("Ready", "True", NOW)


def test_the_same_facts_again_write_nothing_even_later() -> None:
    facts = TableFacts(location=LOC, totals={"rows": 3}, current_schema_version=1)
    first = table_status({}, facts, generation=1, now=NOW)
    assert table_status(first, facts, generation=1, now=LATER) == {}


def test_totals_alone_touch_only_the_totals_that_changed() -> None:
    previous = {"location": LOC, "rows": 3, "files": 1, "conditions": [{"type": "Ready"}]}
    facts = TableFacts(totals={"rows": 5, "files": 1, "bytes": None, "lastCommitTime": LATER})
    assert table_status(previous, facts, generation=1, now=LATER) == {
        "rows": 5,
        "lastCommitTime": LATER,
    }


def test_a_refusal_turns_ready_false_and_keeps_the_location() -> None:
    ready = table_status({}, TableFacts(location=LOC), generation=1, now=NOW)
    patch = table_status(
        ready, TableFacts(refusal=("StorageUnavailable", "down")), generation=1, now=LATER
    )
    assert set(patch) == {"conditions"}  # the location prepared before stays
    (cond,) = patch["conditions"]
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False",
        "StorageUnavailable",
        "down",
    )
    assert cond["lastTransitionTime"] == LATER


def test_a_newer_generation_is_observed() -> None:
    ready = table_status({}, TableFacts(location=LOC), generation=1, now=NOW)
    patch = table_status(ready, TableFacts(location=LOC), generation=2, now=LATER)
    assert patch["observedGeneration"] == 2
