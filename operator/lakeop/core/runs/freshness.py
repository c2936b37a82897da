"""When each IngestionJob last succeeded, as numbers a gauge can carry, from the objects alone.

An alert on "no successful run for a day" cannot be built on counters: they restart with the
pod and only the active replica counts. ``status.lastSuccessfulTime`` lives in the API, so any
replica that can list IngestionJobs can export it. This module turns listed objects into
:class:`Freshness`: ``{(namespace, name): unix seconds}`` of the last success, and of each
scheduled, unsuspended job's current schedule interval (the gap between the fire times around
``now``, so a weekday schedule's interval is three days over a weekend), which the alert
"no success within twice the interval" compares with. The edge lists, the metrics module exports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lakeop.core.runs.cron import InvalidScheduleError, next_fire, parse_schedule, parse_time_zone
from lakeop.core.runs.cron import previous_fire as previous_fire_at
from lakeop.core.spec.resources import IngestionJobSpec, parse_ingestion_job
from lakeop.errors import LakeopError

LastSuccesses = dict[tuple[str, str], float]


@dataclass(frozen=True)
class Freshness:
    """What the staleness alert needs, per ``(namespace, ingestionjob)``, in seconds."""

    last_success: LastSuccesses = field(default_factory=dict)
    schedule_interval: dict[tuple[str, str], float] = field(default_factory=dict)


def _seconds(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def last_success_time(status: Mapping[str, Any]) -> float | None:
    """``status.lastSuccessfulTime`` in unix seconds; else a successful ``lastRun``'s end.

    The fallback covers objects whose last success predates ``lastSuccessfulTime``.
    """
    found = _seconds(status.get("lastSuccessfulTime"))
    if found is not None:
        return found
    last = status.get("lastRun")
    if isinstance(last, Mapping) and not last.get("error"):
        return _seconds(last.get("completionTime"))
    return None


def last_successes(
    objects: Iterable[Mapping[str, Any]], serves: Callable[[str], bool] = lambda _: True
) -> LastSuccesses:
    """``(namespace, name) -> unix seconds`` of every served IngestionJob that ever succeeded."""
    out: LastSuccesses = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if not namespace or not name or not serves(namespace):
            continue
        status = obj.get("status")
        found = last_success_time(status) if isinstance(status, Mapping) else None
        if found is not None:
            out[(namespace, name)] = found
    return out


def schedule_interval(spec: IngestionJobSpec, now: datetime) -> float | None:
    """Seconds between the fire times around ``now``; None unscheduled, suspended or invalid."""
    if not spec.schedule or spec.suspend:
        return None
    try:
        cron = parse_schedule(spec.schedule)
        tz = parse_time_zone(spec.time_zone)
        after = next_fire(cron, tz, now)
        before = previous_fire_at(cron, tz, now)
    except InvalidScheduleError:
        return None
    if before is None:
        return None
    return (after - before).total_seconds()


def freshness(
    objects: Iterable[Mapping[str, Any]],
    now: datetime,
    serves: Callable[[str], bool] = lambda _: True,
) -> Freshness:
    """Last success and schedule interval of every served IngestionJob that has them."""
    listed = list(objects)
    intervals: dict[tuple[str, str], float] = {}
    for obj in listed:
        try:  # the typed spec; one that does not parse has no schedule to speak of
            spec = parse_ingestion_job(obj)
        except LakeopError:
            continue
        if not serves(spec.namespace):
            continue
        interval = schedule_interval(spec, now)
        if interval is not None:
            intervals[(spec.namespace, spec.name)] = interval
    return Freshness(last_successes(listed, serves), intervals)
