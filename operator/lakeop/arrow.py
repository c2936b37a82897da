"""The one adapter between lakeop's schema types and Arrow types (``x_to_y`` naming).

Everything else that needs an Arrow type asks this module, so the mapping lives in one
place: timestamps are UTC microseconds, decimals keep precision and scale, maps have string
keys, structs keep field order. It also applies the pure projection rules of
:mod:`lakeop.core.schema.projection` to Arrow data (:func:`project_table`), so files written
under an
earlier schema version read as the current one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pyarrow as pa

from lakeop.core.schema.projection import Action, projection
from lakeop.core.schema.types import (
    ArrayType,
    DecimalType,
    Field,
    FieldType,
    MapType,
    PrimitiveType,
    Schema,
    StructType,
)
from lakeop.errors import InvalidRecordsError, InvalidSchemaError

_PRIMITIVE_TO_ARROW: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def type_to_arrow(t: FieldType) -> pa.DataType:
    if isinstance(t, PrimitiveType):
        return _PRIMITIVE_TO_ARROW[t.name]
    if isinstance(t, DecimalType):
        return pa.decimal128(t.precision, t.scale)
    if isinstance(t, MapType):
        return pa.map_(pa.string(), pa.field("value", type_to_arrow(t.values), t.values_nullable))
    if isinstance(t, ArrayType):
        return pa.list_(pa.field("item", type_to_arrow(t.items), t.items_nullable))
    return pa.struct([field_to_arrow(f) for f in t.fields])


def field_to_arrow(f: Field) -> pa.Field:
    return pa.field(f.name, type_to_arrow(f.type), nullable=f.nullable)


def to_arrow_schema(schema: Schema) -> pa.Schema:
    return pa.schema([field_to_arrow(f) for f in schema.fields])


def arrow_to_type(t: pa.DataType, path: str = "") -> FieldType:
    """Map an Arrow type back to lakeop's field language (used when inferring from sources)."""
    if pa.types.is_boolean(t):
        return PrimitiveType("boolean")
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_int32(t):
        return PrimitiveType("int")
    if pa.types.is_integer(t):
        return PrimitiveType("long")
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return PrimitiveType("float")
    if pa.types.is_float64(t):
        return PrimitiveType("double")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return PrimitiveType("string")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return PrimitiveType("binary")
    if pa.types.is_date(t):
        return PrimitiveType("date")
    if pa.types.is_timestamp(t):
        return PrimitiveType("timestamp")
    if pa.types.is_decimal(t):
        return DecimalType(t.precision, t.scale)
    if pa.types.is_map(t):
        return MapType(arrow_to_type(t.item_type, f"{path}.<value>"), t.item_field.nullable)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return ArrayType(arrow_to_type(t.value_type, f"{path}.<item>"), t.value_field.nullable)
    if pa.types.is_dictionary(t):
        return arrow_to_type(t.value_type, path)
    if pa.types.is_struct(t):
        return StructType(tuple(arrow_to_field(t.field(i), path) for i in range(t.num_fields)))
    raise InvalidSchemaError(f"{path or 'schema'}: Arrow type {t} has no lakeop equivalent")


def arrow_to_field(f: pa.Field, path: str = "") -> Field:
    p = f"{path}.{f.name}" if path else f.name
    return Field(name=f.name, type=arrow_to_type(f.type, p), nullable=f.nullable)


def from_arrow_schema(schema: pa.Schema) -> Schema:
    return Schema(tuple(arrow_to_field(schema.field(i)) for i in range(len(schema))))


# ------------------------------------------------------------------ old data, current schema


def project_table(table: pa.Table, target: Schema) -> pa.Table:
    """Present ``table`` (read from a file written under an earlier version) as ``target``.

    Applies :func:`lakeop.core.schema.projection.projection`: promotions are cast, columns the file
    lacks are filled with their default (null for nullable fields), columns only the file has
    are dropped, struct fields are resolved by name at any depth. Nullability is judged on the
    data, not on the file's metadata: a null in a non-null target column raises
    InvalidRecordsError. An incompatible file raises IncompatibleSchemaError.
    """
    written = _nullable_as(from_arrow_schema(table.schema), target)
    columns: list[pa.ChunkedArray] = []
    for col in projection(target, written):
        if col.action is Action.FILL:
            filled = _filled(col.target_type, col.default, table.num_rows)
            columns.append(pa.chunked_array([filled], type=filled.type))
            continue
        source = table.column(col.name)
        assert col.source_type is not None  # COPY and CAST always have a source
        chunks = [_convert(c, col.source_type, col.target_type) for c in source.chunks]
        columns.append(pa.chunked_array(chunks, type=type_to_arrow(col.target_type)))
        if not col.nullable and source.null_count:
            raise InvalidRecordsError(
                f"{col.name}: {source.null_count} null value(s) in a non-null column"
            )
    return pa.Table.from_arrays(columns, schema=to_arrow_schema(target))


def _nullable_as(written: Schema, target: Schema) -> Schema:
    """Top-level nullability from the target: Parquet readers often mark every column nullable."""
    by_name = target.by_name()
    return Schema(
        tuple(
            replace(f, nullable=by_name[f.name].nullable) if f.name in by_name else f
            for f in written.fields
        )
    )


def _convert(arr: pa.Array, src: FieldType, dst: FieldType) -> pa.Array:
    target = type_to_arrow(dst)
    if isinstance(src, StructType) and isinstance(dst, StructType):
        children = {f.name: (f, i) for i, f in enumerate(src.fields)}
        flat = arr.flatten()  # children with the parent's validity and offset applied
        out: list[pa.Array] = []
        for f in dst.fields:
            if f.name in children:
                sf, i = children[f.name]
                out.append(_convert(flat[i], sf.type, f.type))
            else:
                out.append(_filled(f.type, f.effective_default[1], len(arr)))
        return pa.StructArray.from_arrays(
            out, fields=[field_to_arrow(f) for f in dst.fields], mask=arr.is_null()
        )
    if isinstance(src, ArrayType) and isinstance(dst, ArrayType) and src.items != dst.items:
        values = _convert(arr.values, src.items, dst.items)
        lists = pa.ListArray.from_arrays(arr.offsets, values, mask=arr.is_null())
        return lists.cast(target)
    if isinstance(src, MapType) and isinstance(dst, MapType) and src.values != dst.values:
        entries = arr.values
        items = _convert(entries.field(1), src.values, dst.values)
        maps = pa.MapArray.from_arrays(arr.offsets, entries.field(0), items, mask=arr.is_null())
        return maps.cast(target)
    return arr if arr.type == target else arr.cast(target)


def _filled(t: FieldType, default: Any, n: int) -> pa.Array:
    target = type_to_arrow(t)
    if default is None:
        return pa.nulls(n, type=target)
    return pa.repeat(pa.scalar(default_to_python(t, default), type=target), n)


def default_to_python(t: FieldType, value: Any) -> Any:
    """A manifest default (JSON-style, see lakeop.core.schema.defaults) as the value Arrow takes."""
    if value is None:
        return None
    if isinstance(t, PrimitiveType):
        if t.name == "date":
            return dt.date.fromisoformat(value)
        if t.name == "timestamp":
            stamp = dt.datetime.fromisoformat(value)
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
        if t.name == "binary":
            return value.encode("utf-8")
        return value
    if isinstance(t, DecimalType):
        return Decimal(str(value))
    if isinstance(t, MapType):
        return [(k, default_to_python(t.values, v)) for k, v in value.items()]
    if isinstance(t, ArrayType):
        return [default_to_python(t.items, v) for v in value]
    return {f.name: default_to_python(f.type, value.get(f.name)) for f in t.fields}
