"""A structured diff between two schema versions, for status, Events and ``lakeop schema diff``.

Fields are matched by name (as in compatibility: a rename is a removal plus an addition) and
the diff recurses into struct fields, map values and array items, naming nested parts by path
(``device.os``, ``properties.<value>``, ``tags.<item>``). Types render as users write them
(``decimal(10,2)``, ``map<string,int>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.schema.types import ArrayType, Field, FieldType, MapType, Schema, StructType


@dataclass(frozen=True)
class Change:
    """One changed attribute of a field; ``None`` in from/to for defaults means "no default"."""

    field: str
    from_: Any
    to: Any
    has_from: bool = True
    has_to: bool = True

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"field": self.field}
        if self.has_from:
            d["from"] = self.from_
        if self.has_to:
            d["to"] = self.to
        return d


@dataclass(frozen=True)
class SchemaDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)  # type changes, rendered types
    nullability: list[Change] = field(default_factory=list)  # booleans: nullable from/to
    defaults: list[Change] = field(default_factory=list)  # keys absent when there is no default
    docs: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.nullability
            or self.defaults
            or self.docs
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [c.to_dict() for c in self.changed],
            "nullability": [c.to_dict() for c in self.nullability],
            "defaults": [c.to_dict() for c in self.defaults],
            "docs": [c.to_dict() for c in self.docs],
        }

    def render(self) -> str:
        """Human-readable, one line per change: ``+`` added, ``-`` removed, ``~`` changed."""
        if self.empty:
            return "no changes"
        lines = [f"+ {name}" for name in self.added]
        lines += [f"- {name}" for name in self.removed]
        lines += [f"~ {c.field}: type {c.from_} → {c.to}" for c in self.changed]
        lines += [
            f"~ {c.field}: {_nullable_word(c.from_)} → {_nullable_word(c.to)}"
            for c in self.nullability
        ]
        lines += [
            f"~ {c.field}: default {_value(c.has_from, c.from_)} → {_value(c.has_to, c.to)}"
            for c in self.defaults
        ]
        lines += [
            f"~ {c.field}: doc {_value(True, c.from_)} → {_value(True, c.to)}" for c in self.docs
        ]
        return "\n".join(lines)


def _nullable_word(nullable: Any) -> str:
    return "nullable" if nullable else "non-null"


def _value(present: bool, value: Any) -> str:
    if not present:
        return "(none)"
    return json.dumps(value, default=str, ensure_ascii=False)


def diff_schemas(old: Schema, new: Schema) -> SchemaDiff:
    """What changed from ``old`` to ``new``, recursively, in the new schema's field order."""
    d = SchemaDiff()
    _diff_fields(old.fields, new.fields, "", d)
    return d


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _diff_fields(old: tuple[Field, ...], new: tuple[Field, ...], path: str, d: SchemaDiff) -> None:
    old_by_name = {f.name: f for f in old}
    new_names = {f.name for f in new}
    d.removed.extend(_join(path, f.name) for f in old if f.name not in new_names)
    for nf in new:
        fpath = _join(path, nf.name)
        of = old_by_name.get(nf.name)
        if of is None:
            d.added.append(fpath)
            continue
        _diff_type(of.type, nf.type, fpath, d)
        if of.nullable != nf.nullable:
            d.nullability.append(Change(fpath, of.nullable, nf.nullable))
        if of.has_default != nf.has_default or (of.has_default and of.default != nf.default):
            d.defaults.append(Change(fpath, of.default, nf.default, of.has_default, nf.has_default))
        if of.doc != nf.doc:
            d.docs.append(Change(fpath, of.doc, nf.doc))


def _diff_type(old: FieldType, new: FieldType, path: str, d: SchemaDiff) -> None:
    if old == new:
        return
    if isinstance(old, StructType) and isinstance(new, StructType):
        _diff_fields(old.fields, new.fields, path, d)
    elif isinstance(old, MapType) and isinstance(new, MapType):
        vpath = f"{path}.<value>"
        _diff_type(old.values, new.values, vpath, d)
        if old.values_nullable != new.values_nullable:
            d.nullability.append(Change(vpath, old.values_nullable, new.values_nullable))
    elif isinstance(old, ArrayType) and isinstance(new, ArrayType):
        ipath = f"{path}.<item>"
        _diff_type(old.items, new.items, ipath, d)
        if old.items_nullable != new.items_nullable:
            d.nullability.append(Change(ipath, old.items_nullable, new.items_nullable))
    else:
        d.changed.append(Change(path, old.render(), new.render()))
