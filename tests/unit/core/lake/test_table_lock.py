"""Who holds a table's maintenance lock, from its holds (core.lake.table_lock)."""

from __future__ import annotations

from lakeop.core.lake.table_lock import Hold, Step, decide, holder, is_mine, superseded

NOW = 1_000_000
SKEW = 5_000


def test_an_empty_lock_is_taken_at_one() -> None:
    d = decide([], "r1", NOW, SKEW)
    assert (d.step, d.seq, d.holder) == (Step.TAKE, 1, None)


def test_a_live_hold_of_another_run_makes_a_run_wait() -> None:
    live = Hold(3, "other", NOW + 10_000)
    d = decide([Hold(1, "x", NOW - 99_000, True), live], "r1", NOW, SKEW)
    assert (d.step, d.seq, d.holder) == (Step.WAIT, 3, live)


def test_a_runs_own_live_hold_is_adopted() -> None:
    d = decide([Hold(2, "r1", NOW + 10_000)], "r1", NOW, SKEW)
    assert (d.step, d.seq) == (Step.ADOPT, 2)


def test_a_released_hold_holds_nothing() -> None:
    d = decide([Hold(4, "other", NOW + 10_000, released=True)], "r1", NOW, SKEW)
    assert (d.step, d.seq) == (Step.TAKE, 5)


def test_a_lease_lapses_only_after_the_clocks_bound() -> None:
    h = Hold(1, "other", NOW - SKEW)
    assert holder([h], NOW, SKEW) == h  # expired, but within the skew bound: still held
    assert holder([h], NOW + 1, SKEW) is None
    assert decide([h], "r1", NOW + 1, SKEW).step is Step.TAKE


def test_only_the_highest_hold_can_hold_the_lock() -> None:
    # a live lower hold (a slow taker's) is superseded by a higher one
    holds = [Hold(5, "slow", NOW + 10_000), Hold(6, "other", NOW + 10_000, released=True)]
    assert holder(holds, NOW, SKEW) is None
    assert decide(holds, "slow", NOW, SKEW).step is Step.TAKE  # not ADOPT of hold 5
    assert decide(holds, "slow", NOW, SKEW).seq == 7


def test_a_taker_confirms_its_hold_is_the_highest() -> None:
    assert is_mine([Hold(1, "a", NOW), Hold(2, "me", NOW)], 2)
    assert not is_mine([Hold(2, "me", NOW), Hold(3, "b", NOW)], 2)
    assert not is_mine([Hold(1, "a", NOW)], 2)  # its hold is not listed (yet): not confirmed


def test_the_holds_below_one_are_superseded() -> None:
    holds = [Hold(s, "x", NOW) for s in (3, 1, 7, 5)]
    assert superseded(holds, 5) == [1, 3]
    assert superseded(holds, 1) == []
