"""Which schema changes a table format can apply to an existing table: a pure rule.

The compatibility mode decides whether readers can read across versions; the table's format
decides whether the table itself can follow. A ``parquet`` table can follow any allowed
change (each file keeps its own schema and readers project it). A ``delta`` table has one
schema in its log, as lakeop writes it (Delta protocol reader 1 / writer 2, no column
mapping, no type widening):

- an added field must be nullable without a non-null default: Delta readers read an added
  column of older files as null, and lakeop cannot give them a default;
- a top-level field's type may change by a promotion every existing value survives
  (:func:`delta_promotes`: ``int``→``long``/``float``/``double``, ``long``→``float``/``double``,
  ``float``→``double``, ``string``→``binary``, ``date``→``timestamp``, a decimal's precision
  widened at the same scale): lakeop rewrites the table's live files under the widened
  schema in one Delta commit, before the run's own commit. Other type changes cannot apply
  (``binary``→``string``: stored bytes need not be UTF-8; a type inside a struct, list or
  map: lakeop rewrites top-level columns only);
- a nullable field cannot become required (Delta cannot add NOT NULL to existing data);
- a required field may become nullable; a removed field stays in the Delta schema (null in
  newer files).

An ``iceberg`` table evolves by field id (``update_schema``, union by name): the same rules
as ``delta`` except that Iceberg's type promotions are applied in place: ``int``→``long``,
``float``→``double``, and a decimal's precision widened at the same scale.

Used by the SchemaVersion verdict (operator and webhook) and by ``lakeop validate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakeop.core.schema.types import DecimalType, FieldType, Schema

FORMATS_WITH_ONE_SCHEMA = frozenset({"delta", "iceberg"})


#: the top-level promotions lakeop applies to a Delta table by rewriting its live files
DELTA_PROMOTIONS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "binary"),
        ("date", "timestamp"),
    }
)


def delta_promotes(old: FieldType, new: FieldType) -> bool:
    """Whether lakeop widens a Delta column from ``old`` to ``new`` (a rewrite commit)."""
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        return new.scale == old.scale and new.precision >= old.precision
    return (old.name, new.name) in DELTA_PROMOTIONS


def iceberg_promotes(old: FieldType, new: FieldType) -> bool:
    """Whether Iceberg changes a column's type from ``old`` to ``new`` in place."""
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        return new.scale == old.scale and new.precision >= old.precision
    return (old.name, new.name) in {("int", "long"), ("float", "double")}


@dataclass(frozen=True)
class FormatProblem:
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": "FormatCannotEvolve", "message": self.message}


def cannot_evolve(table_format: str, old: Schema, new: Schema) -> list[FormatProblem]:
    """Why a ``table_format`` table holding ``old`` cannot follow ``new`` ([]: it can)."""
    if table_format not in FORMATS_WITH_ONE_SCHEMA:
        return []
    fmt = table_format
    out = []
    before = old.by_name()
    for f in new.fields:
        was = before.get(f.name)
        if was is None:
            if not f.nullable or (f.has_default and f.default is not None):
                out.append(
                    FormatProblem(
                        f.name,
                        f"field {f.name}: a {fmt} table reads an added column as null in "
                        "older files; add it nullable without a default",
                    )
                )
            continue
        promotes = delta_promotes if fmt == "delta" else iceberg_promotes
        if was.type != f.type and not promotes(was.type, f.type):
            why = (
                "lakeop widens a Delta column by int→long/float/double, long→float/double, "
                "float→double, string→binary, date→timestamp, decimal precision; "
                "top-level columns only"
                if fmt == "delta"
                else "its promotions are int→long, float→double, decimal precision"
            )
            out.append(
                FormatProblem(
                    f.name,
                    f"field {f.name}: a {fmt} table cannot change a column's type "
                    f"{was.type.render()}→{f.type.render()} ({why})",
                )
            )
        elif was.nullable and not f.nullable:
            out.append(
                FormatProblem(
                    f.name,
                    f"field {f.name}: a {fmt} table cannot make a nullable column required",
                )
            )
    return out
