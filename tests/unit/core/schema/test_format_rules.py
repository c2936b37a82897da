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
        (changed(n={"type": "long"}), "type int→long"),  # a promotion
        (changed(n={"type": "double"}), "type int→double"),
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
