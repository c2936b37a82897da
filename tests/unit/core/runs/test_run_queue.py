"""Admission order and positions under the operator-wide and per-namespace limits."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lakeop.core.runs.queue import (
    QueuedRun,
    QueueLimits,
    QueueReason,
    active_runs,
    admit,
    limits_from_env,
    queue_message,
    queued_run,
    waiting_runs,
)
from lakeop.errors import InvalidSpecError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(ref: str, priority: int = 0, minute: int = 0) -> QueuedRun:
    namespace, name = ref.split("/")
    return QueuedRun(namespace, name, priority, T0 + timedelta(minutes=minute))


def names(runs: list[QueuedRun]) -> list[str]:
    return [f"{r.namespace}/{r.name}" for r in runs]


# waiting runs for the table below: three priorities, ties broken by age then name
WAITING = [
    run("a/low", 1, 0),
    run("a/high", 10, 5),
    run("b/mid-old", 5, 1),
    run("b/mid-new", 5, 2),
    run("a/mid-tie", 5, 2),
]


@pytest.mark.parametrize(
    ("running", "max_total", "per_ns", "started", "positions"),
    [
        # the test: limit 1, three priorities
        ([], 1, None, ["a/high"], ["b/mid-old", "a/mid-tie", "b/mid-new", "a/low"]),
        (["x/busy"], 1, None, [], ["a/high", "b/mid-old", "a/mid-tie", "b/mid-new", "a/low"]),
        ([], 3, None, ["a/high", "b/mid-old", "a/mid-tie"], ["b/mid-new", "a/low"]),
        ([], None, None, ["a/high", "b/mid-old", "a/mid-tie", "b/mid-new", "a/low"], []),
        # one per namespace: a/high and b/mid-old start; the rest wait behind their namespace
        ([], 10, 1, ["a/high", "b/mid-old"], ["a/mid-tie", "b/mid-new", "a/low"]),
        # namespace a is full: b's runs pass a's queued ones
        (["a/busy"], 10, 1, ["b/mid-old"], ["a/high", "a/mid-tie", "b/mid-new", "a/low"]),
        # global limit strict even when namespaces have room
        (["a/busy"], 2, 1, ["b/mid-old"], ["a/high", "a/mid-tie", "b/mid-new", "a/low"]),
        (["a/busy", "b/busy"], 2, 5, [],
         ["a/high", "b/mid-old", "a/mid-tie", "b/mid-new", "a/low"]),
        # a waiting run that is already running is not started twice
        (["a/high"], 2, None, ["b/mid-old"], ["a/mid-tie", "b/mid-new", "a/low"]),
    ],
)  # fmt: skip
def test_admit(
    running: list[str],
    max_total: int | None,
    per_ns: int | None,
    started: list[str],
    positions: list[str],
) -> None:
    result = admit(WAITING, [run(r) for r in running], max_total, per_ns)
    assert names(result.to_start) == started
    expected = {tuple(ref.split("/")): i for i, ref in enumerate(positions, start=1)}
    assert result.positions == expected
    assert set(result.reasons) == set(expected)


def test_admit_ignores_listing_order_and_duplicates() -> None:
    shuffled = WAITING * 2
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        to_start, positions, _ = admit(shuffled, [], 2)
        assert names(to_start) == ["a/high", "b/mid-old"]
        assert list(positions.values()) == [1, 2, 3]


def test_reasons_tell_which_limit_holds_a_run() -> None:
    result = admit([run("a/x", 9), run("a/y", 8), run("b/z", 1)], [run("c/busy")], 3, 1)
    assert names(result.to_start) == ["a/x", "b/z"]
    assert result.reasons == {("a", "y"): QueueReason.NAMESPACE_LIMIT}
    result = admit([run("a/x"), run("b/y")], [run("c/busy")], 2, 1)
    assert result.reasons == {("b", "y"): QueueReason.MAX_CONCURRENT_RUNS}


def test_run_without_creation_time_goes_last_within_its_priority() -> None:
    result = admit([QueuedRun("a", "unknown", 1), run("a/known", 1, 30)], [], 1)
    assert names(result.to_start) == ["a/known"]


@pytest.mark.parametrize("bad", [0, -1])
def test_admit_rejects_non_positive_limits(bad: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        admit([], [], bad)
    with pytest.raises(ValueError, match="per_namespace"):
        admit([], [], None, bad)


def test_queue_message() -> None:
    assert queue_message(2, QueueReason.MAX_CONCURRENT_RUNS, 1) == (
        "waiting for a free slot: position 2 in the queue (limit 1 runs at once in this operator)"
    )
    assert "in this namespace" in queue_message(1, QueueReason.NAMESPACE_LIMIT, 3)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, QueueLimits(10, None)),
        ({"LAKEOP_MAX_CONCURRENT_RUNS": "1"}, QueueLimits(1, None)),
        ({"LAKEOP_MAX_CONCURRENT_RUNS_PER_NAMESPACE": " 2 "}, QueueLimits(10, 2)),
        ({"LAKEOP_MAX_CONCURRENT_RUNS": ""}, QueueLimits(10, None)),
    ],
)
def test_limits_from_env(env: dict[str, str], expected: QueueLimits) -> None:
    assert limits_from_env(env) == expected


@pytest.mark.parametrize("value", ["0", "-3", "two", "1.5"])
def test_limits_from_env_errors_name_variable_and_value(value: str) -> None:
    with pytest.raises(InvalidSpecError, match=f"LAKEOP_MAX_CONCURRENT_RUNS: .*{value!r}"):
        limits_from_env({"LAKEOP_MAX_CONCURRENT_RUNS": value})


def test_allow_policy_jobs_count_one_each() -> None:
    result = admit([run("b/next")], [run("a/ij"), run("a/ij")], 2)
    assert result.to_start == []
    assert result.positions == {("b", "next"): 1}


def test_an_overlapping_run_starts_beside_its_own_active_one_when_a_slot_is_free() -> None:
    # concurrencyPolicy: Allow: a/ij's next scheduled run starts though a/ij is running ...
    result = admit([run("a/ij")], [run("a/ij")], 2, overlapping=[("a", "ij")])
    assert names(result.to_start) == ["a/ij"]
    # ... but it still needs a free slot, and without overlap it is never started twice
    result = admit([run("a/ij")], [run("a/ij")], 1, overlapping=[("a", "ij")])
    assert (result.to_start, result.positions) == ([], {("a", "ij"): 1})
    assert admit([run("a/ij")], [run("a/ij")], 2).to_start == []


def ij(name: str, phase: str | None, priority: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {} if priority is None else {"priority": priority}
    return {
        "metadata": {"namespace": "ns", "name": name, "creationTimestamp": "2026-01-01T00:05:00Z"},
        "spec": spec,
        "status": {"phase": phase} if phase else {},
    }


def job(owner: str | None, condition: str | None = None) -> dict[str, Any]:
    labels = {"lakeop.io/ingestionjob": owner} if owner else {}
    conds = [{"type": condition, "status": "True"}] if condition else []
    return {
        "metadata": {"namespace": "ns", "name": f"{owner}-abc", "labels": labels},
        "status": {"conditions": conds},
    }


def test_entries_from_api_objects() -> None:
    waiting = waiting_runs(
        [ij("a", "Queued", 3), ij("b", "Running"), ij("c", None), ij("d", "Queued")]
    )
    assert waiting == [
        QueuedRun("ns", "a", 3, T0 + timedelta(minutes=5)),
        QueuedRun("ns", "d", 0, T0 + timedelta(minutes=5)),
    ]
    running = active_runs(
        [job("a"), job("b", "Complete"), job("c", "Failed"), job(None), job("d", "Suspended")]
    )
    assert running == [QueuedRun("ns", "a"), QueuedRun("ns", "d")]
    assert queued_run({"metadata": {"name": "x"}}) == QueuedRun("default", "x")


def _in_flight(name: str, *job_names: str) -> dict[str, object]:
    runs = [{"number": i + 1, "jobName": j} for i, j in enumerate(job_names)]
    status: dict[str, object] = {"phase": "Running", "currentRun": runs[-1]}
    if runs[:-1]:
        status["activeRuns"] = runs[:-1]
    return {"metadata": {"namespace": "ns", "name": name}, "status": status}


def test_a_run_recorded_in_flight_before_its_job_exists_holds_its_slot() -> None:
    # "mid" was admitted and wrote currentRun; its Job is not created yet
    jobs = [job("a"), job("b", "Complete")]
    ijs = [
        _in_flight("a", "a-abc"),  # its Job exists and runs: counted once
        _in_flight("b", "b-abc"),  # its Job finished (not recorded yet): the slot is free
        _in_flight("mid", "mid-abc"),
        _in_flight("allow", "allow-1", "allow-2"),  # two runs in flight, no Job yet
        {"metadata": {"namespace": "ns", "name": "idle"}, "status": {"phase": "Queued"}},
    ]
    running = active_runs(jobs, ijs)
    assert running == [
        QueuedRun("ns", "a"),
        QueuedRun("ns", "mid"),
        QueuedRun("ns", "allow"),
        QueuedRun("ns", "allow"),
    ]
    # so the next waiting run is not admitted beside it under a limit of 2
    admission = admit([QueuedRun("ns", "low")], running[:2], 2)
    assert admission.to_start == []
    assert admission.reasons == {("ns", "low"): QueueReason.MAX_CONCURRENT_RUNS}
