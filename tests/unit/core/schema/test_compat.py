"""The compatibility rule table, one row per reading rule and per mode."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from lakeop.core.schema.compat import (
    CompatibilityMode,
    Rule,
    can_read,
    check_compatibility,
    parse_mode,
)
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.errors import InvalidSpecError


def s(text: str) -> Schema:
    return parse_fields(yaml.safe_load(text))


def one(type_spec: str, extra: str = "") -> Schema:
    """A one-field schema ``x`` of the given type (YAML flow fragment)."""
    return s(f"[{{name: x, {type_spec}{', ' + extra if extra else ''}}}]")


# (id, reader, writer, expected [(field, rule, message)]) — BACKWARD direction: the reader is
# the candidate reading data written under an older version.
READING_RULES: list[tuple[str, Schema, Schema, list[tuple[str, str, str]]]] = [
    ("identical", one("type: int"), one("type: int"), []),
    (
        "reader field with explicit default",
        s("[{name: a, type: int}, {name: b, type: int, nullable: false, default: 0}]"),
        s("[{name: a, type: int}]"),
        [],
    ),
    (
        "nullable reader field defaults to null",
        s("[{name: a, type: int}, {name: b, type: string}]"),
        s("[{name: a, type: int}]"),
        [],
    ),
    (
        "non-null reader field without default",
        s("[{name: a, type: int}, {name: user_id, type: string, nullable: false}]"),
        s("[{name: a, type: int}]"),
        [("user_id", "FieldAddedWithoutDefault", "user_id: FieldAddedWithoutDefault")],
    ),
    (
        "writer-only field is ignored",
        s("[{name: a, type: int}]"),
        s("[{name: a, type: int}, {name: gone, type: string, nullable: false}]"),
        [],
    ),
    (
        "rename is removal plus addition",
        s("[{name: new_name, type: string, nullable: false}]"),
        s("[{name: old_name, type: string, nullable: false}]"),
        [("new_name", "FieldAddedWithoutDefault", "new_name: FieldAddedWithoutDefault")],
    ),
    ("promote int->long", one("type: long"), one("type: int"), []),
    ("promote int->float", one("type: float"), one("type: int"), []),
    ("promote int->double", one("type: double"), one("type: int"), []),
    ("promote long->float", one("type: float"), one("type: long"), []),
    ("promote long->double", one("type: double"), one("type: long"), []),
    ("promote float->double", one("type: double"), one("type: float"), []),
    ("promote string->binary", one("type: binary"), one("type: string"), []),
    ("promote binary->string", one("type: string"), one("type: binary"), []),
    ("widen date->timestamp", one("type: timestamp"), one("type: date"), []),
    (
        "narrow double->int",
        s("[{name: temperature, type: int}]"),
        s("[{name: temperature, type: double}]"),
        [("temperature", "TypeNarrowed", "temperature: TypeNarrowed double→int")],
    ),
    (
        "narrow long->int",
        one("type: int"),
        one("type: long"),
        [("x", "TypeNarrowed", "x: TypeNarrowed long→int")],
    ),
    (
        "narrow double->float",
        one("type: float"),
        one("type: double"),
        [("x", "TypeNarrowed", "x: TypeNarrowed double→float")],
    ),
    (
        "narrow timestamp->date",
        one("type: date"),
        one("type: timestamp"),
        [("x", "TypeNarrowed", "x: TypeNarrowed timestamp→date")],
    ),
    (
        "unrelated string->int",
        one("type: int"),
        one("type: string"),
        [("x", "TypeChanged", "x: TypeChanged string→int")],
    ),
    (
        "boolean->int is not a promotion",
        one("type: int"),
        one("type: boolean"),
        [("x", "TypeChanged", "x: TypeChanged boolean→int")],
    ),
    (
        "int->decimal is not a promotion",
        one("type: decimal, precision: 12, scale: 0"),
        one("type: int"),
        [("x", "TypeChanged", "x: TypeChanged int→decimal(12,0)")],
    ),
    (
        "struct->string",
        one("type: string"),
        one("type: struct, fields: [{name: a, type: int}]"),
        [("x", "TypeChanged", "x: TypeChanged struct<a:int>→string")],
    ),
    (
        "map->array",
        one("type: array, items: string"),
        one("type: map, values: string"),
        [("x", "TypeChanged", "x: TypeChanged map<string,string>→array<string>")],
    ),
    (
        "nullable reader reads non-null writer",
        one("type: int"),
        one("type: int, nullable: false"),
        [],
    ),
    (
        "non-null reader cannot read nullable writer",
        one("type: int, nullable: false"),
        one("type: int"),
        [("x", "NullabilityNarrowed", "x: NullabilityNarrowed nullable→non-null")],
    ),
    (
        "decimal precision widening at equal scale",
        s("[{name: amount, type: decimal, precision: 12, scale: 2}]"),
        s("[{name: amount, type: decimal, precision: 10, scale: 2}]"),
        [],
    ),
    (
        "decimal precision narrowing",
        one("type: decimal, precision: 8, scale: 2"),
        one("type: decimal, precision: 10, scale: 2"),
        [
            (
                "x",
                "DecimalPrecisionNarrowed",
                "x: DecimalPrecisionNarrowed decimal(10,2)→decimal(8,2)",
            )
        ],
    ),
    (
        "decimal scale change",
        one("type: decimal, precision: 12, scale: 3"),
        one("type: decimal, precision: 10, scale: 2"),
        [("x", "DecimalScaleChanged", "x: DecimalScaleChanged decimal(10,2)→decimal(12,3)")],
    ),
    (
        "map values promote",
        s("[{name: properties, type: map, values: long}]"),
        s("[{name: properties, type: map, values: int}]"),
        [],
    ),
    (
        "map values change",
        s("[{name: properties, type: map, values: int}]"),
        s("[{name: properties, type: map, values: string}]"),
        [("properties.<value>", "TypeChanged", "properties.<value>: TypeChanged string→int")],
    ),
    (
        "map values nullability narrowed",
        s("[{name: properties, type: map, values: string, valuesNullable: false}]"),
        s("[{name: properties, type: map, values: string}]"),
        [
            (
                "properties.<value>",
                "NullabilityNarrowed",
                "properties.<value>: NullabilityNarrowed nullable→non-null",
            )
        ],
    ),
    (
        "array items promote",
        one("type: array, items: double"),
        one("type: array, items: float"),
        [],
    ),
    (
        "array items narrowed",
        s("[{name: tags, type: array, items: int}]"),
        s("[{name: tags, type: array, items: long}]"),
        [("tags.<item>", "TypeNarrowed", "tags.<item>: TypeNarrowed long→int")],
    ),
    (
        "struct field narrowed",
        s("[{name: device, type: struct, fields: [{name: os, type: int}]}]"),
        s("[{name: device, type: struct, fields: [{name: os, type: long}]}]"),
        [("device.os", "TypeNarrowed", "device.os: TypeNarrowed long→int")],
    ),
    (
        "struct field added without default",
        s(
            "[{name: device, type: struct, fields: [{name: os, type: string},"
            " {name: model, type: string, nullable: false}]}]"
        ),
        s("[{name: device, type: struct, fields: [{name: os, type: string}]}]"),
        [("device.model", "FieldAddedWithoutDefault", "device.model: FieldAddedWithoutDefault")],
    ),
    (
        "struct inside array, recursively",
        s("[{name: events, type: array, items: {type: struct, fields: [{name: n, type: int}]}}]"),
        s("[{name: events, type: array, items: {type: struct, fields: [{name: n, type: date}]}}]"),
        [("events.<item>.n", "TypeChanged", "events.<item>.n: TypeChanged date→int")],
    ),
]


@pytest.mark.parametrize(
    ("reader", "writer", "expected"),
    [pytest.param(r, w, e, id=i) for i, r, w, e in READING_RULES],
)
def test_reading_rule(reader: Schema, writer: Schema, expected: list[tuple[str, str, str]]) -> None:
    got = [(v.field, v.rule, v.message) for v in can_read(reader, writer)]
    assert got == expected


# FORWARD direction: the old version (reader) reads the candidate's (writer's) data; rules are
# named for what the candidate did.
FORWARD_RULES: list[tuple[str, Schema, Schema, list[tuple[str, str, str]]]] = [
    (
        "candidate drops a field old readers need",
        s("[{name: a, type: int}, {name: b, type: int, nullable: false}]"),
        s("[{name: a, type: int}]"),
        [("b", "FieldRemovedWithoutDefault", "b: FieldRemovedWithoutDefault")],
    ),
    (
        "candidate widens a type",
        one("type: int"),
        one("type: long"),
        [("x", "TypeWidened", "x: TypeWidened int→long")],
    ),
    (
        "candidate becomes nullable",
        one("type: int, nullable: false"),
        one("type: int"),
        [("x", "NullabilityWidened", "x: NullabilityWidened non-null→nullable")],
    ),
    (
        "candidate widens decimal precision",
        one("type: decimal, precision: 10, scale: 2"),
        one("type: decimal, precision: 12, scale: 2"),
        [
            (
                "x",
                "DecimalPrecisionWidened",
                "x: DecimalPrecisionWidened decimal(10,2)→decimal(12,2)",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("reader", "writer", "expected"),
    [pytest.param(r, w, e, id=i) for i, r, w, e in FORWARD_RULES],
)
def test_forward_rule_names(
    reader: Schema, writer: Schema, expected: list[tuple[str, str, str]]
) -> None:
    got = [
        (v.field, v.rule, v.message) for v in can_read(reader, writer, reader_is_candidate=False)
    ]
    assert got == expected


# v1 has score:string, v2 dropped it, v3 brings it back as int: fine against v2 in both
# directions, but neither direction works against v1.
V1 = s("[{name: id, type: long, nullable: false}, {name: score, type: string}]")
V2 = s("[{name: id, type: long, nullable: false}]")
V3 = s("[{name: id, type: long, nullable: false}, {name: score, type: int}]")
HISTORY = [(1, V1), (2, V2)]
BASE = [(1, s("[{name: id, type: int, nullable: false}]"))]
ADD_NULLABLE = s("[{name: id, type: int, nullable: false}, {name: c, type: string}]")
ADD_REQUIRED = s(
    "[{name: id, type: int, nullable: false}, {name: c, type: string, nullable: false}]"
)
ADD_REQUIRED_DEFAULT = s(
    "[{name: id, type: int, nullable: false}, {name: c, type: string, nullable: false, default: x}]"
)
DROP_REQUIRED = s("[{name: c, type: string}]")
PROMOTE = s("[{name: id, type: long, nullable: false}]")

MODES: list[tuple[str, Schema, list[tuple[int, Schema]], str, bool, list[int], list[str]]] = [
    ("NONE checks nothing", PROMOTE, [(1, s("[{name: id, type: string}]"))], "NONE", True, [], []),
    ("no accepted versions", V3, [], "BACKWARD", True, [], []),
    ("BACKWARD latest only", V3, HISTORY, "BACKWARD", True, [2], []),
    ("BACKWARD_TRANSITIVE all", V3, HISTORY, "BACKWARD_TRANSITIVE", False, [1, 2], ["TypeChanged"]),
    ("FORWARD latest only", V3, HISTORY, "FORWARD", True, [2], []),
    ("FORWARD_TRANSITIVE all", V3, HISTORY, "FORWARD_TRANSITIVE", False, [1, 2], ["TypeChanged"]),
    ("FULL latest only", V3, HISTORY, "FULL", True, [2], []),
    ("FULL_TRANSITIVE all", V3, HISTORY, "FULL_TRANSITIVE", False, [1, 2], ["TypeChanged"]),
    ("BACKWARD allows promotion", PROMOTE, BASE, "BACKWARD", True, [1], []),
    ("FORWARD refuses promotion", PROMOTE, BASE, "FORWARD", False, [1], ["TypeWidened"]),
    ("FULL refuses promotion", PROMOTE, BASE, "FULL", False, [1], ["TypeWidened"]),
    ("BACKWARD add nullable", ADD_NULLABLE, BASE, "BACKWARD", True, [1], []),
    ("FULL add nullable", ADD_NULLABLE, BASE, "FULL", True, [1], []),
    ("FULL add required with default", ADD_REQUIRED_DEFAULT, BASE, "FULL", True, [1], []),
    (
        "BACKWARD add required",
        ADD_REQUIRED,
        BASE,
        "BACKWARD",
        False,
        [1],
        ["FieldAddedWithoutDefault"],
    ),
    ("FORWARD add required", ADD_REQUIRED, BASE, "FORWARD", True, [1], []),
    ("BACKWARD drop required", DROP_REQUIRED, BASE, "BACKWARD", True, [1], []),
    (
        "FORWARD drop required",
        DROP_REQUIRED,
        BASE,
        "FORWARD",
        False,
        [1],
        ["FieldRemovedWithoutDefault"],
    ),
    (
        "FULL reports both directions",
        s("[{name: c, type: string, nullable: false}]"),
        BASE,
        "FULL",
        False,
        [1],
        ["FieldAddedWithoutDefault", "FieldRemovedWithoutDefault"],
    ),
    (
        "latest is the highest version, whatever the order",
        V3,
        [(2, V2), (1, V1)],
        "backward",
        True,
        [2],
        [],
    ),
]


@pytest.mark.parametrize(
    ("candidate", "accepted", "mode", "compatible", "checked", "rules"),
    [pytest.param(c, a, m, ok, ch, r, id=i) for i, c, a, m, ok, ch, r in MODES],
)
def test_mode(  # noqa: PLR0917 - one parameter per table column
    candidate: Schema,
    accepted: list[tuple[int, Schema]],
    mode: str,
    compatible: bool,
    checked: list[int],
    rules: list[str],
) -> None:
    result = check_compatibility(candidate, accepted, mode)
    assert result.compatible is compatible
    assert result.mode == mode.upper()
    assert result.checked_against == checked
    assert [v.rule for v in result.violations] == rules


def test_transitive_violation_names_the_version_and_is_reported_once() -> None:
    v1 = s("[{name: t, type: double}]")
    v2 = s("[{name: t, type: double}, {name: u, type: int}]")
    cand = s("[{name: t, type: int}]")
    result = check_compatibility(cand, [(1, v1), (2, v2)], CompatibilityMode.BACKWARD_TRANSITIVE)
    assert [(v.message, v.against) for v in result.violations] == [
        ("t: TypeNarrowed double→int", 1)
    ]
    out: dict[str, Any] = result.to_dict()
    assert out["checkedAgainst"] == [1, 2]
    assert out["violations"] == [
        {"field": "t", "rule": "TypeNarrowed", "message": "t: TypeNarrowed double→int"}
    ]
    assert "incompatible under BACKWARD_TRANSITIVE" in result.summary()


def test_mode_properties() -> None:
    assert [m.value for m in CompatibilityMode if m.backward] == [
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ]
    assert [m.value for m in CompatibilityMode if m.forward] == [
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ]
    assert {m for m in CompatibilityMode if m.transitive} == {
        CompatibilityMode.BACKWARD_TRANSITIVE,
        CompatibilityMode.FORWARD_TRANSITIVE,
        CompatibilityMode.FULL_TRANSITIVE,
    }
    assert parse_mode(None) is CompatibilityMode.BACKWARD


def test_unknown_mode_names_the_value() -> None:
    with pytest.raises(InvalidSpecError, match='unknown mode "SIDEWAYS"'):
        check_compatibility(V3, HISTORY, "SIDEWAYS")


def test_rule_names_are_camel_case() -> None:
    for rule in Rule:
        assert rule.value[0].isupper() and "_" not in rule.value
