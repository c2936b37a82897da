"""Which schema changes a table format can apply: one row per rule."""

from __future__ import annotations

from typing import Any

import pytest

from lakeop.core.schema.format_rules import cannot_evolve
from lakeop.core.schema.parse import parse_fields

BASE: list[dict[str, Any]] = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "n", "type": "int"},
    {"name": "name", "type": "string"},
]


def changed(**fields: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = [dict(f) for f in BASE if fields.get(f["name"], f) is not None]
    out = [{**f, **(fields.get(f["name"]) or {})} for f in out]
    return out + [{"name": k, **v} for k, v in fields.items() if v and k not in {"id", "n", "name"}]


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        (changed(), None),
        (changed(extra={"type": "string"}), None),  # added, nullable, default null
        (changed(extra={"type": "string", "default": None}), None),
        (changed(extra={"type": "string", "default": "x"}), "added column as null"),
        (changed(extra={"type": "long", "nullable": False, "default": 0}), "added column"),
        (changed(n={"type": "long"}), None),  # a promotion: a rewrite commit widens it
        (changed(n={"type": "double"}), None),
        (changed(id={"type": "double"}), None),
        (changed(n={"type": "string"}), "type int→string"),
        (changed(id={"type": "int"}), "type long→int"),  # narrowing
        (changed(name={"type": "binary"}), None),
        (changed(extra={"type": "binary"}, name=None), None),
        (changed(id={"nullable": True}), None),  # required → nullable
        (changed(name={"nullable": False, "default": ""}), "nullable column required"),
        (changed(name=None), None),  # removed: stays in the Delta schema
    ],
)
def test_delta_rules(new: list[dict[str, Any]], problem: str | None) -> None:
    got = cannot_evolve("delta", parse_fields(BASE), parse_fields(new))
    if problem is None:
        assert got == []
    else:
        assert len(got) == 1 and problem in got[0].message, got
        assert got[0].to_dict()["rule"] == "FormatCannotEvolve"


def test_parquet_follows_every_change() -> None:
    new = changed(n={"type": "long"}, extra={"type": "string", "default": "x"})
    assert cannot_evolve("parquet", parse_fields(BASE), parse_fields(new)) == []


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        (changed(), None),
        (changed(extra={"type": "string"}), None),
        (changed(extra={"type": "string", "default": "x"}), "added column as null"),
        (changed(n={"type": "long"}), None),  # Iceberg promotes int to long in place
        (changed(n={"type": "double"}), "int→double"),
        (changed(n={"type": "string"}), "int→string"),
        (changed(name=None, full_name={"type": "string"}), None),  # rename as drop + add
        (changed(name={"nullable": False, "default": ""}), "nullable column required"),
    ],
)
def test_iceberg_rules(new: list[dict[str, Any]], problem: str | None) -> None:
    got = cannot_evolve("iceberg", parse_fields(BASE), parse_fields(new))
    if problem is None:
        assert got == []
    else:
        assert len(got) == 1 and problem in got[0].message, got
        assert "iceberg" in got[0].message


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ("float", "double", True),
        ("double", "float", False),
        ((10, 2), (12, 2), True),
        ((10, 2), (12, 3), False),
        ((10, 2), (9, 2), False),
        ("long", "int", False),
    ],
)
def test_iceberg_promotions(old: Any, new: Any, ok: bool) -> None:
    def field(t: Any) -> list[dict[str, Any]]:
        if isinstance(t, tuple):
            return [{"name": "x", "type": "decimal", "precision": t[0], "scale": t[1]}]
        return [{"name": "x", "type": t}]

    got = cannot_evolve("iceberg", parse_fields(field(old)), parse_fields(field(new)))
    assert (got == []) is ok, got


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ("int", "long", True),
        ("int", "double", True),
        ("long", "double", True),
        ("float", "double", True),
        ("date", "timestamp", True),
        ("string", "binary", True),
        ("binary", "string", False),  # stored bytes need not be UTF-8
        ("double", "float", False),
        ("long", "int", False),
        ((10, 2), (12, 2), True),
        ((10, 2), (12, 3), False),
        ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, False),
    ],
)
def test_delta_promotions(old: Any, new: Any, ok: bool) -> None:
    def field(t: Any) -> list[dict[str, Any]]:
        if isinstance(t, tuple):
            return [{"name": "x", "type": "decimal", "precision": t[0], "scale": t[1]}]
        if isinstance(t, dict):
            return [{"name": "x", **t}]
        return [{"name": "x", "type": t}]

    got = cannot_evolve("delta", parse_fields(field(old)), parse_fields(field(new)))
    assert (got == []) is ok, got
    if not ok:
        assert "field x" in got[0].message and "delta" in got[0].message
