"""Parse the ``fields`` list of a SchemaVersion into a :class:`~lakeop.core.schema.types.Schema`.

Two passes: the JSON meta-schema (:mod:`lakeop.core.schema.metaschema`) checks the shape, then this
module checks what JSON Schema cannot say (unique names, ``scale <= precision``, defaults that
fit their type) and builds the immutable values. Errors name the field path and the offending
value (``device.os: unknown type "strng"``), so the same message can land in a SchemaVersion's
status, a webhook refusal and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lakeop.core.schema.defaults import check_default
from lakeop.core.schema.metaschema import validate_fields
from lakeop.core.schema.types import (
    NO_DEFAULT,
    PRIMITIVES,
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

TYPE_NAMES = (*PRIMITIVES, "decimal", "map", "array", "struct")


def parse_fields(raw: Any, path: str = "") -> Schema:
    """Validate and parse a list of field mappings; raise InvalidSchemaError naming the path."""
    validate_fields(raw, path)
    return Schema(_parse_list(raw, path))


def _parse_list(raw: Any, path: str) -> tuple[Field, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidSchemaError(f"{path or 'fields'}: must be a list of fields, got {raw!r}")
    if not raw:
        raise InvalidSchemaError(f"{path or 'fields'}: needs at least one field")
    fields: list[Field] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        f = _parse_field(item, path, i)
        if f.name in seen:
            raise InvalidSchemaError(f"{_join(path, f.name)}: duplicate field name")
        seen.add(f.name)
        fields.append(f)
    return tuple(fields)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _parse_field(item: Any, path: str, index: int) -> Field:
    if not isinstance(item, Mapping):
        where = f"{path or 'fields'}[{index}]"
        raise InvalidSchemaError(f"{where}: a field must be a mapping, got {item!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        where = f"{path or 'fields'}[{index}]"
        raise InvalidSchemaError(f"{where}: field needs a non-empty string name, got {name!r}")
    fpath = _join(path, name)
    ftype = parse_type(item, fpath)
    nullable = item.get("nullable", True)
    if not isinstance(nullable, bool):
        raise InvalidSchemaError(f"{fpath}: nullable must be true or false, got {nullable!r}")
    default = NO_DEFAULT
    if "default" in item:
        default = check_default(ftype, nullable, item["default"], fpath)
    doc = item.get("doc")
    if doc is not None and not isinstance(doc, str):
        raise InvalidSchemaError(f"{fpath}: doc must be a string, got {doc!r}")
    return Field(name=name, type=ftype, nullable=nullable, default=default, doc=doc)


def _flag(spec: Mapping[str, Any], key: str, path: str) -> bool:
    value = spec.get(key, True)
    if not isinstance(value, bool):
        raise InvalidSchemaError(f"{path}: {key} must be true or false, got {value!r}")
    return value


def parse_type(spec: Any, path: str) -> FieldType:
    """Parse a type from a field mapping or a bare type name (``values: string``)."""
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise InvalidSchemaError(f"{path}: a type must be a name or a mapping, got {spec!r}")
    tname = spec.get("type")
    if tname not in TYPE_NAMES:
        raise InvalidSchemaError(f'{path}: unknown type "{tname}"')
    if tname in PRIMITIVES:
        return PrimitiveType(str(tname))
    if tname == "decimal":
        precision, scale = spec.get("precision"), spec.get("scale", 0)
        if (
            not isinstance(precision, int)
            or isinstance(precision, bool)
            or not 1 <= precision <= 38
        ):
            raise InvalidSchemaError(f"{path}: decimal needs precision 1..38, got {precision!r}")
        if not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= precision:
            raise InvalidSchemaError(
                f"{path}: decimal scale must be 0..{precision} (the precision), got {scale!r}"
            )
        return DecimalType(precision, scale)
    if tname == "map":
        if "values" not in spec:
            raise InvalidSchemaError(f"{path}: map needs values")
        vpath = f"{path}.<value>"
        return MapType(parse_type(spec["values"], vpath), _flag(spec, "valuesNullable", path))
    if tname == "array":
        if "items" not in spec:
            raise InvalidSchemaError(f"{path}: array needs items")
        ipath = f"{path}.<item>"
        return ArrayType(parse_type(spec["items"], ipath), _flag(spec, "itemsNullable", path))
    inner = spec.get("fields")
    if inner is None:
        raise InvalidSchemaError(f"{path}: struct needs fields")
    return StructType(_parse_list(inner, path))


def type_to_spec(t: FieldType) -> Any:
    """The inverse of :func:`parse_type`: a JSON-able spec (a bare name for primitives)."""
    if isinstance(t, PrimitiveType):
        return t.name
    if isinstance(t, DecimalType):
        return {"type": "decimal", "precision": t.precision, "scale": t.scale}
    if isinstance(t, MapType):
        m: dict[str, Any] = {"type": "map", "values": type_to_spec(t.values)}
        if not t.values_nullable:
            m["valuesNullable"] = False
        return m
    if isinstance(t, ArrayType):
        a: dict[str, Any] = {"type": "array", "items": type_to_spec(t.items)}
        if not t.items_nullable:
            a["itemsNullable"] = False
        return a
    return {"type": "struct", "fields": fields_to_spec(Schema(t.fields))}


def fields_to_spec(schema: Schema) -> list[dict[str, Any]]:
    """Render a Schema back to the manifest's ``fields`` list (round-trips parse_fields)."""
    out: list[dict[str, Any]] = []
    for f in schema.fields:
        spec = type_to_spec(f.type)
        d: dict[str, Any] = {"name": f.name}
        d.update(spec if isinstance(spec, dict) else {"type": spec})
        if not f.nullable:
            d["nullable"] = False
        if f.has_default:
            d["default"] = f.default
        if f.doc is not None:
            d["doc"] = f.doc
        out.append(d)
    return out
