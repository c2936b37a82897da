"""lakeop's daylight-saving rule on top of cronsim, for schedules the DST rows of
test_schedule.py do not cover: sub-hourly ones, and the refusals of non-CronJob syntax."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lakeop.core.runs.cron import (
    InvalidScheduleError,
    next_fire,
    parse_schedule,
    parse_time_zone,
    previous_fire,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, zone: str, start: str, end: str) -> list[str]:
    schedule, tz = parse_schedule(expression), parse_time_zone(zone)
    out, moment = [], utc(start)
    while (moment := next_fire(schedule, tz, moment)) < utc(end):
        out.append(moment.strftime("%H:%M"))
    return out


def test_half_hourly_across_spring_forward_has_no_gap_and_no_repeat() -> None:
    # New York 2026-03-08: 02:00 EST -> 03:00 EDT (07:00 UTC). Wall 02:00 and 02:30 do not
    # exist and fire shifted by the jump, at 03:00 and 03:30 EDT; those walls then fire once.
    assert fires("*/30 * * * *", "America/New_York", "2026-03-08T05:59", "2026-03-08T08:31") == [
        "06:00",
        "06:30",
        "07:00",
        "07:30",
        "08:00",
        "08:30",
    ]


def test_half_hourly_across_fall_back_skips_the_repeated_hour() -> None:
    # 2026-11-01: 02:00 EDT -> 01:00 EST (06:00 UTC). The repeated 01:00 and 01:30 fire on
    # their first pass only (05:00, 05:30 UTC); the next fire is 02:00 EST (07:00 UTC).
    assert fires("*/30 * * * *", "America/New_York", "2026-11-01T03:59", "2026-11-01T07:31") == [
        "04:00",
        "04:30",
        "05:00",
        "05:30",
        "07:00",
        "07:30",
    ]


def test_previous_fire_in_the_repeated_hour_is_its_first_pass() -> None:
    schedule, tz = parse_schedule("30 1 * * *"), parse_time_zone("America/New_York")
    # 06:45 UTC is 01:45 EST, the second pass of 01:xx: the last fire was 01:30 EDT
    assert previous_fire(schedule, tz, utc("2026-11-01T06:45")) == utc("2026-11-01T05:30")


def test_previous_fire_of_a_skipped_time_is_after_the_jump() -> None:
    schedule, tz = parse_schedule("30 2 * * *"), parse_time_zone("America/New_York")
    assert previous_fire(schedule, tz, utc("2026-03-08T07:29")) == utc("2026-03-07T07:30")
    assert previous_fire(schedule, tz, utc("2026-03-08T07:30")) == utc("2026-03-08T07:30")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 L * *", "'L' is not a number"),  # cronsim knows L, W and #; CronJobs do not
        ("0 0 LW * *", "'LW' is not a number"),
        ("0 0 * * 5L", "'5L' is not a number"),
        ("0 0 * * MON#2", "'MON#2' is not a number"),
        ("0 0 15W * *", "'15W' is not a number"),
    ],
)
def test_syntax_beyond_cronjobs_is_refused(expression: str, message: str) -> None:
    with pytest.raises(InvalidScheduleError, match="schedule") as info:
        parse_schedule(expression)
    assert message in str(info.value)
