"""Five-field cron expressions on a time zone's wall clock: cronsim evaluates, lakeop maps to UTC.

Schedules of IngestionJobs follow Kubernetes CronJobs: ``spec.schedule`` is a standard 5-field
expression (minute, hour, day of month, month, day of week) or one of the ``@hourly``-style
macros, and ``spec.timeZone`` names an IANA zone whose wall clock the expression is read on.

Which wall-clock minutes match is computed by `cronsim <https://pypi.org/project/cronsim/>`_
(pure computation, no I/O), iterated over *naive* wall-clock times. This module adds only what
the library leaves open or does differently from Kubernetes:

* the accepted syntax is the CronJob controller's (robfig/cron): no ``L``, ``W`` or ``#``, and
  errors name the offending field and value (:func:`check_expression`);
* the mapping of a wall-clock time to an instant, which is where daylight saving matters
  (:func:`_instant`), a documented choice (docs/lifecycle.md, "Time zone"):

  - every matching wall-clock time fires once; in the repeated hour after clocks go back, the
    first occurrence is used and the second is not fired again;
  - a wall-clock time that does not exist (clocks jump forward over it) fires shifted forward
    by the length of the jump (02:30 on a spring-forward night fires at 03:30 local time).

Day-of-month and day-of-week combine like Vixie cron (cronsim and robfig/cron agree): when both
are restricted (neither starts with ``*`` or ``?``) a day matches either; otherwise both must.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from lakeop.errors import InvalidSpecError

_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)

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
    """A checked expression and the allowed values of each field (day of week 0 = Sunday).

    ``normalized`` is the 5-field form handed to cronsim (macros expanded, ``?`` as ``*``).
    """

    expression: str
    normalized: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    def walls_after(self, wall: datetime) -> CronSim:
        """Matching naive wall-clock minutes strictly after ``wall`` (naive), ascending."""
        return CronSim(self.normalized, wall)

    def walls_until(self, wall: datetime) -> CronSim:
        """Matching naive wall-clock minutes at or before ``wall`` (naive), descending."""
        return CronSim(self.normalized, wall + _SECOND, reverse=True)


def _number(token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(token.upper())
    if value is None:
        if not (token.isascii() and token.isdigit()):
            raise InvalidScheduleError(f"{name} field: {token!r} is not a number")
        value = int(token)
    if not low <= value <= high:
        raise InvalidScheduleError(f"{name} field: {value} is out of range {low}-{high}")
    return value


def _check_field(text: str, index: int) -> None:
    """Refuse what robfig/cron (the CronJob controller's parser) refuses, naming the value."""
    name, low, high, names = _FIELDS[index]
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        if slash and (not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0):
            raise InvalidScheduleError(f"{name} field: step {step_text!r} in {part!r}")
        if body in ("*", "?"):
            if body == "?" and index not in (2, 4):
                raise InvalidScheduleError(f"{name} field: '?' only allowed for days")
        elif "-" in body:
            first, _, last = body.partition("-")
            if _number(first, name, low, high, names) > _number(last, name, low, high, names):
                raise InvalidScheduleError(f"{name} field: range {body!r} runs backwards")
        else:
            _number(body, name, low, high, names)


def check_expression(expression: str) -> str:
    """``spec.schedule`` in 5-field form; raises :class:`InvalidScheduleError` naming the part."""
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
        for i, part in enumerate(parts):
            _check_field(part, i)
    except InvalidScheduleError as exc:
        raise InvalidScheduleError(f"schedule {expression!r}: {exc}") from None
    return " ".join(part.replace("?", "*") for part in parts)


def parse_schedule(expression: str) -> CronSchedule:
    """Parse ``spec.schedule``; raises :class:`InvalidScheduleError` naming field and value."""
    normalized = check_expression(expression)
    never = InvalidScheduleError(f"schedule {expression!r}: never fires (no such date)")
    try:
        sim = CronSim(normalized, datetime(2000, 1, 1))
        next(sim)  # cronsim gives up after 50 years without a match
    except (CronSimError, StopIteration):
        raise never from None  # the syntax was checked: only an impossible date is left
    return CronSchedule(
        expression=expression,
        normalized=normalized,
        minutes=frozenset(sim.minutes),
        hours=frozenset(sim.hours),
        days=frozenset(sim.days),
        months=frozenset(sim.months),
        weekdays=frozenset(d % 7 for d in sim.weekdays if isinstance(d, int)),
    )


def parse_time_zone(name: str | None) -> tzinfo:
    """``spec.timeZone`` as a tzinfo; absent means UTC, like Kubernetes CronJobs."""
    if name is None or name == "":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidScheduleError(f"timeZone {name!r}: not a known IANA time zone") from exc


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")


def _wall(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)


def _instant(wall: datetime, tz: tzinfo) -> datetime:
    # fold=0: the first of a repeated time; a skipped time resolves past the jump (PEP 495).
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def next_fire(s: CronSchedule, tz: tzinfo, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (aware), in UTC."""
    _aware(after, "after")
    for found in s.walls_after(_wall(after, tz)):
        moment = _instant(found, tz)
        if moment > after:  # a wall time of the repeated hour, passed on its first occurrence
            return moment
    raise InvalidScheduleError(f"schedule {s.expression!r}: never fires after {after}")


def previous_fire(s: CronSchedule, tz: tzinfo, at: datetime) -> datetime | None:
    """The last fire time at or before ``at`` (aware), in UTC; None if none in range."""
    _aware(at, "at")
    for found in s.walls_until(_wall(at, tz)):
        moment = _instant(found, tz)
        if moment <= at:
            return moment
    return None
