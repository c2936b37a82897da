"""Partition naming and the stable hash: golden values, vectorised == reference, stability."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pyarrow as pa
import pytest

from lakeop.core.lake.partitioning import (
    NULL_PARTITION,
    column_problem,
    hash_python,
    list_lookup,
    partition_columns,
    partition_path,
    range_index,
    range_labels,
)
from lakeop.core.spec.layout import PartitionSpec
from lakeop.engine.partition import make_partitioner
from lakeop.errors import InvalidSpecError

GOLDEN = [
    (0, 16294208416658607535),  # SplitMix64's first output for seed 0: the mixer is standard
    (1, 10451216379200822465),
    (-1, 16490336266968443936),
    (42, 13679457532755275413),
    ("", 16294208416658607535),
    ("a", 4824385676517010403),
    ("user-1", 11480476877095549399),
    ("héllo", 7153356037705956760),
    (b"\x00a", 15038216327636719319),
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_golden_hashes(value: object, expected: int) -> None:
    assert hash_python(value) == expected


def test_hash_is_stable_across_processes() -> None:
    code = "from lakeop.core.lake.partitioning import hash_python; print(hash_python('user-1'))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert outs == {str(hash_python("user-1"))}


@pytest.mark.parametrize(
    ("arr", "values"),
    [
        (pa.array(["a", "user-1", None, "", "héllo", "a"] * 12_000), None),
        (pa.array([0, 1, -1, 42, None, 2**62] * 12_000, pa.int64()), None),
        (pa.array(["x", "y"], pa.large_string()).slice(1), ["y"]),
    ],
)
def test_vectorised_matches_reference(arr: pa.Array, values: list[object] | None) -> None:
    part = make_partitioner(PartitionSpec("hash", "c", buckets=64), arr.type)
    got = part.key_arrays(arr)[0].to_pylist()
    memo = {v: hash_python(v) % 64 for v in set(values or arr.to_pylist()) if v is not None}
    ref = [None if v is None else memo[v] for v in (values or arr.to_pylist())]
    assert got == ref


def test_range_labels_sort_and_cover() -> None:
    bounds = [0, 100, 1000]
    labels = range_labels(bounds)
    assert labels == ["r0_below_0", "r1_0_to_100", "r2_100_to_1000", "r3_1000_and_above"]
    assert [range_index(bounds, v) for v in (-5, 0, 99.9, 100, 5000)] == [0, 1, 1, 2, 3]
    many = range_labels(list(range(12)))
    assert many == sorted(many) and many[0] == "r00_below_0"
    assert range_labels(["2026-01-01"])[1] == "r1_2026-01-01_and_above"


def test_vectorised_range_and_list() -> None:
    spec = PartitionSpec("range", "v", boundaries=(0, 10.5))
    got = make_partitioner(spec, pa.float64()).key_arrays(pa.array([-1.0, 0.0, 10.5, None]))[0]
    assert got.to_pylist() == ["r0_below_0", "r1_0_to_10.5", "r2_10.5_and_above", None]
    spec = PartitionSpec("list", "c", values={"eu": ("DE", "FR"), "us": ("US",)}, default="x")
    assert list_lookup(spec) == (["DE", "FR", "US"], ["eu", "eu", "us"])
    got = make_partitioner(spec, pa.string()).key_arrays(pa.array(["FR", "JP", None, "US"]))[0]
    assert got.to_pylist() == ["eu", "x", None, "us"]


def test_columns_and_paths() -> None:
    assert partition_columns(PartitionSpec("date", "ts", granularity="month")) == ["year", "month"]
    assert partition_columns(PartitionSpec("range", "v", boundaries=(1,))) == ["v_range"]
    assert partition_columns(PartitionSpec()) == []
    assert partition_path(["year", "month"], [2026, None]) == f"year=2026/month={NULL_PARTITION}"


def test_range_on_timestamps_and_dates() -> None:
    spec = PartitionSpec("range", "ts", boundaries=("2026-01-01", "2026-07-01"))
    ts = pa.array(
        [dt.datetime(2025, 12, 31, 23), dt.datetime(2026, 3, 1), None, dt.datetime(2026, 7, 1)],
        pa.timestamp("us", tz="UTC"),
    )
    got = make_partitioner(spec, ts.type).key_arrays(ts)[0].to_pylist()
    assert got == [
        "r0_below_2026-01-01",
        "r1_2026-01-01_to_2026-07-01",
        None,
        "r2_2026-07-01_and_above",
    ]
    days = pa.array([dt.date(2026, 6, 30), dt.date(2026, 7, 1)])
    got = make_partitioner(spec, pa.date32()).key_arrays(days)[0].to_pylist()
    assert got == ["r1_2026-01-01_to_2026-07-01", "r2_2026-07-01_and_above"]


@pytest.mark.parametrize(
    ("spec", "type_name", "problem"),
    [
        (PartitionSpec("hash", "c", buckets=4), "double", "hash partitioning needs a field of"),
        (PartitionSpec("date", "c"), "string", "date partitioning needs a field of type date"),
        (PartitionSpec("date", "c"), None, "not a field of the table's schema"),
        (PartitionSpec("range", "c", boundaries=(1,)), "boolean", "range partitioning needs"),
        (PartitionSpec("hash", "c", buckets=4), "long", None),
        (PartitionSpec("date", "c"), "timestamp", None),
        (PartitionSpec("list", "c", values={"a": ("x",)}), "string", None),
    ],
)
def test_partition_column_types(
    spec: PartitionSpec, type_name: str | None, problem: str | None
) -> None:
    got = column_problem(spec, type_name)
    assert (got is None) if problem is None else (got is not None and problem in got), got


def test_make_partitioner_needs_the_column() -> None:
    with pytest.raises(InvalidSpecError, match="not a field of the table's schema"):
        make_partitioner(PartitionSpec("date", "c"), None)
