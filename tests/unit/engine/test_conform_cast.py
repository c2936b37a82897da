"""conform: a column whose vectorised cast fails is searched by halves, with the same
verdict per value as casting each value alone."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from lakeop.engine.conform import cast_column


@pytest.mark.parametrize("seed", range(12))
def test_bad_values_found_by_halves_match_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 17, 1000, 4099])
    values: list[str | None] = [str(rng.randrange(-99, 99)) for _ in range(n)]
    bad_rows = sorted(rng.sample(range(n), rng.choice([1, min(n, 3), max(1, n // 10)])))
    for i in bad_rows:
        values[i] = rng.choice(["x", "1.5", "--1", " "])
    for i in rng.sample(range(n), n // 7):
        if i not in bad_rows:
            values[i] = None
    col, bad = cast_column(pa.array(values, pa.string()), pa.int32(), "c")
    assert [b.row for b in bad] == bad_rows
    assert all(b.field == "c" and "cannot convert" in b.reason for b in bad)
    expected = [None if i in bad_rows or v is None else int(v) for i, v in enumerate(values)]
    assert col.type == pa.int32() and col.to_pylist() == expected
