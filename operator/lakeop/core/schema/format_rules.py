"""Which schema changes a table format can apply to an existing table: a pure rule.

The compatibility mode decides whether readers can read across versions; the table's format
decides whether the table itself can follow. A ``parquet`` table can follow any allowed
change (each file keeps its own schema and readers project it). A ``delta`` table has one
schema in its log, as lakeop writes it (Delta protocol reader 1 / writer 2, no column
mapping, no type widening):

- an added field must be nullable without a non-null default: Delta readers read an added
  column of older files as null, and lakeop cannot give them a default;
- a field's type cannot change (no promotion: ``int``→``long`` needs the ``typeWidening``
  table feature, which lakeop does not write), nested types included;
- a nullable field cannot become required (Delta cannot add NOT NULL to existing data);
- a required field may become nullable; a removed field stays in the Delta schema (null in
  newer files).

Used by the SchemaVersion verdict (operator and webhook) and by ``lakeop validate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakeop.core.schema.types import Schema

FORMATS_WITH_ONE_SCHEMA = frozenset({"delta"})


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
        if was.type != f.type:
            out.append(
                FormatProblem(
                    f.name,
                    f"field {f.name}: a {fmt} table cannot change a column's type "
                    f"{was.type.render()}→{f.type.render()} (lakeop writes no type widening)",
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
