"""Parsing the field language: the meta-schema's messages name the field path."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from lakeop.core.schema.metaschema import field_problems, meta_schema
from lakeop.core.schema.parse import fields_to_spec, parse_fields
from lakeop.core.schema.types import (
    NO_DEFAULT,
    ArrayType,
    DecimalType,
    MapType,
    PrimitiveType,
    StructType,
)
from lakeop.errors import InvalidSchemaError

CONTRACT_EXAMPLE = """
- {name: user_id,    type: string, nullable: false}
- {name: event_type, type: string}
- {name: timestamp,  type: timestamp}
- {name: amount,     type: decimal, precision: 12, scale: 2}
- {name: properties, type: map, values: string}
- {name: tags,       type: array, items: string}
- {name: device,     type: struct, fields: [{name: os, type: string}]}
- {name: country,    type: string, nullable: true, default: null, doc: ISO code}
"""


def test_meta_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(meta_schema())


def test_contract_example_parses_and_round_trips() -> None:
    raw = yaml.safe_load(CONTRACT_EXAMPLE)
    schema = parse_fields(raw)
    by = schema.by_name()
    assert by["user_id"].nullable is False
    assert by["event_type"].nullable is True and by["event_type"].default is NO_DEFAULT
    assert by["amount"].type == DecimalType(12, 2)
    assert by["properties"].type == MapType(PrimitiveType("string"))
    assert by["tags"].type == ArrayType(PrimitiveType("string"))
    device = by["device"].type
    assert isinstance(device, StructType) and [f.name for f in device.fields] == ["os"]
    assert by["country"].has_default and by["country"].default is None
    assert by["country"].doc == "ISO code"
    assert parse_fields(fields_to_spec(schema)) == schema


def test_nested_types_round_trip_with_nullability_flags() -> None:
    raw = yaml.safe_load(
        """
        - name: m
          type: map
          valuesNullable: false
          values: {type: array, itemsNullable: false, items: {type: decimal, precision: 5}}
        - {name: s, type: struct, fields: [{name: inner, type: map, values: long}]}
        """
    )
    schema = parse_fields(raw)
    assert schema.fields[0].type == MapType(ArrayType(DecimalType(5, 0), False), False)
    assert parse_fields(fields_to_spec(schema)) == schema


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            "[{name: device, type: struct, fields: [{name: os, type: strng}]}]",
            'device.os: unknown type "strng"',
            id="unknown nested type",
        ),
        pytest.param("[{name: a, type: strng}]", 'a: unknown type "strng"', id="unknown type"),
        pytest.param(
            "[{name: p, type: map, values: strng}]",
            'p.<value>: unknown type "strng"',
            id="unknown map value type",
        ),
        pytest.param(
            "[{name: t, type: array, items: {type: struct, fields: [{name: x, type: foo}]}}]",
            't.<item>.x: unknown type "foo"',
            id="unknown type inside array of struct",
        ),
        pytest.param("[{name: a, type: decimal}]", "a: decimal needs precision", id="no precision"),
        pytest.param(
            "[{name: a, type: decimal, precision: 50}]",
            "a: precision must be <= 38, got 50",
            id="precision too large",
        ),
        pytest.param(
            "[{name: a, type: decimal, precision: 5, scale: 7}]",
            "a: decimal scale must be 0..5 (the precision), got 7",
            id="scale above precision",
        ),
        pytest.param("[{name: a, type: map}]", "a: map needs values", id="map without values"),
        pytest.param("[{name: a, type: array}]", "a: array needs items", id="array without items"),
        pytest.param("[{name: a, type: struct}]", "a: struct needs fields", id="struct no fields"),
        pytest.param(
            "[{name: a, type: struct, fields: []}]",
            "a: needs at least one field",
            id="empty struct",
        ),
        pytest.param(
            "[{name: a, type: string, precision: 5}]",
            'a: unexpected key(s) precision for type "string"',
            id="key of another type",
        ),
        pytest.param(
            "[{name: a, type: int, nullable: 'yes'}]",
            "a: nullable must be true or false, got 'yes'",
            id="nullable not a boolean",
        ),
        pytest.param(
            "[{name: a, type: struct, fields: [{name: b, type: int, 7: x}]}]",
            'a.b: unexpected key(s) 7 for type "int"',
            id="non-string key",
        ),
        pytest.param("[{type: int}]", "fields[0]: missing name", id="no name"),
        pytest.param("[{name: a}]", "a: missing type", id="no type"),
        pytest.param("[5]", "fields[0]: a field must be a mapping, got 5", id="not a mapping"),
        pytest.param("[]", "fields: needs at least one field", id="empty"),
        pytest.param("{a: 1}", "fields: must be a list, got {'a': 1}", id="not a list"),
        pytest.param(
            "[{name: 1a, type: int}]", "1a: invalid field name '1a'", id="name not identifier"
        ),
        pytest.param(
            "[{name: a, type: int}, {name: a, type: long}]",
            "a: duplicate field name",
            id="duplicate",
        ),
    ],
)
def test_invalid_schema_names_the_path(fields: str, message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        parse_fields(yaml.safe_load(fields))
    assert message in str(info.value)
    assert info.value.reason == "InvalidSchema"


def test_all_problems_are_reported_once() -> None:
    raw = yaml.safe_load("[{name: a, type: int, foo: 1}, {name: b, type: strin}]")
    assert field_problems(raw) == [
        'a: unexpected key(s) foo for type "int"',
        'b: unknown type "strin"',
    ]


def test_prefix_path_is_kept() -> None:
    assert field_problems([{"name": "a", "type": "x"}], "spec.fields") == [
        'spec.fields.a: unknown type "x"'
    ]


@pytest.mark.parametrize(
    ("field", "normalised"),
    [
        ({"type": "boolean", "default": True}, True),
        ({"type": "int", "default": -5}, -5),
        ({"type": "long", "default": 2**40}, 2**40),
        ({"type": "float", "default": 1}, 1),
        ({"type": "double", "default": 1.5}, 1.5),
        ({"type": "string", "default": "x"}, "x"),
        ({"type": "binary", "default": "\u00ff"}, "\u00ff"),
        ({"type": "date", "default": "2026-01-31"}, "2026-01-31"),
        ({"type": "timestamp", "default": "2026-01-31T10:00:00Z"}, "2026-01-31T10:00:00Z"),
        ({"type": "decimal", "precision": 5, "scale": 2, "default": "123.45"}, "123.45"),
        ({"type": "map", "values": "int", "default": {"a": 1, "b": None}}, {"a": 1, "b": None}),
        ({"type": "array", "items": "long", "default": [1, 2]}, [1, 2]),
        (
            {
                "type": "struct",
                "fields": [
                    {"name": "a", "type": "int"},
                    {"name": "b", "type": "int", "default": 7},
                ],
                "default": {},
            },
            {"a": None, "b": 7},
        ),
        ({"type": "int", "default": None}, None),
    ],
)
def test_defaults_of_the_right_type(field: dict[str, Any], normalised: Any) -> None:
    schema = parse_fields([{"name": "f", **field}])
    assert schema.fields[0].default == normalised


def test_yaml_dates_become_iso_strings() -> None:
    schema = parse_fields(yaml.safe_load("[{name: d, type: date, default: 2026-01-31}]"))
    assert schema.fields[0].default == "2026-01-31"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"type": "int", "default": "x"}, "f: default 'x' is not a valid int"),
        ({"type": "int", "default": 2**31}, "is not a valid int"),
        ({"type": "int", "default": True}, "is not a valid int"),
        ({"type": "boolean", "default": 1}, "is not a valid boolean"),
        ({"type": "double", "default": "1.5"}, "is not a valid double"),
        ({"type": "string", "default": 5}, "is not a valid string"),
        ({"type": "date", "default": "31/01/2026"}, "is not a valid date"),
        ({"type": "timestamp", "default": "yesterday"}, "is not a valid timestamp"),
        (
            {"type": "decimal", "precision": 5, "scale": 2, "default": 1234.5},
            "f: default 1234.5 is not a valid decimal(5,2)",
        ),
        ({"type": "decimal", "precision": 5, "scale": 2, "default": "1.234"}, "decimal(5,2)"),
        ({"type": "map", "values": "int", "default": {"a": "x"}}, "f.a: default 'x'"),
        ({"type": "array", "items": "int", "default": "x"}, "is not a valid array<int>"),
        (
            {"type": "struct", "fields": [{"name": "a", "type": "int"}], "default": {"z": 1}},
            "f: default has unknown struct key(s) z",
        ),
        (
            {
                "type": "struct",
                "fields": [{"name": "a", "type": "int", "nullable": False}],
                "default": {},
            },
            "f.a: default struct value lacks this field",
        ),
        ({"type": "int", "nullable": False, "default": None}, "default null on a non-nullable"),
    ],
)
def test_defaults_of_the_wrong_type_are_invalid(field: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        parse_fields([{"name": "f", **field}])
    assert message in str(info.value)
