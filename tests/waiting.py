"""The one polling helper of the test suite: wait until something holds, or say what did not.

Every test that waits for a cluster object, a process or a file calls :func:`wait_for`; on
timeout the AssertionError names what was waited for, the last value the predicate returned
and the last exception it raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.25,
    *,
    ignore: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Call ``predicate`` until it returns something truthy and return that value.

    Exceptions of the ``ignore`` types count as "not yet" (an object not created yet, a port
    not open yet); pass ``ignore=()`` when the predicate asserts an invariant that must hold
    all along, so a violation fails at once instead of at the timeout.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except ignore as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"last value: {last!r}"
            if last_exc is not None:
                detail += f"; last error: {type(last_exc).__name__}: {last_exc}"
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({detail})")
        time.sleep(interval)
