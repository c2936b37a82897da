"""When each IngestionJob last succeeded, as numbers a gauge can carry, from the objects alone.

An alert on "no successful run for a day" cannot be built on counters: they restart with the
pod and only the active replica counts. ``status.lastSuccessfulTime`` lives in the API, so any
replica that can list IngestionJobs can export it. This module turns listed objects into
``{(namespace, name): unix seconds}``; the edge lists, the metrics module exports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

LastSuccesses = dict[tuple[str, str], float]


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
