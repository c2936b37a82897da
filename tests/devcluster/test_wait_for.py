"""The shared ``wait_for`` helper: first truthy value back, or a failure naming what it awaited."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest


def test_returns_first_truthy_value(wait_for: Callable[..., Any]) -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 2 and "done", timeout=5, interval=0.01) == "done"


def test_exceptions_count_as_not_yet(wait_for: Callable[..., Any]) -> None:
    calls = itertools.count()

    def flaky() -> int:
        n = next(calls)
        if n < 2:
            raise ConnectionError("not yet")
        return n

    assert wait_for(flaky, timeout=5, interval=0.01) == 2


def test_timeout_names_what_last_value_and_last_error(wait_for: Callable[..., Any]) -> None:
    with pytest.raises(AssertionError, match=r"waiting for Job x Complete \(last value: \[\]\)"):
        wait_for(lambda: [], timeout=0.05, what="Job x Complete", interval=0.01)

    def broken() -> bool:
        raise KeyError("status")

    with pytest.raises(AssertionError, match=r"last error: KeyError: 'status'"):
        wait_for(broken, timeout=0.05, what="status", interval=0.01)


def test_ignore_nothing_fails_an_invariant_at_once(wait_for: Callable[..., Any]) -> None:
    calls = itertools.count()

    def invariant_broken() -> bool:
        next(calls)
        raise AssertionError("a reader saw a half-written file")

    with pytest.raises(AssertionError, match="half-written"):
        wait_for(invariant_broken, timeout=30, what="staged files", interval=0.01, ignore=())
    assert next(calls) == 1  # raised on the first call, not retried until the timeout
