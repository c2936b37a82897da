"""The one adapter between lakeop's schema types and Arrow types (``x_to_y`` naming).

Everything else that needs an Arrow type asks this module, so the mapping lives in one
place: timestamps are UTC microseconds, decimals keep precision and scale, maps have string
keys, structs keep field order.
"""

from __future__ import annotations

import pyarrow as pa

from lakeop.core.types import (
    ArrayType,
    DecimalType,
    Field,
    FieldType,
    MapType,
    PrimitiveType,
    Schema,
    StructType,
)
from lakeop.errors import InvalidSchemaError

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
        return MapType(arrow_to_type(t.item_type, f"{path}.<value>"))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return ArrayType(arrow_to_type(t.value_type, f"{path}.<item>"))
    if pa.types.is_struct(t):
        return StructType(tuple(arrow_to_field(t.field(i), path) for i in range(t.num_fields)))
    raise InvalidSchemaError(f"{path or 'schema'}: Arrow type {t} has no lakeop equivalent")


def arrow_to_field(f: pa.Field, path: str = "") -> Field:
    p = f"{path}.{f.name}" if path else f.name
    return Field(name=f.name, type=arrow_to_type(f.type, p), nullable=f.nullable)


def from_arrow_schema(schema: pa.Schema) -> Schema:
    return Schema(tuple(arrow_to_field(schema.field(i)) for i in range(len(schema))))
