"""The writer's read-ahead thread: order, errors raised in the caller, early close."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lakeop.engine.write import read_ahead


def test_yields_every_item_in_order() -> None:
    assert list(read_ahead(iter(range(100)), depth=2)) == list(range(100))
    assert list(read_ahead(iter(range(5)), depth=0)) == list(range(5))


def test_error_is_raised_in_the_caller_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad line 3")

    got = []
    with pytest.raises(ValueError, match="bad line 3"):
        for x in read_ahead(items(), depth=2):
            got.append(x)
    assert got == [1, 2]


def test_closing_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()
    produced = []

    def items() -> Iterator[int]:
        try:
            for i in range(1_000_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    it = read_ahead(items(), depth=2)
    assert next(it) == 0
    it.close()
    assert closed.is_set()
    assert len(produced) < 10
    assert not any(t.name == "lakeop-read" for t in threading.enumerate())
