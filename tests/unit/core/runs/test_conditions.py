"""Conditions follow the API conventions: lastTransitionTime moves only when status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from lakeop.core.runs.conditions import Condition, get_condition, is_true, rfc3339, set_conditions

T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def test_new_condition_gets_now_and_generation() -> None:
    (c,) = set_conditions(
        None, [Condition("Ready", True, "Reconciled", "ok")], now=T1, generation=3
    )
    assert c == {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": "ok",
        "lastTransitionTime": T1,
        "observedGeneration": 3,
    }


def test_same_status_keeps_transition_time_but_updates_reason() -> None:
    first = set_conditions(None, [Condition("Ready", False, "A", "")], now=T1, generation=1)
    second = set_conditions(first, [Condition("Ready", False, "B", "m")], now=T2, generation=2)
    assert second[0]["lastTransitionTime"] == T1
    assert second[0]["reason"] == "B"
    assert second[0]["observedGeneration"] == 2


def test_flip_moves_transition_time_and_keeps_other_types() -> None:
    first = set_conditions(
        None,
        [Condition("Ready", False, "A"), Condition("Complete", None, "X")],
        now=T1,
        generation=1,
    )
    second = set_conditions(first, [Condition("Ready", True, "Ok")], now=T2, generation=1)
    assert [c["type"] for c in second] == ["Ready", "Complete"]
    assert get_condition(second, "Ready") == {**second[0], "lastTransitionTime": T2}
    assert get_condition(second, "Complete")["status"] == "Unknown"  # type: ignore[index]
    assert is_true(second, "Ready")
    assert not is_true(second, "Complete")
    assert not is_true(None, "Ready")


def test_rfc3339_is_utc_seconds_with_z() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 5, 999, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2026-03-01T10:00:05Z"
    assert rfc3339(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00Z"
