"""How to read a file written under an older schema as the current one (pure rules).

A table's files keep the schema they were written with; readers present them under the
current version. Per column of the current schema this module says what to do with a file's
columns: ``copy`` (same type), ``cast`` (a promotion allowed by :mod:`lakeop.core.schema.compat`,
or a nested type whose parts changed), or ``fill`` (the column is absent: its default, null
for nullable fields). Columns only the file has are dropped. The engine (and
:func:`lakeop.arrow.project_table`) applies the plan; nothing here touches data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lakeop.core.schema.compat import can_read
from lakeop.core.schema.types import FieldType, Schema
from lakeop.errors import IncompatibleSchemaError


class Action(StrEnum):
    COPY = "copy"
    CAST = "cast"
    FILL = "fill"


@dataclass(frozen=True)
class ColumnProjection:
    name: str
    action: Action
    target_type: FieldType
    nullable: bool
    source_type: FieldType | None = None  # None for FILL
    default: Any = None  # the value for FILL


def projection(target: Schema, written: Schema) -> list[ColumnProjection]:
    """Per target column, how to build it from data written under ``written``.

    Raises IncompatibleSchemaError when ``target`` cannot read ``written`` (e.g. a file from a
    version the table's mode never allowed, or from a different table).
    """
    violations = can_read(target, written)
    if violations:
        raise IncompatibleSchemaError(
            "data written under this schema cannot be read as the current one: "
            + "; ".join(v.message for v in violations)
        )
    source = written.by_name()
    plan: list[ColumnProjection] = []
    for f in target.fields:
        w = source.get(f.name)
        if w is None:
            _, value = f.effective_default
            plan.append(ColumnProjection(f.name, Action.FILL, f.type, f.nullable, None, value))
        elif w.type == f.type:
            plan.append(ColumnProjection(f.name, Action.COPY, f.type, f.nullable, w.type))
        else:
            plan.append(ColumnProjection(f.name, Action.CAST, f.type, f.nullable, w.type))
    return plan


def dropped_columns(target: Schema, written: Schema) -> list[str]:
    """Columns present in the file but not in the target schema (ignored when reading)."""
    names = set(target.names())
    return [n for n in written.names() if n not in names]
