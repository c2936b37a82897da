"""Last successful run per IngestionJob, read from the objects as the gauge exports it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lakeop.core.runs.freshness import (
    freshness,
    last_success_time,
    last_successes,
    schedule_interval,
)
from lakeop.core.spec.resources import parse_ingestion_job

SPEC = {"tableRef": "events", "source": {"uri": "s3://landing/*.csv", "format": "csv"}}
T0 = "2026-12-01T02:00:00+00:00"
T0_SECONDS = 1796090400.0


def ij(namespace: str, name: str, status: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"namespace": namespace, "name": name}}
    if status is not None:
        body["status"] = status
    return body


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"lastSuccessfulTime": T0}, T0_SECONDS),
        ({"lastSuccessfulTime": "2026-12-01T02:00:00Z"}, T0_SECONDS),
        ({"lastSuccessfulTime": "2026-12-01T02:00:00"}, T0_SECONDS),  # naive = UTC
        # a failed last run does not move it back
        (
            {"lastSuccessfulTime": T0, "lastRun": {"completionTime": "2026-12-02T00:00:00Z"}},
            T0_SECONDS,
        ),
        # before lastSuccessfulTime existed: a successful lastRun's end
        ({"lastRun": {"completionTime": T0, "error": None}}, T0_SECONDS),
        ({"lastRun": {"completionTime": T0, "error": {"reason": "Failed"}}}, None),
        ({"lastSuccessfulTime": "yesterday"}, None),
        ({"lastSuccessfulTime": 5}, None),
        ({}, None),
    ],
)
def test_last_success_time(status: dict[str, Any], expected: float | None) -> None:
    assert last_success_time(status) == expected


def test_last_successes_keeps_served_jobs_that_ever_succeeded() -> None:
    objects = [
        ij("analytics", "daily", {"lastSuccessfulTime": T0}),
        ij("analytics", "never", {"phase": "Failed"}),
        ij("analytics", "new", None),
        ij("other", "daily", {"lastSuccessfulTime": T0}),
        {"metadata": {"name": "no-namespace"}, "status": {"lastSuccessfulTime": T0}},
    ]
    assert last_successes(objects) == {
        ("analytics", "daily"): T0_SECONDS,
        ("other", "daily"): T0_SECONDS,
    }
    assert last_successes(objects, lambda ns: ns == "analytics") == {
        ("analytics", "daily"): T0_SECONDS
    }


NOW = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)  # a Wednesday
DAY = 86400.0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"schedule": "*/15 * * * *"}, 900.0),
        ({"schedule": "0 2 * * *"}, DAY),
        ({"schedule": "@hourly"}, 3600.0),
        ({"schedule": "0 2 * * *", "timeZone": "Europe/Berlin"}, DAY),
        # the gap around now: Tuesday 02:00 to Thursday 02:00 for a Tue/Thu schedule
        ({"schedule": "0 2 * * 2,4"}, 2 * DAY),
        ({"schedule": "0 2 * * *", "suspend": True}, None),
        ({}, None),
        ({"schedule": "*/15 25 * * *"}, None),  # invalid: the operator reports it elsewhere
        ({"schedule": "0 2 * * *", "timeZone": "Europe/Berln"}, None),
    ],
)
def test_schedule_interval(spec: dict[str, Any], expected: float | None) -> None:
    manifest = {**ij("analytics", "daily", None), "spec": {**SPEC, **spec}}
    assert schedule_interval(parse_ingestion_job(manifest), NOW) == expected


def test_freshness_pairs_both_gauges_per_served_job() -> None:
    daily = {
        **ij("analytics", "daily", {"lastSuccessfulTime": T0}),
        "spec": {**SPEC, "schedule": "@daily"},
    }
    once = {**ij("analytics", "once", {"lastSuccessfulTime": T0}), "spec": SPEC}
    hidden = {
        **ij("other", "x", {"lastSuccessfulTime": T0}),
        "spec": {**SPEC, "schedule": "@daily"},
    }
    fresh = freshness([daily, once, hidden], NOW, lambda ns: ns == "analytics")
    assert fresh.last_success == {
        ("analytics", "daily"): T0_SECONDS,
        ("analytics", "once"): T0_SECONDS,
    }
    assert fresh.schedule_interval == {("analytics", "daily"): DAY}
