"""When a Table's maintenance runs, what its pod reported, and what ``status.maintenance`` says.

The operator's side of table maintenance, as pure functions the handlers call with the clock
passed in (:mod:`lakeop.handlers.maintenance` only applies them):

- :func:`maintenance_tick`: is a run due now? Either a new ``lakeop.io/compact=<token>``
  (each token once, as ``lakeop.io/rerun``) or a time of
  ``spec.maintenance.compaction.schedule`` (the IngestionJob scheduler's
  :func:`~lakeop.core.runs.schedule.due_runs`: at most the latest missed time runs late).
  One run at a time per table: a due time waits while a run is in flight. The trigger is
  written to ``status.maintenance`` together with ``currentRun`` before the Job exists, and
  the run id is derived from it, so a restart never starts the same trigger twice.
- :class:`MaintenanceReport`: the pod's summary (``lakeop compact --plan-env``'s JSON line in
  the termination message): the compaction's counts, then the expiry's under ``expiry``.
- :func:`run_recorded`: the ``status.maintenance`` patch once the run's Job has ended.

A maintenance run is one Job: compaction, then expiry under ``spec.maintenance.retention``
(the contract gives expiry no schedule of its own).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lakeop.core.runs.maintenance import ANNOTATION_COMPACT, Action, maintenance_run_id
from lakeop.core.runs.schedule import due_runs, parse_schedule, parse_time_zone
from lakeop.core.runs.summary import Failure
from lakeop.core.spec.maintenance import MaintenanceSpec
from lakeop.core.timestamps import format_time, parse_time

#: ``status.maintenance`` keys the operator keeps for itself (besides the contract's)
CURRENT_RUN = "currentRun"
LAST_RUN = "lastRun"
LAST_SCHEDULE_TIME = "lastScheduleTime"
LAST_COMPACT_TOKEN = "lastCompactToken"
NEXT_COMPACTION_TIME = "nextCompactionTime"


@dataclass(frozen=True)
class MaintenanceTick:
    """The decision at one moment. ``start``: start the run ``run_id`` for ``trigger``,
    writing ``status`` (with ``currentRun``) first; otherwise merge ``status`` alone.
    ``event``: (type, reason, message) to post, when set."""

    start: bool
    status: dict[str, Any]
    trigger: str | None = None
    run_id: str | None = None
    event: tuple[str, str, str] | None = None


def compact_token(annotations: Mapping[str, Any] | None) -> str | None:
    value = (annotations or {}).get(ANNOTATION_COMPACT)
    token = str(value).strip() if value is not None else ""
    return token or None


def maintenance_tick(
    spec: MaintenanceSpec,
    status: Mapping[str, Any] | None,
    annotations: Mapping[str, Any] | None,
    *,
    table_uid: str,
    created: str,
    now: datetime,
) -> MaintenanceTick:
    """What to do for a Table's maintenance at ``now``; ``status`` is ``status.maintenance``.

    Raises :class:`~lakeop.core.runs.cron.InvalidScheduleError` for a bad schedule or zone.
    """
    status = status or {}
    fields: dict[str, Any] = {}
    run_at: datetime | None = None
    event: tuple[str, str, str] | None = None
    if spec.schedule:
        decision = due_runs(
            parse_schedule(spec.schedule),
            parse_time_zone(spec.time_zone),
            parse_time(status.get(LAST_SCHEDULE_TIME)),
            parse_time(created) or now,
            now=now,
            starting_deadline_seconds=None,
        )
        fields[NEXT_COMPACTION_TIME] = format_time(decision.next_time)
        run_at = decision.run_at
        if run_at is not None and decision.missed:
            event = (
                "Normal",
                decision.reason.value,
                f"compaction for {format_time(run_at)}; {decision.missed} earlier schedule "
                "time(s) skipped",
            )
    elif status.get(NEXT_COMPACTION_TIME) is not None:
        fields[NEXT_COMPACTION_TIME] = None  # the schedule was removed
    if status.get(CURRENT_RUN):  # one run at a time: what is due waits for it to end
        return MaintenanceTick(False, _changed(status, fields))
    token = compact_token(annotations)
    if token is not None and token != status.get(LAST_COMPACT_TOKEN):
        fields[LAST_COMPACT_TOKEN] = token
        trigger = f"annotation {ANNOTATION_COMPACT}={token}"
        rid = maintenance_run_id(table_uid, Action.COMPACT, f"token:{token}")
        return MaintenanceTick(True, fields, trigger, rid)
    if run_at is not None:
        stamp = format_time(run_at)
        fields[LAST_SCHEDULE_TIME] = stamp
        rid = maintenance_run_id(table_uid, Action.COMPACT, f"schedule:{stamp}")
        return MaintenanceTick(True, fields, f"schedule {stamp}", rid, event)
    return MaintenanceTick(False, _changed(status, fields))


def _changed(status: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if status.get(k) != v}


# ------------------------------------------------------------------------- the way back


def _int(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(raw: Mapping[str, Any]) -> float:
    value = raw.get("seconds")
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else 0.0  # type: ignore[arg-type]


@dataclass(frozen=True)
class CompactionReport:
    partitions: int
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    rows: int
    seconds: float


@dataclass(frozen=True)
class ExpiryReport:
    files_deleted: int
    bytes_freed: int
    seconds: float


@dataclass(frozen=True)
class MaintenanceReport:
    """What a maintenance pod reported; a part is None when the run did not get that far."""

    run_id: str | None = None
    compaction: CompactionReport | None = None
    expiry: ExpiryReport | None = None
    error: Failure | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in (self.compaction, self.expiry) if p is not None)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MaintenanceReport:
        """A summary as ``lakeop compact`` / ``lakeop expire`` writes it; fields of the wrong
        type count as absent (a report is not an order)."""
        compaction = expiry = None
        values = {
            k: _int(raw, k)
            for k in ("partitions", "filesBefore", "filesAfter", "bytesBefore", "bytesAfter")
        }
        if all(v is not None for v in values.values()):
            compaction = CompactionReport(
                partitions=int(values["partitions"] or 0),
                files_before=int(values["filesBefore"] or 0),
                files_after=int(values["filesAfter"] or 0),
                bytes_before=int(values["bytesBefore"] or 0),
                bytes_after=int(values["bytesAfter"] or 0),
                rows=int(_int(raw, "rows") or 0),
                seconds=_seconds(raw),
            )
        part = raw.get("expiry") if raw.get("action") == "compact" else raw
        if isinstance(part, Mapping) and _int(part, "filesDeleted") is not None:
            expiry = ExpiryReport(
                int(_int(part, "filesDeleted") or 0),
                int(_int(part, "bytesFreed") or 0),
                _seconds(part),
            )
        run_id = raw.get("runId")
        return cls(
            run_id=run_id if isinstance(run_id, str) else None,
            compaction=compaction,
            expiry=expiry,
            error=Failure.from_dict(raw.get("error")),
        )

    @classmethod
    def from_text(cls, text: str | None) -> MaintenanceReport | None:
        """The report in a termination message or a log: its last JSON object line with an
        ``action`` or an ``error`` key; None when there is none."""
        for raw in reversed((text or "").strip().splitlines()):
            line = raw.strip()
            if not line.startswith("{"):
                continue
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and ("action" in data or "error" in data):
                return cls.from_dict(data)
        return None


def run_recorded(
    current: Mapping[str, Any],
    report: MaintenanceReport | None,
    failure: Failure | None,
    *,
    now: str,
) -> dict[str, Any]:
    """The ``status.maintenance`` patch for the ended run ``current`` (its ``currentRun``):
    ``lastCompaction`` / ``lastExpiry`` for each part that finished (a compaction commits
    before its expiry starts, so it is recorded even when the expiry then failed), and
    ``lastRun`` with the failure's reason and message (``error`` null when it succeeded)."""
    out: dict[str, Any] = {CURRENT_RUN: None}
    c = report.compaction if report else None
    e = report.expiry if report else None
    if c is not None:
        out["lastCompaction"] = {
            "time": now,
            "partitions": c.partitions,
            "filesBefore": c.files_before,
            "filesAfter": c.files_after,
            "bytesBefore": c.bytes_before,
            "bytesAfter": c.bytes_after,
        }
    if e is not None:
        out["lastExpiry"] = {
            "time": now,
            "filesDeleted": e.files_deleted,
            "bytesFreed": e.bytes_freed,
        }
    out[LAST_RUN] = {
        **{k: current.get(k) for k in ("runId", "jobName", "trigger", "startTime")},
        "completionTime": now,
        "error": None if failure is None else failure.to_dict(),
    }
    return out


def refusal_recorded(
    status: Mapping[str, Any] | None, fields: Mapping[str, Any], failure: Failure, *, now: str
) -> dict[str, Any] | None:
    """``fields`` plus a ``lastRun`` saying why no run could start (the trigger is used up);
    None when ``lastRun`` already says so (nothing to write, no second Event)."""
    status = status or {}
    changed = _changed(status, fields)
    last = status.get(LAST_RUN) or {}
    if last.get("error") == failure.to_dict() and not changed:
        return None
    return {**changed, LAST_RUN: {"completionTime": now, "error": failure.to_dict()}}


def age_seconds(current: Mapping[str, Any], now: datetime) -> float:
    started = parse_time(current.get("startTime"))
    return float("inf") if started is None else (now - started).total_seconds()
