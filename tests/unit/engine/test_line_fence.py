"""The careful CSV reader's line fence: over-long lines become a placeholder, the rest of
the bytes pass through unchanged, wherever the chunk edges fall."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from lakeop.sources.csv_reader import LineFence

MARK = b",,,"


def through(data: bytes, limit: int, read_size: int) -> tuple[bytes, list[bytes]]:
    fence = LineFence(pa.BufferReader(data), limit, MARK)
    out = b""
    while chunk := fence.read(read_size):
        out += chunk
    return out, list(fence.long)


def expected(data: bytes, limit: int) -> tuple[bytes, list[bytes]]:
    """The same by the obvious per-line rule."""
    lines = data.split(b"\n")
    out, long = [], []
    for line in lines:
        if len(line) > limit:
            out.append(MARK)
            long.append(line[:200])
        else:
            out.append(line)
    return b"\n".join(out), long


@pytest.mark.parametrize("seed", range(20))
def test_fence_matches_the_per_line_rule(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([16, 64, 300])
    lines = [b"x" * rng.choice([0, 1, limit - 1, limit, limit + 1, 3 * limit]) for _ in range(60)]
    data = b"\n".join(lines) + (b"\n" if seed % 2 else b"")
    assert through(data, limit, rng.choice([1, 7, limit, 4096])) == expected(data, limit)


def test_line_numbers_are_kept() -> None:
    data = b"h\n" + b"a\n" + b"y" * 50 + b"\n" + b"b\n"
    out, long = through(data, 10, 4096)
    assert out.split(b"\n") == [b"h", b"a", MARK, b"b", b""]
    assert long == [b"y" * 50]
