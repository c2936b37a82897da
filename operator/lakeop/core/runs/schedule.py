"""When a scheduled IngestionJob runs next, what to do about overlap, and which Jobs to delete.

The decisions a CronJob controller makes, as pure functions the handlers call with the clock
passed in: :func:`due_runs` (is a run due now, and how many schedule times were missed while
the operator was down), :func:`concurrency_decision` (``concurrencyPolicy`` against the runs
still active) and :func:`runs_to_prune` (``successfulRunsHistoryLimit`` /
``failedRunsHistoryLimit``). The semantics follow Kubernetes CronJobs: of several missed
schedule times at most one — the most recent — is run late, and only while it is within
``startingDeadlineSeconds``; counting missed times stops at :data:`MAX_MISSED` so an operator
that was down for a year does not walk a year of minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from lakeop.core.runs.cron import (
    CronSchedule,
    InvalidScheduleError,
    next_fire,
    parse_schedule,
    parse_time_zone,
    previous_fire,
)

__all__ = [
    "DEFAULT_FAILED_RUNS_HISTORY_LIMIT",
    "DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT",
    "MAX_MISSED",
    "ConcurrencyAction",
    "ConcurrencyDecision",
    "ConcurrencyPolicy",
    "CronSchedule",
    "FinishedRun",
    "InvalidScheduleError",
    "ScheduleDecision",
    "ScheduleReason",
    "Tick",
    "concurrency_decision",
    "due_runs",
    "next_schedule_time",
    "parse_concurrency_policy",
    "parse_schedule",
    "parse_time_zone",
    "runs_to_prune",
    "scheduled_tick",
]

#: Missed schedule times are counted up to this many (Kubernetes CronJobs warn at 100).
MAX_MISSED = 100
DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT = 3
DEFAULT_FAILED_RUNS_HISTORY_LIMIT = 1
#: how soon a due run held back by ``concurrencyPolicy: Forbid`` is looked at again
FORBID_RECHECK_SECONDS = 10.0


class ScheduleReason(StrEnum):
    """Why :func:`due_runs` decided what it did; usable as an Event reason."""

    NOT_DUE = "NotDue"
    DUE = "ScheduleDue"
    CATCH_UP = "MissedSchedulesCaughtUp"  # ran the latest missed time, older ones skipped
    MISSED_DEADLINE = "MissedStartingDeadline"  # latest missed time is past the deadline


@dataclass(frozen=True)
class ScheduleDecision:
    """``run_at`` is the schedule time to start a run for (store it as ``lastScheduleTime``).

    ``missed`` counts schedule times that get no run (capped at :data:`MAX_MISSED`, then
    ``too_many_missed`` is set). ``considered_until`` is the latest schedule time looked at:
    when no run starts for it (deadline missed), pass it back as ``last_missed_time`` so the
    same missed times are not reported again. ``next_time`` is the first schedule time after
    ``now`` (``status.nextScheduleTime``; requeue then).
    """

    run_at: datetime | None
    missed: int
    next_time: datetime
    reason: ScheduleReason
    too_many_missed: bool = False
    considered_until: datetime | None = None

    def seconds_until_next(self, now: datetime) -> float:
        return max(0.0, (self.next_time - now).total_seconds())


def _schedule(schedule: CronSchedule | str) -> CronSchedule:
    return schedule if isinstance(schedule, CronSchedule) else parse_schedule(schedule)


def _zone(tz: tzinfo | str | None) -> tzinfo:
    return tz if isinstance(tz, tzinfo) else parse_time_zone(tz)


def next_schedule_time(
    schedule: CronSchedule | str, tz: tzinfo | str | None, after: datetime
) -> datetime:
    """The first schedule time strictly after ``after`` (aware), as an aware UTC datetime."""
    return next_fire(_schedule(schedule), _zone(tz), after)


def due_runs(
    schedule: CronSchedule | str,
    tz: tzinfo | str | None,
    last_schedule_time: datetime | None,
    creation_time: datetime,
    *,
    now: datetime,
    starting_deadline_seconds: int | None,
    last_missed_time: datetime | None = None,
) -> ScheduleDecision:
    """Decide whether a run is due at ``now`` (CronJob semantics, at most one catch-up run).

    Schedule times after the latest of ``last_schedule_time`` / ``last_missed_time`` (or after
    ``creation_time`` when neither is set) and at or before ``now`` are candidates. The most
    recent candidate runs unless more than ``starting_deadline_seconds`` have passed since it;
    all others are missed. Suspension is the caller's business: while suspended, do not call
    this; on resume, the times missed meanwhile are handled like any other missed times.
    """
    cron = _schedule(schedule)
    zone = _zone(tz)
    marks = [t for t in (last_schedule_time, last_missed_time) if t is not None]
    earliest = max(marks) if marks else creation_time
    next_time = next_fire(cron, zone, now)
    if earliest >= now:
        return ScheduleDecision(None, 0, next_time, ScheduleReason.NOT_DUE)
    count = 0
    latest: datetime | None = None
    moment = earliest
    while count <= MAX_MISSED:
        moment = next_fire(cron, zone, moment)
        if moment > now:
            break
        latest = moment
        count += 1
    if latest is None:
        return ScheduleDecision(None, 0, next_time, ScheduleReason.NOT_DUE)
    too_many = count > MAX_MISSED
    if too_many:  # jump to the most recent time instead of walking every missed one
        latest = max(latest, previous_fire(cron, zone, now) or latest)
    count = min(count, MAX_MISSED)
    late = now - latest
    if starting_deadline_seconds is not None and late > timedelta(
        seconds=starting_deadline_seconds
    ):
        return ScheduleDecision(
            None, count, next_time, ScheduleReason.MISSED_DEADLINE, too_many, latest
        )
    reason = ScheduleReason.DUE if count == 1 else ScheduleReason.CATCH_UP
    return ScheduleDecision(latest, count - 1, next_time, reason, too_many, latest)


# ------------------------------------------------------------------------ concurrency policy


class ConcurrencyPolicy(StrEnum):
    FORBID = "Forbid"
    ALLOW = "Allow"
    REPLACE = "Replace"


class ConcurrencyAction(StrEnum):
    START = "start"
    SKIP = "skip"  # Forbid: do not start now; the time stays due (see scheduled_tick)
    REPLACE = "replace"  # delete ``to_delete`` (and their pods), then start


@dataclass(frozen=True)
class ConcurrencyDecision:
    action: ConcurrencyAction
    to_delete: tuple[str, ...] = ()


def parse_concurrency_policy(value: str | None) -> ConcurrencyPolicy:
    """``spec.concurrencyPolicy``; absent means Forbid (an ingestion run should not overlap)."""
    if value is None:
        return ConcurrencyPolicy.FORBID
    try:
        return ConcurrencyPolicy(value)
    except ValueError:
        allowed = ", ".join(p.value for p in ConcurrencyPolicy)
        raise InvalidScheduleError(
            f"concurrencyPolicy {value!r}: must be one of {allowed}"
        ) from None


def concurrency_decision(
    policy: ConcurrencyPolicy | str, active_runs: Sequence[str]
) -> ConcurrencyDecision:
    """What to do with a due run given the names of this IngestionJob's still-active Jobs."""
    policy = parse_concurrency_policy(policy)
    if not active_runs or policy is ConcurrencyPolicy.ALLOW:
        return ConcurrencyDecision(ConcurrencyAction.START)
    if policy is ConcurrencyPolicy.FORBID:
        return ConcurrencyDecision(ConcurrencyAction.SKIP)
    return ConcurrencyDecision(ConcurrencyAction.REPLACE, tuple(sorted(set(active_runs))))


# --------------------------------------------------------------------------- history limits


@dataclass(frozen=True)
class FinishedRun:
    """A finished run's Job: its name, outcome and completion (or failure) time."""

    name: str
    succeeded: bool
    finished_at: datetime


def runs_to_prune(
    finished_runs: Iterable[FinishedRun],
    successful_limit: int | None = DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT,
    failed_limit: int | None = DEFAULT_FAILED_RUNS_HISTORY_LIMIT,
) -> list[str]:
    """Names of finished Jobs beyond the history limits, oldest first; None keeps all."""
    for what, limit in (("successful", successful_limit), ("failed", failed_limit)):
        if limit is not None and limit < 0:
            raise ValueError(f"{what} runs history limit must be >= 0, got {limit}")
    newest_first = sorted(finished_runs, key=lambda r: (r.finished_at, r.name), reverse=True)
    prune: list[FinishedRun] = []
    for succeeded, limit in ((True, successful_limit), (False, failed_limit)):
        runs = [r for r in newest_first if r.succeeded is succeeded]
        if limit is not None:
            prune.extend(runs[limit:])
    prune.sort(key=lambda r: (r.finished_at, r.name))
    return [r.name for r in prune]


# ------------------------------------------------------------------------ one scheduler tick


@dataclass(frozen=True)
class Tick:
    """Everything a scheduler timer does at ``now``, decided in one call.

    If ``start``: delete ``to_delete`` (Replace), then start a run for ``run_at`` writing
    ``status`` together with the run's ``currentRun`` (before creating its Job, so a crash
    cannot start the same schedule time twice). Otherwise just merge ``status``. Emit
    ``event`` (type, reason, message) when set; come back after ``requeue_after`` seconds.
    """

    start: bool
    run_at: datetime | None
    to_delete: tuple[str, ...]
    status: dict[str, str]
    event: tuple[str, str, str] | None
    requeue_after: float
    message: str


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_tick(
    spec: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    creation_timestamp: str,
    now: datetime,
    active_runs: Sequence[str],
) -> Tick:
    """The scheduler's decision for one IngestionJob with ``spec.schedule`` at ``now``.

    ``active_runs`` are the names of this IngestionJob's Jobs that have not finished.
    Raises :class:`InvalidScheduleError` for a bad schedule, time zone or policy.
    """
    status = status or {}
    cron = parse_schedule(str(spec["schedule"]))
    zone = parse_time_zone(spec.get("timeZone"))
    policy = parse_concurrency_policy(spec.get("concurrencyPolicy"))
    created = _time(creation_timestamp) or now
    next_time = next_fire(cron, zone, now)
    wait = max(1.0, (next_time - now).total_seconds())
    if spec.get("suspend"):
        return Tick(False, None, (), {}, None, wait, "spec.suspend is true: not scheduling")
    decision = due_runs(
        cron, zone, _time(status.get("lastScheduleTime")), created,
        now=now, starting_deadline_seconds=spec.get("startingDeadlineSeconds"),
        last_missed_time=_time(status.get("lastMissedScheduleTime")),
    )  # fmt: skip
    fields = {"nextScheduleTime": _stamp(decision.next_time)}
    late = f"{decision.missed} schedule time(s) missed"
    if decision.too_many_missed:
        late = f"more than {MAX_MISSED - 1} schedule times missed"
    if decision.run_at is None:
        if decision.reason is not ScheduleReason.MISSED_DEADLINE or not decision.considered_until:
            return Tick(
                False, None, (), fields, None, wait, f"next run {fields['nextScheduleTime']}"
            )
        fields["lastMissedScheduleTime"] = _stamp(decision.considered_until)
        message = (
            f"{late}; the latest, {_stamp(decision.considered_until)}, is past "
            f"startingDeadlineSeconds={spec.get('startingDeadlineSeconds')}"
        )
        return Tick(
            False, None, (), fields, ("Warning", decision.reason.value, message), wait, message
        )
    run_at = _stamp(decision.run_at)
    overlap = concurrency_decision(policy, active_runs)
    if overlap.action is ConcurrencyAction.SKIP:  # stays due until the run ends or is too late
        message = f"run for {run_at} waits: {', '.join(sorted(active_runs))} still active (Forbid)"
        return Tick(False, None, (), fields, None, FORBID_RECHECK_SECONDS, message)
    fields["lastScheduleTime"] = run_at
    message = f"run for schedule time {run_at}"
    if decision.missed:
        message += f"; {late} while the operator was down or suspended"
    kind = "Warning" if decision.too_many_missed else "Normal"
    event = (kind, decision.reason.value, message) if decision.missed else None
    return Tick(True, decision.run_at, overlap.to_delete, fields, event, wait, message)
