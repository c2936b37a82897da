"""Timestamps as Kubernetes writes them: RFC 3339, UTC, second precision, ``Z`` suffix.

Status fields (``lastScheduleTime``, ``startTime``, condition ``lastTransitionTime``), API
objects' ``creationTimestamp`` and the run summary all carry this one format, so formatting and
parsing live here once. Parsing is lenient the way the API server's readers are: a naive
value is taken as UTC, and anything that is not a timestamp is ``None`` (the callers fall back
to their own default rather than fail on an odd status field).
"""

from __future__ import annotations

from datetime import UTC, datetime

#: the format Kubernetes writes (``metav1.Time``)
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    """``moment`` as ``2026-03-01T10:00:05Z`` (UTC, whole seconds; naive means UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(RFC3339)


def format_epoch(seconds: float) -> str:
    """A POSIX time (``time.time()``) as :func:`format_time` writes it."""
    return format_time(datetime.fromtimestamp(seconds, UTC))


def parse_time(value: object) -> datetime | None:
    """An aware datetime from an RFC 3339 / ISO 8601 string; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
