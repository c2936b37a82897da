"""Check a field's ``default`` against its type, and normalise it to a JSON-able value.

A default is what readers fill in for data written before the field existed, so a default
of the wrong type would only fail much later, while reading old files. Values follow Avro's
JSON encoding: binary defaults are strings, dates and timestamps ISO-8601 strings (YAML's
native dates are accepted and rendered as ISO strings), decimals a number or a numeric string.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from lakeop.core.schema.types import (
    ArrayType,
    DecimalType,
    FieldType,
    MapType,
    PrimitiveType,
    StructType,
)
from lakeop.errors import InvalidSchemaError

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


def check_default(t: FieldType, nullable: bool, value: Any, path: str) -> Any:
    """Return ``value`` normalised, or raise InvalidSchemaError naming path, value and type."""
    if value is None:
        if not nullable:
            raise InvalidSchemaError(f"{path}: default null on a non-nullable field")
        return None
    normalised = _check(t, value, path)
    if normalised is _BAD:
        raise InvalidSchemaError(f"{path}: default {value!r} is not a valid {t.render()}")
    return normalised


_BAD: Any = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(t: FieldType, v: Any, path: str) -> Any:
    if isinstance(t, PrimitiveType):
        return _primitive(t.name, v)
    if isinstance(t, DecimalType):
        return _decimal(t, v)
    if isinstance(t, MapType):
        if not isinstance(v, Mapping) or not all(isinstance(k, str) for k in v):
            return _BAD
        return {
            k: check_default(t.values, t.values_nullable, x, f"{path}.{k}") for k, x in v.items()
        }
    if isinstance(t, ArrayType):
        if not isinstance(v, list):
            return _BAD
        return [check_default(t.items, t.items_nullable, x, f"{path}.<item>") for x in v]
    return _struct(t, v, path)


def _struct(t: StructType, v: Any, path: str) -> Any:
    if not isinstance(v, Mapping):
        return _BAD
    names = {f.name for f in t.fields}
    extra = sorted(str(k) for k in v if k not in names)
    if extra:
        raise InvalidSchemaError(f"{path}: default has unknown struct key(s) {', '.join(extra)}")
    out: dict[str, Any] = {}
    for f in t.fields:
        fpath = f"{path}.{f.name}"
        if f.name in v:
            out[f.name] = check_default(f.type, f.nullable, v[f.name], fpath)
            continue
        has, fallback = f.effective_default
        if not has:
            raise InvalidSchemaError(f"{fpath}: default struct value lacks this field")
        out[f.name] = fallback
    return out


def _primitive(name: str, v: Any) -> Any:
    if name == "boolean":
        return v if isinstance(v, bool) else _BAD
    if name in ("int", "long"):
        lo, hi = INT_RANGE if name == "int" else LONG_RANGE
        return v if _is_int(v) and lo <= v <= hi else _BAD
    if name in ("float", "double"):
        return v if (_is_int(v) or isinstance(v, float)) else _BAD
    if name in ("string", "binary"):
        return v if isinstance(v, str) else _BAD
    if name == "date":
        return _date(v)
    return _timestamp(v)


def _date(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return _BAD
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v).isoformat()
        except ValueError:
            return _BAD
    return _BAD


def _timestamp(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, str):
        try:
            dt.datetime.fromisoformat(v)
        except ValueError:
            return _BAD
        return v
    return _BAD


def _decimal(t: DecimalType, v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return _BAD
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return _BAD
    if not d.is_finite():
        return _BAD
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    frac_digits = max(0, -exponent)
    int_digits = len(str(abs(d).to_integral_value(rounding="ROUND_DOWN")).lstrip("0"))
    if frac_digits > t.scale or int_digits > t.precision - t.scale:
        return _BAD
    return v
