"""Cron parsing, fire times across time zones and DST, and the CronJob-style decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from lakeop.core.runs.cron import parse_schedule, parse_time_zone, previous_fire
from lakeop.core.runs.schedule import (
    FORBID_RECHECK_SECONDS,
    MAX_MISSED,
    ConcurrencyAction,
    ConcurrencyPolicy,
    FinishedRun,
    InvalidScheduleError,
    ScheduleReason,
    concurrency_decision,
    due_runs,
    next_schedule_time,
    parse_concurrency_policy,
    runs_to_prune,
    scheduled_tick,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expression", "field", "values"),
    [
        ("* * * * *", "minutes", set(range(60))),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5,10-12 * * * *", "minutes", {5, 10, 11, 12}),
        ("10-30/10 * * * *", "minutes", {10, 20, 30}),
        ("50/5 * * * *", "minutes", {50, 55}),
        ("0 9-17 * * *", "hours", set(range(9, 18))),
        ("0 0 1,15 * *", "days", {1, 15}),
        ("0 0 * JAN,mar-May *", "months", {1, 3, 4, 5}),
        ("0 0 * * MON-FRI", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * 7", "weekdays", {0}),
        ("0 0 * * 5-7", "weekdays", {5, 6, 0}),
        ("0 0 ? * 1", "weekdays", {1}),
        ("@hourly", "minutes", {0}),
        ("@weekly", "weekdays", {0}),
        ("  0   2 * *   * ", "hours", {2}),
    ],
)
def test_parse_fields(expression: str, field: str, values: set[int]) -> None:
    assert getattr(parse_schedule(expression), field) == values


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "got 6"),
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 0 * *", "day of month field: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13"),
        ("0 0 * * 8", "day of week field: 8"),
        ("0 0 * FOO *", "month field: 'FOO' is not a number"),
        ("*/0 * * * *", "step '0'"),
        ("*/x * * * *", "step 'x'"),
        ("30-10 * * * *", "runs backwards"),
        ("1,,2 * * * *", "'' is not a number"),
        ("? * * * *", "'?' only allowed for days"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("TZ=UTC 0 0 * * *", "use spec.timeZone"),
        ("CRON_TZ=Europe/Berlin 0 0 * * *", "use spec.timeZone"),
        ("@every 5m", "expected 5 fields"),
    ],
)
def test_parse_errors_name_field_and_value(expression: str, message: str) -> None:
    with pytest.raises(InvalidScheduleError, match="schedule") as info:
        parse_schedule(expression)
    assert message in str(info.value)
    assert info.value.reason == "InvalidSchedule"


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "Europe/", "utc+2"])
def test_unknown_time_zone(name: str) -> None:
    with pytest.raises(InvalidScheduleError, match="timeZone"):
        parse_time_zone(name)


def test_absent_time_zone_is_utc() -> None:
    assert parse_time_zone(None) is UTC
    assert parse_time_zone("") is UTC


# ---------------------------------------------------------------------------- fire times


@pytest.mark.parametrize(
    ("schedule", "tz", "after", "expected"),
    [
        ("* * * * *", None, "2026-01-01T00:00:00", "2026-01-01T00:01:00"),
        ("* * * * *", None, "2026-01-01T00:00:30", "2026-01-01T00:01:00"),
        ("0 2 * * *", None, "2026-01-01T02:00:00", "2026-01-02T02:00:00"),
        ("0 2 * * *", None, "2026-01-01T01:59:59", "2026-01-01T02:00:00"),
        ("0 0 1 * *", None, "2026-01-31T12:00:00", "2026-02-01T00:00:00"),
        ("0 0 29 2 *", None, "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 31 * *", None, "2026-04-01T00:00:00", "2026-05-31T00:00:00"),
        ("@yearly", None, "2026-06-01T00:00:00", "2027-01-01T00:00:00"),
        # 2026-01-01 is a Thursday; MON-FRI at 09:30
        ("30 9 * * MON-FRI", None, "2026-01-02T10:00:00", "2026-01-05T09:30:00"),
        # both day fields restricted: the 13th OR a Friday (Vixie cron)
        ("0 0 13 * FRI", None, "2026-01-01T00:00:00", "2026-01-02T00:00:00"),
        ("0 0 13 * FRI", None, "2026-01-10T00:00:00", "2026-01-13T00:00:00"),
        # a '*'-prefixed day field keeps the AND: odd days that are Fridays
        ("0 0 */2 * FRI", None, "2026-01-01T00:00:00", "2026-01-09T00:00:00"),
        # Berlin is UTC+1 in winter, UTC+2 in summer
        ("0 2 * * *", "Europe/Berlin", "2026-01-01T00:00:00", "2026-01-01T01:00:00"),
        ("0 2 * * *", "Europe/Berlin", "2026-06-30T23:00:00", "2026-07-01T00:00:00"),
        ("0 2 * * *", "Asia/Kolkata", "2026-01-01T00:00:00", "2026-01-01T20:30:00"),
        # New York springs forward 2026-03-08 02:00 -> 03:00: 02:30 fires at 03:30 EDT
        ("30 2 * * *", "America/New_York", "2026-03-08T05:00:00", "2026-03-08T07:30:00"),
        ("30 2 * * *", "America/New_York", "2026-03-08T07:30:00", "2026-03-09T06:30:00"),
        # ...and falls back 2026-11-01 02:00 -> 01:00: 01:30 fires once, at its first pass
        ("30 1 * * *", "America/New_York", "2026-11-01T04:00:00", "2026-11-01T05:30:00"),
        ("30 1 * * *", "America/New_York", "2026-11-01T05:30:00", "2026-11-02T06:30:00"),
    ],
)
def test_next_schedule_time(schedule: str, tz: str | None, after: str, expected: str) -> None:
    got = next_schedule_time(schedule, tz, utc(after))
    assert got == utc(expected)
    assert got.tzinfo is UTC


def test_next_and_previous_agree_over_a_dst_year() -> None:
    cron = parse_schedule("15 */3 * * *")
    zone = parse_time_zone("Europe/London")
    moment = utc("2026-01-01T00:00:00")
    fires = []
    while moment < utc("2027-01-01T00:00:00"):
        moment = next_schedule_time(cron, zone, moment)
        fires.append(moment)
    assert fires == sorted(set(fires))  # strictly increasing
    for earlier, later in pairwise(fires):
        assert previous_fire(cron, zone, later - timedelta(seconds=1)) == earlier
        assert previous_fire(cron, zone, later) == later
    assert 2915 <= len(fires) <= 2921  # 8 a day, give or take the DST days


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_schedule_time("* * * * *", None, datetime(2026, 1, 1))


# ------------------------------------------------------------------------------ due_runs

CREATED = utc("2026-01-01T00:00:30")


@pytest.mark.parametrize(
    ("schedule", "last", "now", "deadline", "expected"),
    [
        # created, nothing due yet
        ("0 * * * *", None, "2026-01-01T00:30:00", None, (None, 0, "NotDue", "01:00")),
        # first tick after creation
        ("0 * * * *", None, "2026-01-01T01:00:05", None, ("01:00", 0, "ScheduleDue", "02:00")),
        # already ran for 01:00
        ("0 * * * *", "01:00", "2026-01-01T01:30:00", None, (None, 0, "NotDue", "02:00")),
        # operator down 01:00 -> 04:10: run the latest (04:00) once, 02:00 and 03:00 missed
        ("0 * * * *", "01:00", "2026-01-01T04:10:00", None, ("04:00", 2, "MissedSchedulesCaughtUp",
         "05:00")),
        # same, within a 15-minute starting deadline
        ("0 * * * *", "01:00", "2026-01-01T04:10:00", 900, ("04:00", 2, "MissedSchedulesCaughtUp",
         "05:00")),
        # past the deadline: nothing runs, all 3 are missed
        ("0 * * * *", "01:00", "2026-01-01T04:20:00", 600, (None, 3, "MissedStartingDeadline",
         "05:00")),
        # exactly at the deadline still runs
        ("0 * * * *", "03:00", "2026-01-01T04:10:00", 600, ("04:00", 0, "ScheduleDue", "05:00")),
        # clock skew: creation after now
        ("0 * * * *", None, "2026-01-01T00:00:00", None, (None, 0, "NotDue", "01:00")),
    ],
)  # fmt: skip
def test_due_runs(
    schedule: str,
    last: str | None,
    now: str,
    deadline: int | None,
    expected: tuple[str | None, int, str, str],
) -> None:
    run_at, missed, reason, next_time = expected

    def at(hhmm: str) -> datetime:
        return utc(f"2026-01-01T{hhmm}:00")

    decision = due_runs(
        schedule, None, at(last) if last else None, CREATED,
        now=utc(now), starting_deadline_seconds=deadline,
    )  # fmt: skip
    assert decision.run_at == (at(run_at) if run_at else None)
    assert decision.missed == missed
    assert decision.reason == ScheduleReason(reason)
    assert decision.next_time == at(next_time)
    assert not decision.too_many_missed


def test_missed_deadline_is_reported_once_when_passed_back() -> None:
    first = due_runs(
        "0 * * * *", None, utc("2026-01-01T01:00:00"), CREATED,
        now=utc("2026-01-01T04:20:00"), starting_deadline_seconds=60,
    )  # fmt: skip
    assert first.reason is ScheduleReason.MISSED_DEADLINE
    assert first.considered_until == utc("2026-01-01T04:00:00")
    again = due_runs(
        "0 * * * *", None, utc("2026-01-01T01:00:00"), CREATED,
        now=utc("2026-01-01T04:21:00"), starting_deadline_seconds=60,
        last_missed_time=first.considered_until,
    )  # fmt: skip
    assert again.reason is ScheduleReason.NOT_DUE
    assert again.missed == 0


def test_too_many_missed_is_capped_and_runs_the_latest() -> None:
    decision = due_runs(
        "* * * * *", "Europe/Berlin", utc("2026-01-01T00:00:00"), CREATED,
        now=utc("2027-01-01T00:00:30"), starting_deadline_seconds=None,
    )  # fmt: skip
    assert decision.too_many_missed
    assert decision.missed == MAX_MISSED - 1
    assert decision.run_at == utc("2027-01-01T00:00:00")
    assert decision.next_time == utc("2027-01-01T00:01:00")
    assert decision.seconds_until_next(utc("2027-01-01T00:00:30")) == 30.0


def test_too_many_missed_past_deadline_skips() -> None:
    decision = due_runs(
        "*/5 * * * *", None, utc("2026-01-01T00:00:00"), CREATED,
        now=utc("2026-02-01T00:03:00"), starting_deadline_seconds=60,
    )  # fmt: skip
    assert decision.run_at is None
    assert decision.too_many_missed
    assert decision.missed == MAX_MISSED
    assert decision.considered_until == utc("2026-02-01T00:00:00")


def test_two_consecutive_minute_runs_are_incremental_ticks() -> None:
    """What the one-minute e2e schedule relies on: each tick yields exactly one run."""
    created = utc("2026-05-05T10:00:10")
    first = due_runs(
        "* * * * *", None, None, created,
        now=utc("2026-05-05T10:01:02"), starting_deadline_seconds=30,
    )  # fmt: skip
    assert first.run_at == utc("2026-05-05T10:01:00")
    second = due_runs(
        "* * * * *", None, first.run_at, created,
        now=utc("2026-05-05T10:01:40"), starting_deadline_seconds=30,
    )  # fmt: skip
    assert second.run_at is None
    assert second.next_time == utc("2026-05-05T10:02:00")
    third = due_runs(
        "* * * * *", None, first.run_at, created,
        now=utc("2026-05-05T10:02:01"), starting_deadline_seconds=30,
    )  # fmt: skip
    assert third.run_at == utc("2026-05-05T10:02:00")


# ----------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize(
    ("policy", "active", "action", "to_delete"),
    [
        ("Forbid", [], "start", ()),
        ("Forbid", ["ij-1"], "skip", ()),
        ("Allow", ["ij-1"], "start", ()),
        ("Replace", [], "start", ()),
        ("Replace", ["ij-2", "ij-1", "ij-2"], "replace", ("ij-1", "ij-2")),
        (ConcurrencyPolicy.REPLACE, ["ij-1"], "replace", ("ij-1",)),
    ],
)
def test_concurrency_decision(
    policy: str, active: list[str], action: str, to_delete: tuple[str, ...]
) -> None:
    decision = concurrency_decision(policy, active)
    assert decision.action is ConcurrencyAction(action)
    assert decision.to_delete == to_delete


def test_concurrency_policy_default_and_errors() -> None:
    assert parse_concurrency_policy(None) is ConcurrencyPolicy.FORBID
    with pytest.raises(InvalidScheduleError, match="'forbid': must be one of Forbid, Allow"):
        parse_concurrency_policy("forbid")


# --------------------------------------------------------------------------------- history


def _runs(*specs: tuple[str, bool, int]) -> list[FinishedRun]:
    return [
        FinishedRun(n, ok, utc("2026-01-01T00:00:00") + timedelta(hours=h)) for n, ok, h in specs
    ]


@pytest.mark.parametrize(
    ("successful", "failed", "pruned"),
    [
        (3, 1, ["s1", "f1"]),
        (1, 1, ["s1", "f1", "s2", "s3"]),
        (0, 0, ["s1", "f1", "s2", "f2", "s3", "s4"]),
        (None, None, []),
        (10, None, []),
        (None, 0, ["f1", "f2"]),
    ],
)
def test_runs_to_prune(successful: int | None, failed: int | None, pruned: list[str]) -> None:
    runs = _runs(("s4", True, 6), ("f1", False, 2), ("s1", True, 1), ("s3", True, 5),
                 ("s2", True, 3), ("f2", False, 4))  # fmt: skip
    assert runs_to_prune(runs, successful, failed) == pruned


def test_runs_to_prune_ties_break_by_name_and_limits_are_checked() -> None:
    runs = _runs(("b", True, 1), ("a", True, 1), ("c", True, 1))
    assert runs_to_prune(runs, 1, 1) == ["a", "b"]
    with pytest.raises(ValueError, match="successful runs history limit must be >= 0"):
        runs_to_prune(runs, -1, 1)


# ------------------------------------------------------------------------ scheduled_tick

SPEC = {"schedule": "0 * * * *", "startingDeadlineSeconds": 300}
MADE = "2026-01-01T00:00:30Z"


def test_tick_not_due_sets_next_time_only() -> None:
    tick = scheduled_tick(SPEC, {}, MADE, utc("2026-01-01T00:10:00"), [])
    assert not tick.start
    assert tick.status == {"nextScheduleTime": "2026-01-01T01:00:00Z"}
    assert tick.event is None
    assert tick.requeue_after == 3000.0


def test_tick_due_starts_and_records_schedule_time() -> None:
    tick = scheduled_tick(SPEC, None, MADE, utc("2026-01-01T01:00:02"), [])
    assert tick.start
    assert tick.run_at == utc("2026-01-01T01:00:00")
    assert tick.status == {
        "nextScheduleTime": "2026-01-01T02:00:00Z",
        "lastScheduleTime": "2026-01-01T01:00:00Z",
    }
    assert tick.to_delete == ()
    assert tick.event is None


def test_tick_catch_up_after_downtime_emits_event() -> None:
    status = {"lastScheduleTime": "2026-01-01T01:00:00Z"}
    tick = scheduled_tick(SPEC, status, MADE, utc("2026-01-01T04:02:00"), [])
    assert tick.start and tick.run_at == utc("2026-01-01T04:00:00")
    assert tick.event == (
        "Normal",
        "MissedSchedulesCaughtUp",
        "run for schedule time 2026-01-01T04:00:00Z; 2 schedule time(s) missed while the "
        "operator was down or suspended",
    )


def test_tick_past_deadline_reports_once() -> None:
    status: dict[str, str] = {"lastScheduleTime": "2026-01-01T01:00:00Z"}
    tick = scheduled_tick(SPEC, status, MADE, utc("2026-01-01T04:30:00"), [])
    assert not tick.start
    assert tick.event is not None and tick.event[:2] == ("Warning", "MissedStartingDeadline")
    assert tick.status["lastMissedScheduleTime"] == "2026-01-01T04:00:00Z"
    status.update(tick.status)
    again = scheduled_tick(SPEC, status, MADE, utc("2026-01-01T04:31:00"), [])
    assert not again.start and again.event is None


@pytest.mark.parametrize(
    ("policy", "start", "to_delete"),
    [(None, False, ()), ("Forbid", False, ()), ("Allow", True, ()), ("Replace", True, ("j1",))],
)
def test_tick_overlap(policy: str | None, start: bool, to_delete: tuple[str, ...]) -> None:
    spec = {**SPEC, "concurrencyPolicy": policy} if policy else SPEC
    tick = scheduled_tick(spec, {}, MADE, utc("2026-01-01T01:00:02"), ["j1"])
    assert tick.start is start
    assert tick.to_delete == to_delete
    if not start:  # Forbid: the time stays due and is looked at again soon
        assert "lastScheduleTime" not in tick.status
        assert tick.requeue_after == FORBID_RECHECK_SECONDS
        assert "j1 still active" in tick.message


def test_tick_forbid_then_previous_run_ends_within_deadline() -> None:
    first = scheduled_tick(SPEC, {}, MADE, utc("2026-01-01T01:00:02"), ["j1"])
    assert not first.start
    later = scheduled_tick(SPEC, first.status, MADE, utc("2026-01-01T01:03:00"), [])
    assert later.start and later.run_at == utc("2026-01-01T01:00:00")
    too_late = scheduled_tick(SPEC, first.status, MADE, utc("2026-01-01T01:06:00"), [])
    assert not too_late.start


def test_tick_suspended_does_nothing() -> None:
    tick = scheduled_tick({**SPEC, "suspend": True}, {}, MADE, utc("2026-01-01T01:00:02"), [])
    assert not tick.start and tick.status == {} and "suspend" in tick.message


def test_tick_invalid_spec() -> None:
    with pytest.raises(InvalidScheduleError, match="timeZone 'Nowhere/Land'"):
        scheduled_tick({**SPEC, "timeZone": "Nowhere/Land"}, {}, MADE, utc("2026-01-01"), [])
