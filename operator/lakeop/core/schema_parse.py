"""Parse the ``fields`` list of a SchemaVersion into a :class:`~lakeop.core.types.Schema`.

Errors name the field path and the offending value (``device.os: unknown type "strng"``),
so the same message can land in a SchemaVersion's status, a webhook refusal and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lakeop.core.types import (
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
    """Parse a list of field mappings; raise InvalidSchemaError naming the path on error."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidSchemaError(f"{path or 'fields'}: must be a list of fields, got {raw!r}")
    if not raw:
        raise InvalidSchemaError(f"{path or 'fields'}: a schema needs at least one field")
    fields: list[Field] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        f = _parse_field(item, path, i)
        if f.name in seen:
            raise InvalidSchemaError(f"{_join(path, f.name)}: duplicate field name")
        seen.add(f.name)
        fields.append(f)
    return Schema(tuple(fields))


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
    known = {"name", "type", "nullable", "default", "doc", "precision", "scale", "values",
             "items", "fields", "valuesNullable", "itemsNullable"}
    unknown = sorted(set(item) - known)
    if unknown:
        raise InvalidSchemaError(f"{fpath}: unknown key(s) {', '.join(unknown)}")
    ftype = parse_type(item, fpath)
    nullable = item.get("nullable", True)
    if not isinstance(nullable, bool):
        raise InvalidSchemaError(f"{fpath}: nullable must be true or false, got {nullable!r}")
    default = item["default"] if "default" in item else NO_DEFAULT
    if default is None and "default" in item and not nullable:
        raise InvalidSchemaError(f"{fpath}: default null on a non-nullable field")
    doc = item.get("doc")
    if doc is not None and not isinstance(doc, str):
        raise InvalidSchemaError(f"{fpath}: doc must be a string, got {doc!r}")
    return Field(name=name, type=ftype, nullable=nullable, default=default, doc=doc)


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
        if not isinstance(precision, int) or isinstance(precision, bool) or not 1 <= precision <= 38:
            raise InvalidSchemaError(f"{path}: decimal needs precision 1..38, got {precision!r}")
        if not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= precision:
            raise InvalidSchemaError(f"{path}: decimal scale must be 0..{precision}, got {scale!r}")
        return DecimalType(precision, scale)
    if tname == "map":
        if "values" not in spec:
            raise InvalidSchemaError(f"{path}: map needs values")
        vn = spec.get("valuesNullable", True)
        return MapType(parse_type(spec["values"], f"{path}.<value>"), bool(vn))
    if tname == "array":
        if "items" not in spec:
            raise InvalidSchemaError(f"{path}: array needs items")
        inn = spec.get("itemsNullable", True)
        return ArrayType(parse_type(spec["items"], f"{path}.<item>"), bool(inn))
    inner = spec.get("fields")
    if inner is None:
        raise InvalidSchemaError(f"{path}: struct needs fields")
    return StructType(parse_fields(inner, path).fields)


def type_to_spec(t: FieldType) -> Any:
    """The inverse of :func:`parse_type`: a JSON-able spec (a bare name for primitives)."""
    if isinstance(t, PrimitiveType):
        return t.name
    if isinstance(t, DecimalType):
        return {"type": "decimal", "precision": t.precision, "scale": t.scale}
    if isinstance(t, MapType):
        return {"type": "map", "values": type_to_spec(t.values)}
    if isinstance(t, ArrayType):
        return {"type": "array", "items": type_to_spec(t.items)}
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
