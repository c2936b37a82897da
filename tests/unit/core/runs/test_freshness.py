"""Last successful run per IngestionJob, read from the objects as the gauge exports it."""

from __future__ import annotations

from typing import Any

import pytest

from lakeop.core.runs.freshness import last_success_time, last_successes

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
