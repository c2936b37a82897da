"""The field language of SchemaVersions, as immutable values.

A SchemaVersion's ``fields`` list is parsed into a :class:`Schema` (see
:mod:`lakeop.core.schema.parse`); everything else (compatibility, diffs, Arrow conversion,
casting) works on these values, never on raw dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRIMITIVES = (
    "boolean",
    "int",
    "long",
    "float",
    "double",
    "string",
    "binary",
    "date",
    "timestamp",
)


@dataclass(frozen=True)
class PrimitiveType:
    name: str  # one of PRIMITIVES

    def render(self) -> str:
        return self.name


@dataclass(frozen=True)
class DecimalType:
    precision: int
    scale: int = 0

    name = "decimal"

    def render(self) -> str:
        return f"decimal({self.precision},{self.scale})"


@dataclass(frozen=True)
class MapType:
    """A map with string keys; values may be null unless ``values_nullable`` is false."""

    values: FieldType
    values_nullable: bool = True

    name = "map"

    def render(self) -> str:
        return f"map<string,{self.values.render()}>"


@dataclass(frozen=True)
class ArrayType:
    items: FieldType
    items_nullable: bool = True

    name = "array"

    def render(self) -> str:
        return f"array<{self.items.render()}>"


@dataclass(frozen=True)
class StructType:
    fields: tuple[Field, ...]

    name = "struct"

    def render(self) -> str:
        inner = ",".join(f"{f.name}:{f.type.render()}" for f in self.fields)
        return f"struct<{inner}>"


FieldType = PrimitiveType | DecimalType | MapType | ArrayType | StructType

# A sentinel distinguishing "no default given" from "default: null".
NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "NO_DEFAULT"})()


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    nullable: bool = True
    default: Any = NO_DEFAULT
    doc: str | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    @property
    def effective_default(self) -> tuple[bool, Any]:
        """(has a default for schema resolution, the value).

        A nullable field without an explicit default defaults to null (contract rule).
        """
        if self.has_default:
            return True, self.default
        if self.nullable:
            return True, None
        return False, None


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def get(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None
