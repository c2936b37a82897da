"""Structured diffs between schema versions."""

from __future__ import annotations

import yaml

from lakeop.core.schema.diff import diff_schemas
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema


def s(text: str) -> Schema:
    return parse_fields(yaml.safe_load(text))


OLD = s(
    """
    - {name: user_id, type: string}
    - {name: amount, type: decimal, precision: 10, scale: 2}
    - {name: legacy, type: long}
    - {name: properties, type: map, values: int}
    - {name: tags, type: array, items: string}
    - {name: device, type: struct, fields: [{name: os, type: string}, {name: old, type: int}]}
    - {name: country, type: string, doc: country}
    """
)
NEW = s(
    """
    - {name: user_id, type: string, nullable: false}
    - {name: amount, type: decimal, precision: 12, scale: 2}
    - {name: properties, type: map, values: long, valuesNullable: false}
    - {name: tags, type: array, items: string}
    - {name: device, type: struct, fields: [{name: os, type: string}, {name: model, type: string}]}
    - {name: country, type: string, default: DE, doc: ISO code}
    - {name: score, type: double}
    """
)


def test_diff_to_dict() -> None:
    assert diff_schemas(OLD, NEW).to_dict() == {
        "added": ["device.model", "score"],
        "removed": ["legacy", "device.old"],
        "changed": [
            {"field": "amount", "from": "decimal(10,2)", "to": "decimal(12,2)"},
            {"field": "properties.<value>", "from": "int", "to": "long"},
        ],
        "nullability": [
            {"field": "user_id", "from": True, "to": False},
            {"field": "properties.<value>", "from": True, "to": False},
        ],
        "defaults": [{"field": "country", "to": "DE"}],
        "docs": [{"field": "country", "from": "country", "to": "ISO code"}],
    }


def test_render_is_one_line_per_change() -> None:
    text = diff_schemas(OLD, NEW).render()
    assert text.splitlines() == [
        "+ device.model",
        "+ score",
        "- legacy",
        "- device.old",
        "~ amount: type decimal(10,2) → decimal(12,2)",
        "~ properties.<value>: type int → long",
        "~ user_id: nullable → non-null",
        "~ properties.<value>: nullable → non-null",
        '~ country: default (none) → "DE"',
        '~ country: doc "country" → "ISO code"',
    ]


def test_kind_change_is_one_type_change() -> None:
    d = diff_schemas(
        s("[{name: a, type: struct, fields: [{name: b, type: int}]}]"),
        s("[{name: a, type: string}]"),
    )
    assert d.to_dict()["changed"] == [{"field": "a", "from": "struct<b:int>", "to": "string"}]
    assert d.added == [] and d.removed == []


def test_identical_schemas_have_no_changes() -> None:
    d = diff_schemas(OLD, OLD)
    assert d.empty
    assert d.render() == "no changes"
    assert d.to_dict()["added"] == []


def test_default_removed_and_null_default() -> None:
    d = diff_schemas(
        s("[{name: a, type: int, default: 1}]"), s("[{name: a, type: int, default: null}]")
    )
    assert d.to_dict()["defaults"] == [{"field": "a", "from": 1, "to": None}]
    d2 = diff_schemas(s("[{name: a, type: int, default: 1}]"), s("[{name: a, type: int}]"))
    assert d2.to_dict()["defaults"] == [{"field": "a", "from": 1}]
