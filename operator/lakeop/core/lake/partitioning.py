"""Partition layout: directory names, range labels, list groups and the stable hash.

Pure definitions shared by the writer and by anyone who must predict where a row lands (tests,
query pruning, docs). Directory layout, Hive-style:

- date: ``year=2026/month=1/day=7[/hour=13]`` (integers, UTC) for granularity year..hour;
- hash: ``bucket=<0..buckets-1>`` where bucket = ``stable_hash(value) mod buckets``;
- range: ``<column>_range=<label>``, labels ``r<k>_below_<b0>``, ``r<k>_<b(i)>_to_<b(i+1)>``,
  ``r<k>_<bn>_and_above`` with zero-padded ``k`` so that labels sort in range order;
- list: ``<column>_group=<key>`` for the configured groups, else the ``default`` key;
- a null partition value (any strategy) goes to ``__HIVE_DEFAULT_PARTITION__``, the directory
  name Hive, Spark, DuckDB and pyarrow read back as NULL.

The stable hash (documented in docs/partitioning.md) must give the same bucket on every
process, machine and run, so Python's ``hash()`` (salted per process) is out. It is defined on
a canonical 64-bit integer or byte string of the value:

- integers, dates (days since epoch), timestamps (microseconds since epoch, UTC) and booleans
  hash their int64 value ``x``: ``h = mix64(x mod 2**64)``;
- strings (UTF-8) and binary hash their bytes ``b[0..n)``:
  ``h = mix64(poly ^ n)`` with ``poly = sum((b[i] + 1) * P**(n-1-i)) mod 2**64``,
  ``P = 1099511628211`` (the 64-bit FNV prime);
- ``mix64`` is the SplitMix64 finaliser (Steele, Lea, Flood 2014).

Both are computed vectorised with numpy (wrapping uint64 arithmetic).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lakeop.core.schema.types import Schema
from lakeop.core.spec.layout import PartitionSpec

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
DATE_LEVELS = ("year", "month", "day", "hour")
HASH_PRIME = np.uint64(1099511628211)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_HASH_CHUNK = 1 << 16

U64 = npt.NDArray[np.uint64]


def partition_columns(spec: PartitionSpec) -> list[str]:
    """The Hive directory keys, outermost first ([] for an unpartitioned table)."""
    if spec.strategy == "date":
        return list(DATE_LEVELS[: DATE_LEVELS.index(spec.granularity) + 1])
    if spec.strategy == "hash":
        return ["bucket"]
    if spec.strategy == "range":
        return [f"{spec.column}_range"]
    if spec.strategy == "list":
        return [f"{spec.column}_group"]
    return []


#: The field types (lakeop type names) each strategy derives partition keys from: the one
#: rule for ``lakeop validate`` (before a sync) and the engine (before a run writes anything).
PARTITION_TYPES: dict[str, tuple[str, ...]] = {
    "date": ("date", "timestamp"),
    "hash": ("boolean", "int", "long", "string", "binary", "date", "timestamp"),
    "range": ("int", "long", "float", "double", "decimal", "string", "date", "timestamp"),
    "list": ("int", "long", "float", "double", "decimal", "string", "date", "timestamp"),
}


def column_problem(spec: PartitionSpec, type_name: str | None) -> str | None:
    """Why a field of type ``type_name`` cannot be ``spec``'s partition column, else None.

    ``type_name`` None: the schema has no such field.
    """
    allowed = PARTITION_TYPES.get(spec.strategy)
    if allowed is None or spec.column is None:
        return None
    if type_name is None:
        return "not a field of the table's schema"
    if type_name not in allowed:
        return (
            f"{spec.strategy} partitioning needs a field of type {', '.join(allowed)}; "
            f"{spec.column!r} is {type_name}"
        )
    return None


_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_ISO_EXAMPLES = {"date": "2026-01-31", "timestamp": "2026-01-31T00:00:00"}


def value_problem(type_name: str, value: Any, *, spelled: bool = False) -> str | None:
    """Why ``value`` (a range boundary or list member from the manifest) cannot be compared
    with a field of type ``type_name``, else None. Numbers go with numeric fields (with
    ``spelled``, also strings spelling them: the CRD keeps list values as strings; range
    boundaries must be numbers, as their order is checked as given); only strings with
    string fields; ISO strings with date and timestamp fields. A number on a string field
    would be compared as text ("100" < "20") and put rows in the wrong partition."""
    number = _as_number(value) if spelled or not isinstance(value, str) else None
    if type_name in _INT_RANGES:
        low, high = _INT_RANGES[type_name]
        if not isinstance(number, int):
            return "needs integers"
        return None if low <= number <= high else f"needs integers in {low}..{high}"
    if type_name in ("float", "double", "decimal"):
        return None if number is not None else "needs numbers"
    if type_name == "string":
        return None if isinstance(value, str) else "needs strings"
    if type_name in _ISO_EXAMPLES:
        try:
            if type_name == "date" and isinstance(value, str) and dt.date.fromisoformat(value):
                return None
            if type_name == "timestamp" and isinstance(value, str):
                if dt.datetime.fromisoformat(value).tzinfo is None:
                    return None
                return (
                    "needs ISO timestamp strings in UTC, without a zone, such as "
                    + (_ISO_EXAMPLES[type_name])
                )
        except ValueError:
            pass
        return f"needs ISO {type_name} strings such as {_ISO_EXAMPLES[type_name]}"
    return None


def _as_number(value: Any) -> int | float | None:
    """``value`` as a finite number (an int stays an int), also from its string spelling."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        if re.fullmatch(r"[+-]?[0-9]+", value.strip()):
            return int(value)
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def layout_problem(spec: PartitionSpec, schema: Schema) -> tuple[str, str] | None:
    """(field path, problem) when ``schema`` cannot be partitioned as ``spec`` says, else None.

    The one rule plan building (operator and ``lakeop ingest``) and ``lakeop validate`` apply
    before anything is claimed or written: the column exists and suits the strategy, range
    boundaries and list values compare with its type, and no field of the schema has the
    name of a partition directory key (``year`` in a date-partitioned table would be written
    twice, once as a column and once as a directory).
    """
    if spec.strategy == "none":
        return None
    column = schema.get(spec.column or "")
    if column is None:
        return "partitioning.column", f"{spec.column!r} is not a field of the schema"
    problem = column_problem(spec, column.type.name)
    if problem is not None:
        return "partitioning.column", problem
    values: list[tuple[str, Any]] = []
    if spec.strategy == "range":
        values = [("partitioning.boundaries", b) for b in spec.boundaries]
    elif spec.strategy == "list":
        values = [(f"partitioning.values.{g}", v) for g, vs in spec.values.items() for v in vs]
    for path, value in values:
        problem = value_problem(column.type.name, value, spelled=spec.strategy == "list")
        if problem is not None:
            return path, (
                f"{value!r} does not fit {spec.column!r}, a {column.type.render()} field, "
                f"which {problem}"
            )
    # case-insensitive: DuckDB and Hive read column names without case
    names = {n.lower() for n in schema.names()}
    clash = [k for k in partition_columns(spec) if k.lower() in names]
    if clash:
        return (
            "partitioning",
            f"{spec.strategy} partitioning writes the directory key(s) {', '.join(clash)}, "
            f"which the schema also has as field(s): rename the field(s)",
        )
    return None


def partition_path(keys: Sequence[str], values: Sequence[Any]) -> str:
    """``k1=v1/k2=v2`` with nulls as :data:`NULL_PARTITION`."""
    return "/".join(
        f"{k}={NULL_PARTITION if v is None else v}" for k, v in zip(keys, values, strict=True)
    )


def _label_text(value: Any) -> str:
    text = str(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "-", text)


def range_labels(boundaries: Sequence[Any]) -> list[str]:
    """``len(boundaries) + 1`` labels; label ``i`` covers ``[b[i-1], b[i])``, open at the ends."""
    width = len(str(len(boundaries)))
    texts = [_label_text(b) for b in boundaries]
    labels = [f"r{0:0{width}d}_below_{texts[0]}"]
    for i in range(len(texts) - 1):
        labels.append(f"r{i + 1:0{width}d}_{texts[i]}_to_{texts[i + 1]}")
    labels.append(f"r{len(texts):0{width}d}_{texts[-1]}_and_above")
    return labels


def range_index(boundaries: Sequence[Any], value: Any) -> int:
    """Which range a single value falls into (reference for the vectorised writer)."""
    return sum(1 for b in boundaries if value >= b)


def list_lookup(spec: PartitionSpec) -> tuple[list[Any], list[str]]:
    """Parallel lists (member value, group key) for a vectorised index lookup."""
    members: list[Any] = []
    groups: list[str] = []
    for group, values in spec.values.items():
        for v in values:
            members.append(v)
            groups.append(group)
    return members, groups


def mix64(x: U64) -> U64:
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def hash_int64(values: npt.NDArray[np.int64]) -> U64:
    """Stable hash of int64 values."""
    return mix64(values.astype(np.int64, copy=False).view(np.uint64))


def hash_bytes(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> U64:
    """Stable hash of variable-length byte strings given Arrow-style offsets and data."""
    count = len(offsets) - 1
    out = np.zeros(count, dtype=np.uint64)
    for start in range(0, count, _HASH_CHUNK):
        stop = min(start + _HASH_CHUNK, count)
        out[start:stop] = _hash_bytes_chunk(offsets[start : stop + 1], data)
    return out


def _hash_bytes_chunk(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> U64:
    """Horner's rule column by column: step ``j`` folds byte ``j`` of every string longer
    than ``j`` (strings sorted by length, so the active ones are a prefix): O(total bytes)."""
    lengths = np.diff(offsets)
    n = len(lengths)
    order = np.argsort(-lengths, kind="stable")
    by_len = lengths[order]
    starts = offsets[:-1][order]
    ascending = by_len[::-1]
    acc = np.zeros(n, dtype=np.uint64)
    max_len = int(by_len[0]) if n else 0
    with np.errstate(over="ignore"):
        for j in range(max_len):
            k = n - int(np.searchsorted(ascending, j, side="right"))
            byte = data[starts[:k] + j].astype(np.uint64) + np.uint64(1)
            acc[:k] = acc[:k] * HASH_PRIME + byte
    poly = np.empty(n, dtype=np.uint64)
    poly[order] = acc
    return mix64(poly ^ lengths.astype(np.uint64))


def hash_python(value: Any) -> int:
    """Reference hash of one Python value (int/bool or str/bytes), for tests and docs."""
    if isinstance(value, bool | int):
        return int(hash_int64(np.array([value], dtype=np.int64))[0])
    raw = value.encode() if isinstance(value, str) else bytes(value)
    offsets = np.array([0, len(raw)], dtype=np.int64)
    return int(hash_bytes(offsets, np.frombuffer(raw, dtype=np.uint8))[0])


def bucket_of(hashes: U64, buckets: int) -> npt.NDArray[np.int32]:
    return (hashes % np.uint64(buckets)).astype(np.int32)
