"""Vectorised partition keys: append the Hive key columns a batch is partitioned by.

The naming and the hash are defined in :mod:`lakeop.core.lake.partitioning`; this module only
computes them over Arrow arrays without per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mmh3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakeop.core.lake import iceberg
from lakeop.core.lake.partitioning import (
    bucket_of,
    hash_bytes,
    hash_int64,
    list_lookup,
    partition_columns,
    range_labels,
)
from lakeop.core.spec.layout import PartitionSpec
from lakeop.errors import InvalidSpecError

_DATE_FNS = {"year": pc.year, "month": pc.month, "day": pc.day, "hour": pc.hour}
_UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# widest span of distinct days/hours in one batch still counted with a dense table
_DENSE_SPAN = 1 << 20


def _date_keys(col: pa.Array, names: list[str]) -> list[pa.Array] | None:
    """year/month/day(/hour) of a null-free timestamp or date32 column, computed for each
    distinct day (hour) once and spread back by an integer code: a batch spans few days."""
    if col.null_count or not len(col):
        return None
    if pa.types.is_timestamp(col.type):
        step = 86_400 * _UNIT_PER_SECOND[col.type.unit]
        if "hour" in names:
            step //= 24
        raw = col.view(pa.int64())
    elif pa.types.is_date32(col.type) and "hour" not in names:
        step = 1
        raw = col.view(pa.int32())
    else:
        return None
    values = np.asarray(raw.to_numpy(zero_copy_only=False), dtype=np.int64)
    buckets = values // step if step != 1 else values
    lo, hi = int(buckets.min()), int(buckets.max())
    if hi - lo < _DENSE_SPAN:
        present = np.bincount(buckets - lo) > 0
        distinct = np.flatnonzero(present) + lo
        inverse = (np.cumsum(present) - 1)[buckets - lo]
    else:
        distinct, inverse = np.unique(buckets, return_inverse=True)
    if step == 1:
        starts = pa.array(distinct.astype(np.int32), pa.int32()).view(pa.date32())
    else:
        starts = pa.array(distinct * step, pa.int64()).view(col.type)
    out = []
    for n in names:
        per_value = np.asarray(_DATE_FNS[n](starts).to_numpy(zero_copy_only=False), dtype=np.int32)
        out.append(pa.array(per_value[inverse], pa.int32()))
    return out


@dataclass(frozen=True)
class Partitioner:
    spec: PartitionSpec
    keys: pa.Schema  # the Hive key columns (outermost first)
    boundaries: pa.Array | None = None
    labels: pa.Array | None = None
    members: pa.Array | None = None
    groups: pa.Array | None = None
    #: hash buckets by Iceberg's murmur3 (an Iceberg table) instead of lakeop's stable hash
    iceberg: bool = False

    @property
    def names(self) -> list[str]:
        return list(self.keys.names)

    def add_keys(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.names:
            return batch
        col = batch.column(self.spec.column or "")
        arrays = [*batch.columns, *self.key_arrays(col)]
        return pa.RecordBatch.from_arrays(arrays, names=[*batch.schema.names, *self.names])

    def key_arrays(self, col: pa.Array) -> list[pa.Array]:
        s = self.spec.strategy
        if s == "date":
            if pa.types.is_timestamp(col.type) and col.type.tz is not None:
                col = col.cast(pa.timestamp(col.type.unit))  # UTC wall clock, no tz lookups
            fast = _date_keys(col, self.names)
            if fast is not None:
                return fast
            return [_DATE_FNS[n](col).cast(pa.int32()) for n in self.names]
        if s == "hash":
            if self.iceberg:
                return [iceberg_buckets(col, self.spec.buckets or 1)]
            return [_hash_buckets(col, self.spec.buckets or 1)]
        if s == "range":
            assert self.boundaries is not None and self.labels is not None
            return [_range_labels(col, self.boundaries, self.labels)]
        assert self.members is not None and self.groups is not None
        idx = pc.index_in(col, value_set=self.members)
        group = pc.take(self.groups, idx)
        default = pa.scalar(self.spec.default, pa.string())
        return [
            pc.if_else(pc.is_null(col), pa.scalar(None, pa.string()), pc.coalesce(group, default))
        ]


def make_partitioner(
    spec: PartitionSpec, column_type: pa.DataType | None, *, iceberg: bool = False
) -> Partitioner:
    """Precompute the strategy's lookups for a column of ``column_type``.

    Which field types a strategy accepts is decided before, by
    :func:`lakeop.core.lake.partitioning.column_problem` (the engine run and ``lakeop validate``).
    """
    names = partition_columns(spec)
    if spec.strategy == "none":
        return Partitioner(spec, pa.schema([]))
    where = f"partitioning.column {spec.column!r}"
    if column_type is None:
        raise InvalidSpecError(f"{where}: not a field of the table's schema")
    if spec.strategy == "date":
        return Partitioner(spec, pa.schema([pa.field(n, pa.int32()) for n in names]))
    if spec.strategy == "hash":
        if iceberg and pa.types.is_boolean(column_type):
            raise InvalidSpecError(f"{where}: Iceberg does not bucket a boolean column")
        return Partitioner(spec, pa.schema([pa.field(names[0], pa.int32())]), iceberg=iceberg)
    if spec.strategy == "range":
        bounds = _cast_values(list(spec.boundaries), column_type, where + " boundaries")
        labels = pa.array(range_labels(spec.boundaries), pa.string())
        return Partitioner(spec, pa.schema([pa.field(names[0], pa.string())]), bounds, labels)
    members, groups = list_lookup(spec)
    member_arr = _cast_values(members, column_type, where + " values")
    return Partitioner(
        spec,
        pa.schema([pa.field(names[0], pa.string())]),
        members=member_arr,
        groups=pa.array(groups, pa.string()),
    )


def _cast_values(values: list[Any], t: pa.DataType, where: str) -> pa.Array:
    try:
        arr = pa.array(values)
        if pa.types.is_timestamp(t) and pa.types.is_string(arr.type):
            arr = arr.cast(pa.timestamp("us")).cast(t)
        return arr.cast(t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise InvalidSpecError(f"{where}: {values!r} do not fit the column type {t}: {e}") from e


def _range_labels(col: pa.Array, bounds: pa.Array, labels: pa.Array) -> pa.Array:
    # index = number of boundaries <= value (searchsorted 'right'), vectorised per boundary.
    idx = pa.array(np.zeros(len(col), dtype=np.int32))
    for b in bounds:
        ge = pc.fill_null(pc.greater_equal(col, b), False).cast(pa.int32())
        idx = pc.add(idx, ge)
    out = pc.take(labels, idx)
    return pc.if_else(pc.is_null(col), pa.scalar(None, pa.string()), out)


def _hash_buckets(col: pa.Array, buckets: int) -> pa.Array:
    t = col.type
    if (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    ):
        enc = pc.dictionary_encode(col)
        dictionary = enc.dictionary.cast(pa.large_binary())
        offsets = np.frombuffer(dictionary.buffers()[1], dtype=np.int64)[
            dictionary.offset : dictionary.offset + len(dictionary) + 1
        ]
        data_buf = dictionary.buffers()[2]
        data = (
            np.frombuffer(data_buf, dtype=np.uint8)
            if data_buf is not None
            else np.zeros(0, np.uint8)
        )
        per_value = pa.array(bucket_of(hash_bytes(offsets, data), buckets))
        out = pc.take(per_value, enc.indices)
    else:
        ints = _as_int64(col)
        out = pa.array(bucket_of(hash_int64(ints), buckets))
    if not col.null_count:
        return out
    return pc.if_else(pc.is_valid(col), out, pa.scalar(None, pa.int32()))


def iceberg_buckets(col: pa.Array, buckets: int) -> pa.Array:
    """Iceberg's ``bucket[N]`` of each value (:mod:`lakeop.core.lake.iceberg`): int, long and date
    as a long, timestamps as microseconds, strings as UTF-8, binary as is."""
    t = col.type
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or (pa.types.is_large_binary(t))
    ):
        enc = pc.dictionary_encode(col)
        per_value = pa.array(
            [
                None if v is None else iceberg.bucket(mmh3.hash(v), buckets)
                for v in enc.dictionary.cast(pa.large_binary()).to_pylist()
            ],
            pa.int32(),
        )
        return pc.take(per_value, enc.indices)
    ints = _as_int64(col)
    out = pa.array(iceberg.buckets_of(iceberg.murmur3_int64(ints), buckets))
    if not col.null_count:
        return out
    return pc.if_else(pc.is_valid(col), out, pa.scalar(None, pa.int32()))


def _as_int64(col: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    t = col.type
    if pa.types.is_timestamp(t):
        col = col.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
    elif pa.types.is_date(t):
        col = col.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    elif pa.types.is_boolean(t) or pa.types.is_integer(t):
        col = col.cast(pa.int64())
    elif pa.types.is_decimal(t):
        raise InvalidSpecError("hash partitioning on a decimal column is not supported")
    elif pa.types.is_floating(t):
        raise InvalidSpecError("hash partitioning on a float column is not supported")
    else:
        raise InvalidSpecError(f"hash partitioning on a {t} column is not supported")
    return np.asarray(col.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
