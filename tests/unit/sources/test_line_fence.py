"""The careful CSV reader's line fence: over-long lines become a placeholder, the rest of
the bytes pass through unchanged, wherever the chunk edges fall."""

from __future__ import annotations

import random
import re

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
    """The same by the obvious per-line rule (lines end at \\n or \\r)."""
    parts = re.split(rb"(\r|\n)", data)  # line, break, line, break, ..., line
    out, long = [], []
    for k, part in enumerate(parts):
        if k % 2 == 0 and len(part) > limit:
            out.append(MARK)
            long.append(part[:200])
        else:
            out.append(part)
    return b"".join(out), long


@pytest.mark.parametrize("seed", range(20))
def test_fence_matches_the_per_line_rule(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([16, 64, 300])
    lines = [b"x" * rng.choice([0, 1, limit - 1, limit, limit + 1, 3 * limit]) for _ in range(60)]
    ends = [rng.choice([b"\n", b"\r\n", b"\r"]) for _ in lines]
    data = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    if seed % 2:
        data = data.rstrip(b"\r\n")
    assert through(data, limit, rng.choice([1, 7, limit, 4096])) == expected(data, limit)


def test_line_numbers_are_kept() -> None:
    data = b"h\n" + b"a\n" + b"y" * 50 + b"\n" + b"b\n"
    out, long = through(data, 10, 4096)
    assert out.split(b"\n") == [b"h", b"a", MARK, b"b", b""]
    assert long == [b"y" * 50]
