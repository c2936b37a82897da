"""The IngestionJob fields the operator reads beyond the run itself: scheduling, history and
the run Job's own settings, parsed once with their defaults (nothing reads the raw body)."""

from __future__ import annotations

from typing import Any

import pytest

from lakeop.core.spec.resources import (
    DEFAULT_COMPATIBILITY,
    DEFAULT_FAILED_RUNS_HISTORY_LIMIT,
    DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT,
    parse_ingestion_job,
    parse_table,
    table_compatibility,
)
from lakeop.errors import InvalidSpecError

BASE = {"tableRef": "t", "source": {"uri": "file:///in/*.csv", "format": "csv"}}


def job(**spec: Any) -> dict[str, Any]:
    return {"kind": "IngestionJob", "metadata": {"name": "j", "namespace": "ns"}, "spec": spec}


def test_defaults() -> None:
    j = parse_ingestion_job(job(**BASE))
    assert j.concurrency_policy is None  # Forbid, decided by the scheduler's parser
    assert j.starting_deadline_seconds is None
    assert j.successful_runs_history_limit == DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT == 3
    assert j.failed_runs_history_limit == DEFAULT_FAILED_RUNS_HISTORY_LIMIT == 1
    assert j.active_deadline_seconds is None
    assert j.ttl_seconds_after_finished is None  # the operator's LAKEOP_JOB_TTL_SECONDS
    assert j.priority_class_name is None


def test_every_field_is_read() -> None:
    j = parse_ingestion_job(
        job(
            **BASE,
            schedule="0 * * * *",
            timeZone="Europe/Paris",
            concurrencyPolicy="Replace",
            startingDeadlineSeconds=0,
            successfulRunsHistoryLimit=0,
            failedRunsHistoryLimit=7,
            activeDeadlineSeconds=600,
            ttlSecondsAfterFinished=0,
            priorityClassName="batch-low",
            priority=-5,
            suspend=True,
        )
    )
    assert (j.schedule, j.time_zone, j.concurrency_policy) == (
        "0 * * * *",
        "Europe/Paris",
        "Replace",
    )
    assert (j.starting_deadline_seconds, j.active_deadline_seconds) == (0, 600)
    assert (j.successful_runs_history_limit, j.failed_runs_history_limit) == (0, 7)
    assert (j.ttl_seconds_after_finished, j.priority_class_name) == (0, "batch-low")
    assert (j.priority, j.suspend) == (-5, True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("activeDeadlineSeconds", 0, "spec.activeDeadlineSeconds: must be an integer >= 1"),
        ("ttlSecondsAfterFinished", -1, "spec.ttlSecondsAfterFinished: must be an integer >= 0"),
        ("startingDeadlineSeconds", "soon", "spec.startingDeadlineSeconds: must be an integer"),
        ("failedRunsHistoryLimit", -1, "spec.failedRunsHistoryLimit: must be an integer >= 0"),
        ("successfulRunsHistoryLimit", True, "spec.successfulRunsHistoryLimit: must be"),
        ("priorityClassName", "", "spec.priorityClassName: must be a non-empty string"),
    ],
)
def test_bad_values_name_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_ingestion_job(job(**BASE, **{field: value}))


def test_table_compatibility_alone_and_its_one_default() -> None:
    table = {"kind": "Table", "metadata": {"name": "t", "namespace": "ns"}, "spec": {}}
    assert table_compatibility(table) == DEFAULT_COMPATIBILITY == "BACKWARD"
    assert parse_table(table).compatibility == DEFAULT_COMPATIBILITY
    full = {**table, "spec": {"compatibility": "FULL", "location": "relative/path"}}
    assert table_compatibility(full) == "FULL"  # although the Table itself does not parse
    with pytest.raises(InvalidSpecError):
        parse_table(full)
