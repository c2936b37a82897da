"""Schema compatibility: can data written under one schema be read under another?

The seven modes follow Confluent Schema Registry; "can be read" follows Avro's schema
resolution mapped onto lakeop's types, plus two widenings lakes allow (decimal precision
at equal scale, date→timestamp). The rule table lives in ``docs/compatibility.md``.

Violations are named from the point of view of the *candidate* (the new version) and always
render the change as ``old→new``: in the BACKWARD direction the candidate is the reader of old
data (``TypeNarrowed double→int``: the candidate narrowed a type), in the FORWARD direction the
old version reads the candidate's data (``TypeWidened int→long``: old readers cannot read the
wider type).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from lakeop.core.schema.types import (
    ArrayType,
    DecimalType,
    Field,
    FieldType,
    MapType,
    PrimitiveType,
    Schema,
    StructType,
)
from lakeop.errors import InvalidSpecError


class CompatibilityMode(StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def backward(self) -> bool:
        """The candidate must read data written under the checked-against versions."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """The checked-against versions must read data written under the candidate."""
        return self.value.startswith(("FORWARD", "FULL"))

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")


DEFAULT_MODE = CompatibilityMode.BACKWARD


class Rule(StrEnum):
    """Violation names (CamelCase, as they appear in status, events and the CLI)."""

    FIELD_ADDED_WITHOUT_DEFAULT = "FieldAddedWithoutDefault"
    FIELD_REMOVED_WITHOUT_DEFAULT = "FieldRemovedWithoutDefault"
    TYPE_NARROWED = "TypeNarrowed"
    TYPE_WIDENED = "TypeWidened"
    TYPE_CHANGED = "TypeChanged"
    NULLABILITY_NARROWED = "NullabilityNarrowed"
    NULLABILITY_WIDENED = "NullabilityWidened"
    DECIMAL_SCALE_CHANGED = "DecimalScaleChanged"
    DECIMAL_PRECISION_NARROWED = "DecimalPrecisionNarrowed"
    DECIMAL_PRECISION_WIDENED = "DecimalPrecisionWidened"


# (writer type, reader type) pairs a reader resolves by promotion.
PROMOTIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "binary"),
        ("binary", "string"),
        ("date", "timestamp"),
    }
)


@dataclass(frozen=True)
class Violation:
    field: str
    rule: str
    message: str
    against: int | None = None  # the version it was found against, when known

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(frozen=True)
class CompatibilityResult:
    compatible: bool
    mode: str
    checked_against: list[int] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The shape of ``status.compatibility`` (plus ``compatible``)."""
        return {
            "compatible": self.compatible,
            "mode": self.mode,
            "checkedAgainst": list(self.checked_against),
            "violations": [v.to_dict() for v in self.violations],
        }

    def summary(self) -> str:
        """One line for a condition message, an Event or a webhook refusal."""
        if self.compatible:
            against = ", ".join(f"v{v}" for v in self.checked_against) or "nothing"
            return f"compatible under {self.mode} (checked against {against})"
        return f"incompatible under {self.mode}: " + "; ".join(v.message for v in self.violations)


def parse_mode(value: object) -> CompatibilityMode:
    """A mode from a manifest value; ``None`` means the default (BACKWARD)."""
    if value is None:
        return DEFAULT_MODE
    try:
        return CompatibilityMode(str(value).upper())
    except ValueError:
        allowed = ", ".join(m.value for m in CompatibilityMode)
        raise InvalidSpecError(
            f'compatibility: unknown mode "{value}" (one of {allowed})'
        ) from None


@dataclass(frozen=True)
class _Direction:
    reader_is_candidate: bool

    def old_new(self, reader: str, writer: str) -> tuple[str, str]:
        return (writer, reader) if self.reader_is_candidate else (reader, writer)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _v(path: str, rule: Rule, detail: str = "") -> Violation:
    return Violation(path, rule.value, f"{path}: {rule.value}{detail}")


def can_read(
    reader: Schema, writer: Schema, *, reader_is_candidate: bool = True
) -> list[Violation]:
    """Violations preventing ``reader`` from reading data written with ``writer`` (empty = ok).

    Rules are named from the candidate's point of view: with ``reader_is_candidate`` (the
    BACKWARD direction) a reader-only field without default is ``FieldAddedWithoutDefault``;
    otherwise (FORWARD) the candidate is the writer and it is ``FieldRemovedWithoutDefault``.
    """
    return _fields(reader.fields, writer.fields, "", _Direction(reader_is_candidate))


def _fields(
    reader: Sequence[Field], writer: Sequence[Field], path: str, d: _Direction
) -> list[Violation]:
    by_name = {f.name: f for f in writer}
    out: list[Violation] = []
    for rf in reader:
        fpath = _join(path, rf.name)
        wf = by_name.get(rf.name)
        if wf is None:
            if not rf.effective_default[0]:
                rule = (
                    Rule.FIELD_ADDED_WITHOUT_DEFAULT
                    if d.reader_is_candidate
                    else Rule.FIELD_REMOVED_WITHOUT_DEFAULT
                )
                out.append(_v(fpath, rule))
            continue
        out.extend(_nullability(rf.nullable, wf.nullable, fpath, d))
        out.extend(_types(rf.type, wf.type, fpath, d))
    return out


def _nullability(reader: bool, writer: bool, path: str, d: _Direction) -> list[Violation]:
    if not writer or reader:
        return []
    if d.reader_is_candidate:
        return [_v(path, Rule.NULLABILITY_NARROWED, " nullable→non-null")]
    return [_v(path, Rule.NULLABILITY_WIDENED, " non-null→nullable")]


def _types(r: FieldType, w: FieldType, path: str, d: _Direction) -> list[Violation]:
    old, new = d.old_new(r.render(), w.render())
    arrow = f" {old}→{new}"
    if isinstance(r, PrimitiveType) and isinstance(w, PrimitiveType):
        if r.name == w.name or (w.name, r.name) in PROMOTIONS:
            return []
        if (r.name, w.name) in PROMOTIONS:  # the reader is the narrower type
            narrowed = Rule.TYPE_NARROWED if d.reader_is_candidate else Rule.TYPE_WIDENED
            return [_v(path, narrowed, arrow)]
        return [_v(path, Rule.TYPE_CHANGED, arrow)]
    if isinstance(r, DecimalType) and isinstance(w, DecimalType):
        if r.scale != w.scale:
            return [_v(path, Rule.DECIMAL_SCALE_CHANGED, arrow)]
        if r.precision < w.precision:
            rule = (
                Rule.DECIMAL_PRECISION_NARROWED
                if d.reader_is_candidate
                else Rule.DECIMAL_PRECISION_WIDENED
            )
            return [_v(path, rule, arrow)]
        return []
    if isinstance(r, MapType) and isinstance(w, MapType):
        vpath = f"{path}.<value>"
        return _nullability(r.values_nullable, w.values_nullable, vpath, d) + _types(
            r.values, w.values, vpath, d
        )
    if isinstance(r, ArrayType) and isinstance(w, ArrayType):
        ipath = f"{path}.<item>"
        return _nullability(r.items_nullable, w.items_nullable, ipath, d) + _types(
            r.items, w.items, ipath, d
        )
    if isinstance(r, StructType) and isinstance(w, StructType):
        return _fields(r.fields, w.fields, path, d)
    return [_v(path, Rule.TYPE_CHANGED, arrow)]


def check_compatibility(
    candidate: Schema,
    accepted: Sequence[tuple[int, Schema]],
    mode: str | CompatibilityMode,
) -> CompatibilityResult:
    """Check ``candidate`` against accepted ``(version, schema)`` pairs under ``mode``.

    Plain modes check the latest (highest) accepted version, ``_TRANSITIVE`` modes every one,
    NONE nothing. A violation found against several versions is reported once.
    """
    m = parse_mode(mode)
    ordered = sorted(accepted, key=lambda pair: pair[0])
    if m is CompatibilityMode.NONE or not ordered:
        return CompatibilityResult(True, m.value, [], [])
    targets = ordered if m.transitive else ordered[-1:]
    seen: set[tuple[str, str, str]] = set()
    violations: list[Violation] = []
    for version, schema in targets:
        found: list[Violation] = []
        if m.backward:
            found += can_read(candidate, schema, reader_is_candidate=True)
        if m.forward:
            found += can_read(schema, candidate, reader_is_candidate=False)
        for v in found:
            key = (v.field, v.rule, v.message)
            if key not in seen:
                seen.add(key)
                violations.append(Violation(v.field, v.rule, v.message, against=version))
    return CompatibilityResult(
        compatible=not violations,
        mode=m.value,
        checked_against=[v for v, _ in targets],
        violations=violations,
    )
