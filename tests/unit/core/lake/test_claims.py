"""Claim decisions: free files, next seq, states, released and adopted SQL intervals, and
which claims compaction may delete."""

from __future__ import annotations

import datetime as dt

import pytest

from lakeop.core.lake.claim_removal import EMPTY_CLAIM_MAX_AGE_MS, removable, settled
from lakeop.core.lake.inputs import (
    Claim,
    ClaimLog,
    Interval,
    LeaseTerms,
    SqlClaim,
    basis,
    free_files,
    lapsed,
    lease_left_s,
    may_commit,
    next_lower,
    orphan_intervals,
    share_range,
    splittable,
    sql_intervals,
)
from lakeop.core.lake.sharding import KeyRange


def f(name: str) -> tuple[str, int, str]:
    return (f"file:///src/{name}", 10, "1")


def files_claim(run: str, seq: int, *names: str) -> Claim:
    return Claim(run, seq, 0, "files", files=tuple(f(n) for n in names))


def sql_claim(
    run: str, seq: int, *intervals: tuple[int | None, int], adopts: tuple[int, ...] = ()
) -> Claim:
    sql = SqlClaim("id", tuple(Interval(lo, hi) for lo, hi in intervals))
    return Claim(run, seq, 0, "sql", sql=sql, adopts=adopts)


def test_next_seq_and_the_run_s_first_claim() -> None:
    assert ClaimLog(()).next_seq() == 1
    log = ClaimLog((files_claim("a", 1, "x"), files_claim("b", 3), files_claim("a", 2, "y")))
    assert log.next_seq() == 4
    assert log.of_run("a") == files_claim("a", 1, "x")
    assert log.of_run("c") is None


def test_states() -> None:
    claims = (files_claim("a", 1), files_claim("b", 2), files_claim("c", 3), files_claim("a", 4))
    log = ClaimLog(claims, released=frozenset({3}), committed=frozenset({"b", "a"}))
    states = [log.state(c) for c in claims]
    # a duplicate of run a (seq 4) is released even though a committed: nobody read it
    assert states == ["committed", "committed", "released", "released"]
    assert ClaimLog(claims).state(claims[1]) == "live"


def test_free_files_leave_out_commits_and_held_claims() -> None:
    log = ClaimLog(
        (files_claim("a", 1, "1", "2"), files_claim("b", 2, "3"), files_claim("c", 3, "4")),
        released=frozenset({3}),
        committed=frozenset({"a"}),
    )
    listing = [f(n) for n in ("0", "1", "2", "3", "4", "5", "5")]
    assert free_files(listing, {f("0")}, log) == [f("4"), f("5")]
    # a changed file (another version) is a new identity
    assert free_files([("file:///src/3", 11, "2")], set(), log) == [("file:///src/3", 11, "2")]


def test_new_interval_starts_above_every_claim_and_watermark() -> None:
    assert next_lower(None, ClaimLog(())) is None
    log = ClaimLog(
        (sql_claim("a", 1, (None, 10)), sql_claim("b", 2, (10, 20))),
        released=frozenset({2}),
    )
    assert next_lower(None, log) == 20  # released intervals come back by adoption only
    assert next_lower(25, log) == 25
    # a non-incremental claim's unbounded interval does not move anything
    whole = Claim("w", 3, 0, "sql", sql=SqlClaim(None, (Interval(None, None),)))
    assert next_lower(None, ClaimLog((whole,))) is None


def test_released_intervals_are_adopted_once_and_recursively_freed() -> None:
    a = sql_claim("a", 1, (None, 10))
    b = sql_claim("b", 2, (10, 20))
    c = sql_claim("c", 3, (20, 30))
    log = ClaimLog((a, b, c), released=frozenset({1, 2}), committed=frozenset({"c"}))
    assert orphan_intervals(log) == ((Interval(None, 10), Interval(10, 20)), (1, 2))

    # d adopts both and adds (30, 40]; nothing is offered any more
    d = sql_claim("d", 4, (None, 10), (10, 20), (30, 40), adopts=(1, 2))
    log = ClaimLog((a, b, c, d), released=frozenset({1, 2}), committed=frozenset({"c"}))
    assert orphan_intervals(log) == ((), ())
    assert next_lower(None, log) == 40

    # d released as well: its intervals (its own and the adopted ones) are offered again
    log = ClaimLog((a, b, c, d), released=frozenset({1, 2, 4}), committed=frozenset({"c"}))
    intervals, seqs = orphan_intervals(log)
    assert seqs == (4,)
    assert intervals == (Interval(None, 10), Interval(10, 20), Interval(30, 40))
    assert sql_intervals(intervals, 40, 45)[-1] == Interval(40, 45)
    assert sql_intervals(intervals, 40, None) == intervals


def test_a_live_adopter_keeps_what_it_adopted() -> None:
    a = sql_claim("a", 1, (None, 10))
    e = sql_claim("e", 2, (None, 10), adopts=(1,))
    assert orphan_intervals(ClaimLog((a, e), released=frozenset({1}))) == ((), ())


def test_empty_claims_and_the_watermark() -> None:
    assert files_claim("a", 1).empty
    assert not files_claim("a", 1, "x").empty
    assert sql_claim("a", 1).empty
    claim = sql_claim("a", 1, (None, 10), (30, 40), (10, 20))
    assert not claim.empty
    assert claim.sql is not None and claim.sql.upper == 40


def test_share_ranges_cover_every_key_once() -> None:
    sql = SqlClaim("id", (Interval(None, 99),), "id", 0, 99)
    ranges = [share_range(sql, i, 3) for i in range(3)]
    keys = [None, -5, *range(100), 1000]
    for k in keys:
        assert sum(1 for r in ranges if r is not None and r.contains(k)) == 1, k
    no_bounds = SqlClaim("id", (Interval(None, 99),), "id")
    assert share_range(no_bounds, 0, 3) == KeyRange(None, None, include_null=True)
    assert share_range(no_bounds, 2, 3) is None


def test_splittable_keys() -> None:
    assert splittable(3) and splittable(dt.date(2026, 1, 1))
    assert splittable(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert not splittable(True) and not splittable("x") and not splittable(1.5)


def test_basis_names_the_claim_and_its_content() -> None:
    one = files_claim("a", 7, "x", "y")
    assert basis(one) == basis(files_claim("b", 7, "y", "x"))
    assert basis(one).startswith("claim-7-")
    assert basis(one) != basis(files_claim("a", 7, "x"))


# ------------------------------------------------------------------------------- compaction

DAY = EMPTY_CLAIM_MAX_AGE_MS


def empty(run: str, seq: int, *, split: bool | None, created_ms: int = 0) -> Claim:
    return Claim(run, seq, created_ms, "files", split=split)


def test_the_highest_seq_always_stays() -> None:
    only = files_claim("a", 1, "x")
    log = ClaimLog((only,), committed=frozenset({"a"}))
    assert removable(log, DAY * 10, taken={f("x")}) == ()
    # even released or empty
    assert removable(ClaimLog((only,), released=frozenset({1})), DAY * 10) == ()
    assert removable(ClaimLog((empty("e", 1, split=False),)), DAY * 10) == ()
    assert removable(ClaimLog(()), 0) == ()


def test_committed_claims_go_once_the_commit_log_covers_them() -> None:
    a, b, top = files_claim("a", 1, "x"), files_claim("b", 2, "y"), files_claim("c", 3)
    log = ClaimLog((a, b, top), committed=frozenset({"a", "b"}))
    assert removable(log, 0, taken={f("x"), f("y")}) == (1, 2)
    assert removable(log, 0, taken={f("x")}) == (1,)  # b's file not in a commit: kept
    # SQL: the committed watermark must cover the claim's uppers
    s1, s2 = sql_claim("a", 1, (None, 10), (20, 30)), sql_claim("b", 2, (30, 40))
    sql_top = sql_claim("c", 3, (40, 50))
    log = ClaimLog((s1, s2, sql_top), committed=frozenset({"a", "b"}))
    assert removable(log, 0, watermark=40) == (1, 2)
    assert removable(log, 0, watermark=35) == (1,)
    assert removable(log, 0, watermark=None) == ()
    # removing them leaves the next lower bound where it was
    rest = ClaimLog((sql_top,), committed=frozenset({"a", "b"}))
    assert next_lower(40, rest) == next_lower(40, log) == 50


def test_live_claims_stay() -> None:
    live_files = files_claim("a", 1, "x")
    live_sql = sql_claim("b", 2, (None, 10))
    top = files_claim("c", 3)
    log = ClaimLog((live_files, live_sql, top), committed=frozenset({"c"}))
    assert removable(log, DAY * 10, watermark=100) == ()


def test_released_file_and_non_incremental_claims_go() -> None:
    whole = Claim("w", 2, 0, "sql", sql=SqlClaim(None, (Interval(None, None),)))
    log = ClaimLog(
        (files_claim("a", 1, "x"), whole, files_claim("c", 3)), released=frozenset({1, 2})
    )
    assert removable(log, 0) == (1, 2)


def test_released_sql_intervals_stay_until_a_committed_claim_took_them() -> None:
    r = sql_claim("r", 1, (None, 10))
    top = sql_claim("t", 9, (100, 110))
    # nobody adopted r yet: it must stay (its interval is offered to the next claimer)
    assert removable(ClaimLog((r, top), released=frozenset({1})), DAY * 10) == ()
    # adopted by a live claim: still stays (the adopter may be released in turn)
    a = sql_claim("a", 2, (None, 10), (10, 20), adopts=(1,))
    log = ClaimLog((r, a, top), released=frozenset({1}))
    assert not settled(log, r)
    assert removable(log, DAY * 10, watermark=110) == ()
    # adopter released and adopted again by a live claim: the whole chain stays
    b = sql_claim("b", 3, (None, 10), (10, 20), (20, 30), adopts=(2,))
    log = ClaimLog((r, a, b, top), released=frozenset({1, 2}))
    assert removable(log, DAY * 10, watermark=110) == ()
    # the end of the chain committed: all of it goes, adopted claims first
    log = ClaimLog((r, a, b, top), released=frozenset({1, 2}), committed=frozenset({"b"}))
    assert settled(log, r) and settled(log, a)
    assert removable(log, 0, watermark=30) == (1, 2, 3)
    # and nothing is offered again afterwards, nor does the next interval move down
    assert orphan_intervals(ClaimLog((top,), committed=frozenset({"b"}))) == ((), ())
    assert next_lower(30, ClaimLog((top,))) == next_lower(30, log) == 110


def test_an_adopter_goes_only_with_what_it_adopted() -> None:
    # r was adopted by c (committed), but r's run left a duplicate claim: r stays while the
    # duplicate exists, so c stays; the duplicate (empty) goes, then r and c
    r = sql_claim("r", 1, (None, 10))
    dup = sql_claim("r", 2)
    c = sql_claim("c", 3, (None, 10), (10, 20), adopts=(1,))
    top = sql_claim("t", 4, (20, 30))
    log = ClaimLog((r, dup, c, top), released=frozenset({1}), committed=frozenset({"c"}))
    assert removable(log, 0, watermark=20) == (2,)
    log = ClaimLog((r, c, top), released=frozenset({1}), committed=frozenset({"c"}))
    assert removable(log, 0, watermark=20) == (1, 3)


def test_empty_claims() -> None:
    top = files_claim("t", 9, "z")
    now = DAY * 3
    # a single writer's empty claim: its run will read nothing, even while in flight
    single = empty("s", 1, split=False, created_ms=now)
    # a scaled-out run's empty claim: a share may still have to adopt it, until it is old
    young = empty("y", 2, split=True, created_ms=now - DAY + 1)
    old = empty("o", 3, split=True, created_ms=now - DAY)
    unknown = empty("u", 4, split=None, created_ms=now - 1)  # written before `split` existed
    sql_empty = Claim("q", 5, now, "sql", sql=SqlClaim("id", ()), split=False)
    log = ClaimLog((single, young, old, unknown, sql_empty, top))
    assert removable(log, now) == (1, 3, 5)
    # a later run committing does not prove every share of a scaled-out run adopted it
    log = ClaimLog((single, young, old, unknown, sql_empty, top), committed=frozenset({"t"}))
    assert removable(log, now, taken={f("z")}) == (1, 3, 5)


def test_a_run_with_a_duplicate_loses_the_duplicate_first() -> None:
    # a later duplicate is released only while the first exists: it goes first, alone
    a1, a2, top = files_claim("a", 1, "x"), files_claim("a", 2, "y"), files_claim("t", 3)
    log = ClaimLog((a1, a2, top), committed=frozenset({"a"}))
    assert removable(log, DAY * 10, taken={f("x")}) == (2,)
    # deleting the first claim instead would have made the duplicate the run's: committed,
    # holding a file no commit took (never free again, never removable)
    assert ClaimLog((a2, top), committed=frozenset({"a"})).state(a2) == "committed"
    # once the duplicate is gone, the first follows the ordinary rules
    log = ClaimLog((a1, top), committed=frozenset({"a"}))
    assert removable(log, DAY * 10, taken={f("x")}) == (1,)


# ------------------------------------------------------------------------------- leases


def leased(run: str, seq: int, until: int | None, *names: str, after: int | None = None) -> Claim:
    return Claim(
        run, seq, 0, "files", files=tuple(f(n) for n in names), lease_until_ms=until, after=after
    )


def test_a_lease_is_the_later_of_the_claim_s_and_its_renewal() -> None:
    c = leased("a", 1, 1_000, "x")
    assert ClaimLog((c,)).expiry(c) == 1_000
    assert ClaimLog((c,), leases={1: 5_000}).expiry(c) == 5_000
    assert ClaimLog((c,), leases={1: 500}).expiry(c) == 1_000  # an old renewal never shortens
    older = leased("b", 2, None)
    assert ClaimLog((older,)).expiry(older) is None  # written before leases: never lapses


def test_lapsed_only_live_claims_past_expiry_and_skew() -> None:
    live = leased("a", 1, 1_000, "x")
    renewed = leased("b", 2, 1_000, "y")
    committed = leased("c", 3, 1_000, "z")
    released = leased("d", 4, 1_000, "w")
    legacy = leased("e", 5, None, "v")
    log = ClaimLog(
        (live, renewed, committed, released, legacy),
        released=frozenset({4}),
        committed=frozenset({"c"}),
        leases={2: 9_000},
    )
    skew = 200
    assert lapsed(log, 1_200, skew) == []  # within the skew bound: still the holder's
    assert lapsed(log, 1_201, skew) == [live]
    assert lapsed(log, 9_201, skew) == [live, renewed]


def test_a_lapsed_claim_once_marked_frees_its_inputs() -> None:
    dead = leased("a", 1, 1_000, "x", "y")
    top = leased("b", 2, 99_000, "z")
    listing = [f("x"), f("y"), f("z"), f("new")]
    log = ClaimLog((dead, top))
    assert free_files(listing, set(), log) == [f("new")]
    marked = ClaimLog((dead, top), released=frozenset({1}))
    assert free_files(listing, set(), marked) == [f("new"), f("x"), f("y")]


def test_a_lapsed_sql_claim_s_intervals_are_adopted_once_marked() -> None:
    dead = Claim("a", 1, 0, "sql", sql=SqlClaim("id", (Interval(None, 10),)), lease_until_ms=5)
    log = ClaimLog((dead,), released=frozenset({1}))
    assert orphan_intervals(log) == ((Interval(None, 10),), (1,))
    assert next_lower(None, log) == 10  # the next interval starts above it, nothing skipped


def test_a_released_run_retaken_under_its_run_id() -> None:
    first = leased("a", 1, 0, "x")
    other = leased("b", 2, 0, "y")
    retake = leased("a", 3, 0, "x", "z", after=1)
    log = ClaimLog((first, other, retake), released=frozenset({1}))
    assert log.chain("a") == [first, retake]
    assert log.of_run("a") == retake
    assert [log.state(c) for c in (first, other, retake)] == ["released", "live", "live"]
    assert free_files([f("x"), f("y"), f("z")], set(), log) == []
    # the re-take is marked in turn and taken again: the chain goes on
    again = leased("a", 4, 0, "x", "z", after=3)
    log = ClaimLog((first, other, retake, again), released=frozenset({1, 3}))
    assert log.of_run("a") == again
    assert not log.duplicated("a")
    # a racing claim of the run outside the chain stays a duplicate, released
    dup = leased("a", 5, 0, "q")
    log = ClaimLog((first, other, retake, again, dup), released=frozenset({1, 3}))
    assert log.of_run("a") == again and log.state(dup) == "released"
    assert log.duplicated("a")
    # committed through the re-take: only the chain's end is committed
    log = ClaimLog((first, retake), released=frozenset({1}), committed=frozenset({"a"}))
    assert [log.state(c) for c in (first, retake)] == ["released", "committed"]


def test_a_late_release_of_a_committed_claim_changes_nothing() -> None:
    c = leased("a", 1, 0, "x")
    log = ClaimLog((c,), released=frozenset({1}), committed=frozenset({"a"}))
    assert log.state(c) == "committed"
    assert lapsed(log, 10**12, 0) == []


def test_compaction_of_a_retaken_run() -> None:
    first = leased("a", 1, 0, "x")
    retake = leased("a", 2, 0, "x", after=1)
    top = leased("t", 3, 0)
    # committed through the re-take, its files in the commit log: the whole chain goes
    log = ClaimLog((first, retake, top), released=frozenset({1}), committed=frozenset({"a"}))
    assert removable(log, 0, taken={f("x")}) == (1, 2)
    # in flight: the re-take stays; the released first claim goes (the chain stays whole:
    # deleting a prefix of it changes no state)
    log = ClaimLog((first, retake, top), released=frozenset({1}))
    assert removable(log, 0) == (1,)
    assert ClaimLog((retake, top)).of_run("a") == retake
    # with a duplicate, nothing of the run goes
    dup = leased("a", 4, 0, "y")
    log = ClaimLog((first, retake, dup, top), released=frozenset({1}), committed=frozenset({"a"}))
    assert removable(log, 0, taken={f("x"), f("y")}) == ()


@pytest.mark.parametrize(
    ("renewed_at", "now", "left", "ok"),
    [
        (100.0, 100.0, 30.0, True),  # just renewed
        (100.0, 120.0, 10.0, True),  # exactly the margin left
        (100.0, 120.5, 9.5, False),  # less than the margin: no commit
        (100.0, 131.0, -1.0, False),  # lapsed
        (float("-inf"), 0.0, float("-inf"), False),  # never renewed
    ],
)
def test_may_commit_only_with_the_margin_left(
    renewed_at: float, now: float, left: float, ok: bool
) -> None:
    terms = LeaseTerms(lease_s=30.0, skew_s=5.0)
    assert terms.renew_s == terms.margin_s == 10.0
    assert lease_left_s(renewed_at, now, terms) == left
    assert may_commit(renewed_at, now, terms) is ok


# ------------------------------------------------------------------ duplicates of a run

# (claims, released markers, committed runs, committed watermark, files taken by commits,
#  expected removable seqs)
DUPLICATES = {
    "in flight: everything of the run stays": (
        (files_claim("a", 1, "x"), files_claim("a", 2, "y"), files_claim("t", 3)),
        (),
        (),
        None,
        (),
        (),
    ),
    "committed: the duplicate goes, the first waits for the next compaction": (
        (files_claim("a", 1, "x"), files_claim("a", 2, "y"), files_claim("t", 3)),
        (),
        ("a",),
        None,
        ("x",),
        (2,),
    ),
    "released: the duplicate goes, the released first waits": (
        (files_claim("a", 1, "x"), files_claim("a", 2, "y"), files_claim("t", 3)),
        (1,),
        (),
        None,
        (),
        (2,),
    ),
    "duplicate marked released itself, run in flight: stays": (
        (files_claim("a", 1, "x"), files_claim("a", 2, "y"), files_claim("t", 3)),
        (2,),
        (),
        None,
        (),
        (),
    ),
    "the duplicate is the highest seq: it stays, and so the first": (
        (files_claim("a", 1, "x"), files_claim("t", 2), files_claim("a", 3, "y")),
        (),
        ("a", "t"),
        None,
        ("x",),
        (2,),
    ),
    "two duplicates of a committed run: both go": (
        (
            files_claim("a", 1, "x"),
            files_claim("a", 2, "y"),
            files_claim("a", 3),
            files_claim("t", 4),
        ),
        (),
        ("a",),
        None,
        ("x",),
        (2, 3),
    ),
    "an incremental duplicate nobody adopted: its intervals are offered, it stays": (
        (sql_claim("a", 1, (None, 10)), sql_claim("a", 2, (10, 20)), sql_claim("t", 3)),
        (),
        ("a",),
        10,
        (),
        (),
    ),
    "an incremental duplicate adopted by a committed claim: both go, duplicate first": (
        (
            sql_claim("a", 1, (None, 10)),
            sql_claim("a", 2, (10, 20)),
            sql_claim("b", 3, (10, 20), (20, 30), adopts=(2,)),
            sql_claim("t", 4, (30, 40)),
        ),
        (),
        ("a", "b"),
        30,
        (),
        (2, 3),
    ),
    "an empty incremental duplicate of a committed run goes": (
        (sql_claim("a", 1, (None, 10)), sql_claim("a", 2), sql_claim("t", 3, (10, 20))),
        (),
        ("a",),
        10,
        (),
        (2,),
    ),
    "a re-taken chain with a duplicate between its links: only the duplicate goes": (
        (
            files_claim("a", 1, "x"),
            files_claim("a", 2, "y"),
            leased("a", 3, 0, "x", after=1),
            files_claim("t", 4),
        ),
        (1,),
        ("a",),
        None,
        ("x",),
        (2,),
    ),
    "a re-taken chain whose end is live: the duplicate between stays": (
        (
            files_claim("a", 1, "x"),
            files_claim("a", 2, "y"),
            leased("a", 3, 0, "x", after=1),
            files_claim("t", 4),
        ),
        (1,),
        (),
        None,
        (),
        (),
    ),
    "a duplicate re-take of a committed run's chain goes": (
        (
            files_claim("a", 1, "x"),
            leased("a", 2, 0, "x", after=1),
            leased("a", 3, 0, "x", "y", after=1),
            files_claim("t", 4),
        ),
        (1,),
        ("a",),
        None,
        ("x",),
        (3,),
    ),
}


@pytest.mark.parametrize(
    ("claims", "released", "committed", "watermark", "taken", "expected"),
    list(DUPLICATES.values()),
    ids=list(DUPLICATES),
)
def test_duplicates_of_a_run_are_compacted_first(  # noqa: PLR0917
    claims: tuple[Claim, ...],
    released: tuple[int, ...],
    committed: tuple[str, ...],
    watermark: int | None,
    taken: tuple[str, ...],
    expected: tuple[int, ...],
) -> None:
    taken_ids = {f(n) for n in taken}
    log = ClaimLog(claims, released=frozenset(released), committed=frozenset(committed))
    seqs = removable(log, DAY * 10, watermark=watermark, taken=taken_ids)
    assert seqs == expected
    # deleting them, in order, one at a time (a crash may stop anywhere), changes nothing a
    # claimer sees: every remaining claim's state, the free files, the offered intervals, the
    # next interval's lower bound
    listing = sorted({fid for c in claims for fid in c.files} | {f("new")})
    before = {c.seq: log.state(c) for c in claims}
    for n in range(1, len(seqs) + 1):
        rest = ClaimLog(
            tuple(c for c in claims if c.seq not in seqs[:n]),
            released=frozenset(released),
            committed=frozenset(committed),
        )
        assert {c.seq: rest.state(c) for c in rest.claims} == {
            s: st for s, st in before.items() if s not in seqs[:n]
        }
        assert free_files(listing, taken_ids, rest) == free_files(listing, taken_ids, log)
        assert orphan_intervals(rest)[0] == orphan_intervals(log)[0]
        assert next_lower(watermark, rest) == next_lower(watermark, log)
