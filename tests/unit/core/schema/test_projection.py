"""Projection plans: how a file written under an older version reads as the current one."""

from __future__ import annotations

import pytest
import yaml

from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.projection import Action, dropped_columns, projection
from lakeop.core.schema.types import Schema
from lakeop.errors import IncompatibleSchemaError


def s(text: str) -> Schema:
    return parse_fields(yaml.safe_load(text))


OLD = s("[{name: id, type: int}, {name: name, type: string}, {name: gone, type: long}]")
NEW = s(
    """
    - {name: id, type: long}
    - {name: name, type: string}
    - {name: country, type: string}
    - {name: source, type: string, nullable: false, default: legacy}
    """
)


def test_plan_per_target_column() -> None:
    plan = projection(NEW, OLD)
    assert [(c.name, c.action, c.default) for c in plan] == [
        ("id", Action.CAST, None),
        ("name", Action.COPY, None),
        ("country", Action.FILL, None),
        ("source", Action.FILL, "legacy"),
    ]
    assert plan[0].source_type is not None and plan[0].source_type.render() == "int"
    assert plan[2].source_type is None
    assert dropped_columns(NEW, OLD) == ["gone"]


def test_unreadable_file_is_refused_with_the_violations() -> None:
    with pytest.raises(IncompatibleSchemaError, match="id: TypeNarrowed long→int"):
        projection(OLD, s("[{name: id, type: long}]"))
