"""Schema enforcement: make a source batch fit the table's accepted schema, or say why not.

Columns are cast to the declared Arrow types (via :mod:`lakeop.arrow`): timestamps become
UTC (naive values are taken as UTC, offsets are honoured), decimals must convert exactly,
maps/arrays/structs are parsed from JSON text. Absent nullable columns become their default
or null; extra source columns are ignored (the run reports them). A value that does not
convert, or a null in a non-nullable field, marks its row invalid with a reason naming the
field and value. Casts are vectorised; only a column whose vectorised cast fails is walked
value by value to find the culprits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakeop.core.schema.types import Field, Schema

_TS_NAIVE = pa.timestamp("us")


@dataclass
class Invalid:
    row: int  # index within the batch
    field: str
    value: Any
    reason: str


@dataclass
class Conformed:
    batch: pa.RecordBatch  # valid rows only, in the target schema
    invalid: list[Invalid] = field(default_factory=list)  # first problem per invalid row


def conform(batch: pa.RecordBatch, schema: Schema, target: pa.Schema) -> Conformed:
    n = batch.num_rows
    names = set(batch.schema.names)
    columns: list[pa.Array] = []
    problems: dict[int, Invalid] = {}
    for f, tf in zip(schema.fields, target, strict=True):
        if f.name in names:
            col, bad = cast_column(batch.column(f.name), tf.type, f.name)
        else:
            col, bad = _absent(f, tf.type, n)
        for inv in bad:
            problems.setdefault(inv.row, inv)
        for i, path in nested_null_rows(col, f.name).items():
            problems.setdefault(i, Invalid(i, f.name, None, f"null in non-nullable field {path!r}"))
        if not f.nullable and col.null_count:
            for i in _null_rows(col):
                problems.setdefault(
                    i, Invalid(i, f.name, None, f"null in non-nullable field {f.name!r}")
                )
        columns.append(col)
    out = pa.RecordBatch.from_arrays(columns, schema=_nullable(target))
    if problems:
        keep = [True] * n
        for i in problems:
            keep[i] = False
        out = out.filter(pa.array(keep))
    return Conformed(
        out.cast(target) if out.num_rows else out, sorted(problems.values(), key=lambda p: p.row)
    )


def _nullable(target: pa.Schema) -> pa.Schema:
    """Build with nullable fields first (invalid rows may hold nulls until filtered)."""
    return pa.schema([pa.field(f.name, f.type, True) for f in target])


def nested_null_rows(col: pa.Array, name: str) -> dict[int, str]:
    """Rows holding a null where the type forbids one below the top level (a struct field,
    an array item or a map value that is not nullable), each with the first such path. Arrow
    builds such arrays without complaint and refuses them later, at the final cast or when
    writing, so conform finds them first and makes their rows invalid."""
    n = len(col)
    found: dict[int, str] = {}
    if not _is_nested(col.type) or not n:
        return found
    _walk_nulls(col, np.arange(n), np.asarray(col.is_valid()), name, found)
    return found


def _walk_nulls(
    arr: pa.Array,
    rows: np.ndarray[Any, Any],
    valid: np.ndarray[Any, Any],
    path: str,
    found: dict[int, str],
) -> None:
    """``rows``: the top-level row of each element of ``arr``; ``valid``: elements present
    (their parents are present and they are not null)."""
    t = arr.type
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            child, field_ = arr.field(i), t.field(i)
            here = valid & np.asarray(child.is_valid())
            if not field_.nullable:
                _note(found, rows[valid & ~here], f"{path}.{field_.name}")
            _walk_nulls(child, rows, here, f"{path}.{field_.name}", found)
        return
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        offsets = np.asarray(arr.offsets)
        lo, hi = int(offsets[0]), int(offsets[-1])
        counts = np.diff(offsets)
        parents = np.repeat(np.arange(len(arr)), counts)
        values = arr.values.slice(lo, hi - lo)
        inner_rows, inner_parent_valid = rows[parents], valid[parents]
        if pa.types.is_map(t):
            items, item_field, label = values.field(1), t.item_field, f"{path}.<value>"
        else:
            items, item_field, label = values, t.value_field, f"{path}.<item>"
        here = inner_parent_valid & np.asarray(items.is_valid())
        if not item_field.nullable:
            _note(found, inner_rows[inner_parent_valid & ~here], label)
        _walk_nulls(items, inner_rows, here, label, found)


def _note(found: dict[int, str], rows: np.ndarray[Any, Any], path: str) -> None:
    for r in rows.tolist():
        found.setdefault(int(r), path)


def _null_rows(col: pa.Array) -> list[int]:
    mask = pc.is_null(col).to_numpy(zero_copy_only=False)
    return [int(i) for i in mask.nonzero()[0]]


def _absent(f: Field, t: pa.DataType, n: int) -> tuple[pa.Array, list[Invalid]]:
    has_default, value = f.effective_default
    if not has_default:
        reason = f"required field {f.name!r} is missing from the source"
        return pa.nulls(n, t), [Invalid(i, f.name, None, reason) for i in range(n)]
    if value is None:
        return pa.nulls(n, t), []
    try:
        scalar = pa.scalar(value).cast(t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        scalar = pa.scalar(str(value)).cast(t)
    return pa.array([scalar.as_py()] * n, t), []


def cast_column(col: pa.Array, t: pa.DataType, name: str) -> tuple[pa.Array, list[Invalid]]:
    """Cast one column; returns (array with nulls where invalid, invalid rows)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.type == t:
        return col, []
    try:
        return _vector_cast(col, t), []
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
        pass
    return _cast_each(col, t, name)


def _vector_cast(col: pa.Array, t: pa.DataType) -> pa.Array:
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        col = col.cast(pa.string())  # raises on bytes that are not UTF-8
        if t == pa.string():
            return col
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), t)
    if pa.types.is_timestamp(t):
        return _to_utc(col, t)
    if _is_nested(t) and pa.types.is_string(col.type):
        return pa.array([None if v is None else json.loads(v) for v in col.to_pylist()], t)
    if pa.types.is_string(t) and _is_nested(col.type):
        return pa.array([None if v is None else json.dumps(v) for v in col.to_pylist()], t)
    return col.cast(t, safe=True)


def _is_nested(t: pa.DataType) -> bool:
    return bool(pa.types.is_map(t) or pa.types.is_list(t) or pa.types.is_struct(t))


def _to_utc(col: pa.Array, t: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            return col.cast(_TS_NAIVE).cast(t)  # naive wall clock taken as UTC
        return col.cast(t)
    if pa.types.is_date(col.type):
        return col.cast(_TS_NAIVE).cast(t)
    if pa.types.is_string(col.type):
        try:
            return col.cast(_TS_NAIVE).cast(t)
        except pa.ArrowInvalid:
            return col.cast(t)  # every value carries an offset
    return col.cast(t)


_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError)


def _cast_each(col: pa.Array, t: pa.DataType, name: str) -> tuple[pa.Array, list[Invalid]]:
    """Cast a column whose vectorised cast failed: halves are cast vectorised in turn and
    only a half that fails is split again, so the bad values are found with about two casts
    per value of the column, whatever its length, plus a few per bad value."""
    parts: list[tuple[int, pa.Array]] = []
    bad: list[Invalid] = []
    pending = [(0, len(col))]
    while pending:
        lo, n = pending.pop()
        part = col.slice(lo, n)
        try:
            parts.append((lo, _vector_cast(part, t)))
            continue
        except _CAST_ERRORS as e:
            if n > 1:
                half = n // 2
                pending += [(lo + half, n - half), (lo, half)]  # the lower half first
                continue
            raw = part[0].as_py()
            shown = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
            bad.append(Invalid(lo, name, shown, f"cannot convert {shown!r} to {t}: {_short(e)}"))
            parts.append((lo, pa.nulls(1, t)))
    ordered = [a for _, a in sorted(parts, key=lambda p: p[0])]
    return pa.concat_arrays([a.cast(t) for a in ordered]), bad


def _short(e: Exception) -> str:
    text = str(e).split("\n", 1)[0]
    return text[:160]
