"""Deterministic shares of files and key ranges, and the all-shares commit rule."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from lakeop.core.lake.sharding import (
    KeyRange,
    ShardResult,
    SourceFile,
    assign_shards,
    key_range_basis,
    listing_basis,
    ready_to_commit,
    run_totals,
    shard_files,
    shard_key_ranges,
    shard_progress,
)

NINE = [SourceFile(f"/in/part-{i}.csv", 1000) for i in range(9)]


def paths(files: list[SourceFile]) -> list[str]:
    return [f.path for f in files]


# ------------------------------------------------------------------------------------ files


def test_nine_equal_files_over_three_pods() -> None:
    shares = [shard_files(NINE, i, 3) for i in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]
    assert sorted(p for s in shares for p in paths(s)) == paths(NINE)


@pytest.mark.parametrize("seed", range(6))
def test_shares_do_not_depend_on_listing_order(seed: int) -> None:
    files = [SourceFile(f"s3://b/k/{i:03}.parquet", (i * 7919) % 5000) for i in range(50)]
    expected = assign_shards(files, 4)
    shuffled = files[:]
    random.Random(seed).shuffle(shuffled)
    assert assign_shards(shuffled, 4) == expected
    assert assign_shards(shuffled + files[:5], 4) == expected  # duplicates ignored


@pytest.mark.parametrize(
    ("sizes", "count", "loads"),
    [
        ([100, 1, 1, 1, 1], 2, [100, 4]),  # one big file alone; the small ones together
        ([5, 4, 3, 3, 2, 2, 1], 3, [7, 7, 6]),
        ([10] * 4, 4, [10, 10, 10, 10]),
        ([0] * 6, 3, [0, 0, 0]),
        ([7, 7], 4, [7, 7, 0, 0]),  # more pods than files: some shares are empty
    ],
)
def test_shares_balance_bytes(sizes: list[int], count: int, loads: list[int]) -> None:
    files = [SourceFile(f"f{i}", s) for i, s in enumerate(sizes)]
    shares = assign_shards(files, count)
    assert sorted((sum(f.size for f in s) for s in shares), reverse=True) == loads
    assert sorted(f for s in shares for f in s) == sorted(files)


def test_zero_sized_files_spread_by_count() -> None:
    files = [SourceFile(f"f{i}") for i in range(7)]
    assert [len(s) for s in assign_shards(files, 3)] == [3, 2, 2]


def test_each_share_is_sorted_by_path() -> None:
    for share in assign_shards(NINE, 2):
        assert paths(share) == sorted(paths(share))


@pytest.mark.parametrize(("index", "count"), [(3, 3), (-1, 3), (0, 0)])
def test_shard_files_checks_index(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        shard_files(NINE, index, count)


def test_listing_basis_is_order_free_but_sees_changes() -> None:
    assert listing_basis(NINE) == listing_basis(list(reversed(NINE)))
    assert listing_basis(NINE) != listing_basis(NINE[:-1])
    assert listing_basis(NINE) != listing_basis([*NINE[:-1], SourceFile(NINE[-1].path, 1)])


# -------------------------------------------------------------------------------- key ranges


def test_integer_key_ranges() -> None:
    ranges = shard_key_ranges(1, 100, 4)
    assert ranges == [
        KeyRange(None, 26, include_null=True),
        KeyRange(26, 51),
        KeyRange(51, 76),
        KeyRange(76, None),
    ]


@pytest.mark.parametrize(
    ("low", "high", "count"), [(1, 100, 4), (-50, 7, 3), (5, 6, 4), (0, 0, 1), (0, 10**12, 7)]
)
def test_every_key_lands_in_exactly_one_range(low: int, high: int, count: int) -> None:
    ranges = shard_key_ranges(low, high, count)
    assert len(ranges) == count
    probe = {low - 1000, low - 1, low, high, high + 1, high + 10**6, (low + high) // 2, None}
    probe |= {r.lower for r in ranges} | {r.upper for r in ranges}
    for key in probe:
        assert sum(r.contains(key) for r in ranges) == 1, key


def test_datetime_and_date_key_ranges() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ranges = shard_key_ranges(start, start + timedelta(days=4) - timedelta(microseconds=1), 4)
    assert [r.lower for r in ranges[1:]] == [start + timedelta(days=d) for d in (1, 2, 3)]
    days = shard_key_ranges(date(2026, 1, 1), date(2026, 1, 10), 2)
    assert days[0].upper == date(2026, 1, 6)
    assert days[1].contains(date(2030, 1, 1)) and days[0].contains(None)


@pytest.mark.parametrize(
    ("low", "high", "error"),
    [
        (10, 1, ValueError),
        (1, 2.5, TypeError),
        (1.0, 2.0, TypeError),
        (True, 5, TypeError),
        ("a", "z", TypeError),
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), TypeError),
    ],
)
def test_key_range_errors(low: object, high: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        shard_key_ranges(low, high, 2)  # type: ignore[type-var]


def test_key_range_basis() -> None:
    assert key_range_basis(1, 100, 3) == key_range_basis(1, 100, 3)
    assert key_range_basis(1, 100, 3) != key_range_basis(1, 101, 3)
    assert key_range_basis(1, 100, 3) != key_range_basis(1, 100, 4)


# ------------------------------------------------------------------------------ commit rule


def result(index: int, basis: str = "b1", attempt: int = 0, rows: int = 10) -> ShardResult:
    totals = {"rowsRead": rows, "rowsWritten": rows, "filesWritten": 1, "bytesWritten": rows * 8}
    return ShardResult(index, basis, attempt, totals, f"m-{index}-{attempt}")


@pytest.mark.parametrize(
    ("results", "ready", "missing", "problem"),
    [
        ([result(0), result(1), result(2)], True, (), None),
        ([result(2), result(0)], False, (1,), None),
        ([], False, (0, 1, 2), None),
        ([result(0), result(1), result(2, "b2")], False, (), "shards split different inputs"),
        ([result(0), result(1), result(2), result(3)], False, (), "shard 3 is outside 0..2"),
        # a retried share with two manifests is fine: one is chosen
        ([result(0), result(1), result(1, attempt=1), result(2)], True, (), None),
    ],
)
def test_ready_to_commit(
    results: list[ShardResult], ready: bool, missing: tuple[int, ...], problem: str | None
) -> None:
    readiness = ready_to_commit(results, 3)
    assert readiness.ready is ready
    assert readiness.missing == missing
    if problem is None:
        assert readiness.problems == ()
    else:
        assert any(problem in p for p in readiness.problems)


def test_latest_attempt_is_chosen_and_totals_sum_chosen_only() -> None:
    readiness = ready_to_commit(
        [result(1, attempt=1, rows=5), result(0), result(1, attempt=0, rows=7)], 2
    )
    assert readiness.ready
    assert readiness.chosen[1].manifest == "m-1-1"
    totals = run_totals(readiness.chosen.values())
    assert totals == {
        "rowsRead": 15, "rowsWritten": 15, "rowsRejected": 0, "bytesWritten": 120,
        "filesWritten": 2,
    }  # fmt: skip


def test_shard_progress() -> None:
    readiness = ready_to_commit([result(0, rows=3), result(2, rows=4)], 3)
    assert shard_progress(readiness.chosen, 3, failed=[1]) == [
        {"index": 0, "state": "Done", "rowsWritten": 3},
        {"index": 1, "state": "Failed"},
        {"index": 2, "state": "Done", "rowsWritten": 4},
    ]
    assert shard_progress({}, 1) == [{"index": 0, "state": "Pending"}]
