"""Rerun tokens, suspend/cancel semantics and deterministic run identities."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lakeop.core.runs.jobs import job_name, run_id
from lakeop.core.runs.rerun import (
    OneOffAction,
    OneOffDecision,
    SuspendAction,
    can_rerun,
    cancel_requested,
    next_run_number,
    one_off_decision,
    rerun_requested,
    run_identity,
    suspend_action,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("annotations", "status", "expected"),
    [
        (None, None, None),
        ({}, {}, None),
        ({"other": "x"}, {}, None),
        ({"lakeop.io/rerun": "1"}, None, "1"),
        ({"lakeop.io/rerun": "1"}, {"lastRerunToken": "1"}, None),  # same token: nothing
        ({"lakeop.io/rerun": "2"}, {"lastRerunToken": "1"}, "2"),  # new token: a new run
        ({"lakeop.io/rerun": " 2026-05-05 "}, {"lastRerunToken": "1"}, "2026-05-05"),
        ({"lakeop.io/rerun": ""}, {"lastRerunToken": "1"}, None),  # empty is no request
        ({"lakeop.io/rerun": "   "}, {}, None),
    ],
)
def test_rerun_requested(
    annotations: dict[str, str] | None, status: dict[str, Any] | None, expected: str | None
) -> None:
    assert rerun_requested(annotations, status) == expected


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Succeeded", True),
        ("Failed", True),
        ("Scheduled", True),
        ("Running", False),
        ("Queued", False),
        ("Pending", False),
        ("Suspended", False),
        (None, False),
    ],
)
def test_can_rerun(phase: str | None, expected: bool) -> None:
    assert can_rerun(phase) is expected


@pytest.mark.parametrize(
    ("suspend", "annotations", "active", "action"),
    [
        (False, {}, False, "Proceed"),
        (False, {"lakeop.io/cancel": "true"}, True, "Proceed"),  # cancel needs suspend
        (True, {}, False, "Hold"),
        (True, {}, True, "Hold"),  # the running run finishes
        (True, {"lakeop.io/cancel": "true"}, True, "Cancel"),
        (True, {"lakeop.io/cancel": ""}, True, "Hold"),
        (True, {"lakeop.io/cancel": "yes"}, True, "Cancel"),
        (True, {"lakeop.io/cancel": "False"}, True, "Hold"),
        (True, {"lakeop.io/cancel": "0"}, True, "Hold"),
        (True, {"lakeop.io/cancel": "true"}, False, "Hold"),  # nothing to cancel
    ],
)
def test_suspend_action(
    suspend: bool, annotations: dict[str, str], active: bool, action: str
) -> None:
    assert suspend_action(suspend, annotations, active) is SuspendAction(action)


def test_cancel_requested() -> None:
    assert cancel_requested(True, {"lakeop.io/cancel": "now"})
    assert not cancel_requested(False, {"lakeop.io/cancel": "now"})
    assert not cancel_requested(True, None)


def test_run_identity_is_deterministic_and_builds_on_jobs() -> None:
    one = run_identity("0d4c-uid", 3)
    assert one == run_identity("0d4c-uid", 3)
    assert one.run_id == run_id("0d4c-uid", 3)
    assert run_identity("0d4c-uid", 4).run_id != one.run_id
    assert run_identity("other-uid", 3).run_id != one.run_id
    assert one.job_name("daily-events") == job_name("daily-events", "0d4c-uid", 3)
    assert one.job_name("daily-events") == f"daily-events-{one.run_id}"


@pytest.mark.parametrize(
    "name",
    [
        "daily",
        "a" * 63,
        "a" * 253,
        "events.v2.daily-load",
        "x" + "-" * 60 + "y",
        ("a" * 50) + "." + ("b" * 50),
    ],
)
@pytest.mark.parametrize("parallelism", [1, 3, 10, 1000])
def test_job_names_fit_labels_and_indexed_hostnames(name: str, parallelism: int) -> None:
    identity = run_identity("4f1e9c2a-77f0-4c2d-9d0e-3b5b8c0a1d22", 12)
    jname = identity.job_name(name, parallelism)
    assert len(jname) <= 63
    assert jname.endswith(identity.run_id)
    assert DNS_SUBDOMAIN.match(jname)
    if parallelism > 1:
        hostname = f"{jname}-{parallelism - 1}"
        assert len(hostname) <= 63
        assert DNS_LABEL.match(hostname), hostname


@pytest.mark.parametrize(("uid", "number"), [("", 1), ("uid", 0), ("uid", -1)])
def test_run_identity_rejects_bad_input(uid: str, number: int) -> None:
    with pytest.raises(ValueError, match="must"):
        run_identity(uid, number)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(None, 1), ({}, 1), ({"runs": 0}, 1), ({"runs": 4}, 5), ({"runs": True}, 1)],
)
def test_next_run_number(status: dict[str, Any] | None, expected: int) -> None:
    assert next_run_number(status) == expected


RERUN = {"lakeop.io/rerun": "t2"}
CANCEL = {"lakeop.io/cancel": "true"}
DONE = {"phase": "Succeeded", "lastRun": {"number": 1}, "runs": 1, "lastRerunToken": "t1"}


@pytest.mark.parametrize(
    ("spec", "annotations", "status", "active", "expected"),
    [
        ({}, {}, {}, False, ("Start", None)),  # a new one-off starts
        ({}, {"lakeop.io/rerun": "t0"}, {}, False, ("Start", "t0")),  # first run absorbs it
        ({}, {}, DONE, False, ("Nothing", None)),  # ran once, no request
        ({}, {"lakeop.io/rerun": "t1"}, DONE, False, ("Nothing", None)),  # same token
        ({}, RERUN, DONE, False, ("Start", "t2")),  # new token: one more run
        ({}, RERUN, {**DONE, "phase": "Failed"}, False, ("Start", "t2")),
        ({}, RERUN, {**DONE, "phase": "Running"}, True, ("Nothing", None)),  # token waits
        ({}, RERUN, {**DONE, "currentRun": {"number": 2}}, False, ("Nothing", None)),
        ({"suspend": True}, RERUN, DONE, False, ("Hold", None)),
        ({"suspend": True}, {}, {}, False, ("Hold", None)),
        ({"suspend": True}, CANCEL, {"phase": "Running"}, True, ("Cancel", None)),
        ({"suspend": False}, CANCEL, {"phase": "Running"}, True, ("Nothing", None)),
    ],
)  # fmt: skip
def test_one_off_decision(
    spec: dict[str, Any],
    annotations: dict[str, str],
    status: dict[str, Any],
    active: bool,
    expected: tuple[str, str | None],
) -> None:
    action, token = expected
    decision = one_off_decision(spec, annotations, status, active)
    assert decision == OneOffDecision(OneOffAction(action), token)
