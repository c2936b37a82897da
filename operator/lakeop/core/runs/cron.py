"""Five-field cron expressions evaluated on a time zone's wall clock, without I/O.

Schedules of IngestionJobs follow Kubernetes CronJobs: ``spec.schedule`` is a standard 5-field
expression (minute, hour, day of month, month, day of week) or one of the ``@hourly``-style
macros, and ``spec.timeZone`` names an IANA zone whose wall clock the expression is read on.
The parser is written here rather than borrowed so that its typing is strict, its errors name
the offending field and value, and its daylight-saving behaviour is a documented choice:

* every matching wall-clock time fires once; in the repeated hour after clocks go back, the
  first occurrence is used and the second is not fired again;
* a wall-clock time that does not exist (clocks jump forward over it) fires shifted forward
  by the length of the jump (02:30 on a spring-forward night fires at 03:30 local time).

Day-of-month and day-of-week combine like Vixie cron: when both are restricted (neither
starts with ``*`` or ``?``) a day matches either; otherwise both must match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lakeop.errors import InvalidSpecError

#: A schedule that matches nothing within this many years is refused as never firing.
SEARCH_YEARS = 9
_MINUTE = timedelta(minutes=1)

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names mapped to numbers)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)


class InvalidScheduleError(InvalidSpecError):
    """``spec.schedule`` or ``spec.timeZone`` cannot be used; the message names the part."""

    reason = "InvalidSchedule"


@dataclass(frozen=True)
class CronSchedule:
    """A parsed expression: the allowed values of each field (day of week 0 = Sunday)."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_star: bool
    weekday_star: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        if self.day_star or self.weekday_star:
            return in_days and in_weekdays
        return in_days or in_weekdays


def _number(token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(token.upper())
    if value is None:
        if not (token.isascii() and token.isdigit()):
            raise InvalidScheduleError(f"{name} field: {token!r} is not a number")
        value = int(token)
    if not low <= value <= high:
        raise InvalidScheduleError(f"{name} field: {value} is out of range {low}-{high}")
    return value


def _parse_field(text: str, index: int) -> frozenset[int]:
    name, low, high, names = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise InvalidScheduleError(f"{name} field: step {step_text!r} in {part!r}")
            step = int(step_text)
        if body in ("*", "?"):
            if body == "?" and index not in (2, 4):
                raise InvalidScheduleError(f"{name} field: '?' only allowed for days")
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start = _number(first, name, low, high, names)
            end = _number(last, name, low, high, names)
            if start > end:
                raise InvalidScheduleError(f"{name} field: range {body!r} runs backwards")
        else:
            start = _number(body, name, low, high, names)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values)


def parse_schedule(expression: str) -> CronSchedule:
    """Parse ``spec.schedule``; raises :class:`InvalidScheduleError` naming field and value."""
    text = " ".join(expression.split())
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise InvalidScheduleError(
            f"schedule {expression!r}: a time zone inside the schedule is not supported, "
            "use spec.timeZone"
        )
    text = MACROS.get(text.lower(), text)
    parts = text.split(" ")
    if len(parts) != 5:
        raise InvalidScheduleError(
            f"schedule {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or a macro such as @daily, got {len(parts)}"
        )
    try:
        fields = [_parse_field(part, i) for i, part in enumerate(parts)]
    except InvalidScheduleError as exc:
        raise InvalidScheduleError(f"schedule {expression!r}: {exc}") from None
    schedule = CronSchedule(
        expression=expression,
        minutes=fields[0],
        hours=fields[1],
        days=fields[2],
        months=fields[3],
        weekdays=fields[4],
        day_star=parts[2][0] in "*?",
        weekday_star=parts[4][0] in "*?",
    )
    if _next_wall(schedule, datetime(2000, 1, 1)) is None:
        raise InvalidScheduleError(f"schedule {expression!r}: never fires (no such date)")
    return schedule


def parse_time_zone(name: str | None) -> tzinfo:
    """``spec.timeZone`` as a tzinfo; absent means UTC, like Kubernetes CronJobs."""
    if name is None or name == "":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidScheduleError(f"timeZone {name!r}: not a known IANA time zone") from exc


def _next_wall(s: CronSchedule, wall: datetime) -> datetime | None:
    """The first matching naive wall-clock minute at or after ``wall``."""
    limit = wall + timedelta(days=366 * SEARCH_YEARS)
    while wall <= limit:
        if wall.month not in s.months:
            year, month = (wall.year + 1, 1) if wall.month == 12 else (wall.year, wall.month + 1)
            wall = datetime(year, month, 1)
        elif not s.matches_day(wall.date()):
            wall = datetime(wall.year, wall.month, wall.day) + timedelta(days=1)
        elif wall.hour not in s.hours:
            wall = wall.replace(minute=0) + timedelta(hours=1)
        elif wall.minute not in s.minutes:
            wall += _MINUTE
        else:
            return wall
    return None


def _previous_wall(s: CronSchedule, wall: datetime) -> datetime | None:
    """The last matching naive wall-clock minute at or before ``wall``."""
    limit = wall - timedelta(days=366 * SEARCH_YEARS)
    while wall >= limit:
        if wall.month not in s.months:
            wall = datetime(wall.year, wall.month, 1) - _MINUTE
        elif not s.matches_day(wall.date()):
            wall = datetime(wall.year, wall.month, wall.day) - _MINUTE
        elif wall.hour not in s.hours:
            wall = wall.replace(minute=0) - _MINUTE
        elif wall.minute not in s.minutes:
            wall -= _MINUTE
        else:
            return wall
    return None


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")


def _wall(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)


def _instant(wall: datetime, tz: tzinfo) -> datetime:
    # fold=0: the first of a repeated time; a skipped time resolves past the jump.
    return wall.replace(tzinfo=tz).astimezone(UTC)


def next_fire(s: CronSchedule, tz: tzinfo, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (aware), in UTC."""
    _aware(after, "after")
    wall = _wall(after, tz) + _MINUTE
    while True:
        found = _next_wall(s, wall)
        if found is None:
            raise InvalidScheduleError(f"schedule {s.expression!r}: never fires after {after}")
        moment = _instant(found, tz)
        if moment > after:
            return moment
        wall = found + _MINUTE


def previous_fire(s: CronSchedule, tz: tzinfo, at: datetime) -> datetime | None:
    """The last fire time at or before ``at`` (aware), in UTC; None if none in range."""
    _aware(at, "at")
    wall = _wall(at, tz)
    while True:
        found = _previous_wall(s, wall)
        if found is None:
            return None
        moment = _instant(found, tz)
        if moment <= at:
            return moment
        wall = found - _MINUTE
