"""Structural validation of a ``fields`` list against lakeop's JSON meta-schema.

The meta-schema (``core/schemas/fields.schema.json``, shipped as package data) is the one
written definition of the field language; editors and other tools can use it too. jsonschema
reports errors as index paths (``[1, 'fields', 0, 'type']``); this module turns them into
field paths users recognise (``device.os: unknown type "strng"``) so the same message can land
in a SchemaVersion's status, a webhook refusal and the CLI.

Reading the bundled JSON file is the only file access here: it is part of the package, read
once and cached, never user data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from lakeop.errors import InvalidSchemaError

META_SCHEMA_RESOURCE = "schemas/fields.schema.json"
MAX_REPORTED = 10

_TYPE_WORDS = {
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "object": "a mapping",
    "array": "a list",
}


# Keys a type adds to a field besides name/type/nullable/default/doc.
_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "decimal": ("precision", "scale"),
    "map": ("values", "valuesNullable"),
    "array": ("items", "itemsNullable"),
    "struct": ("fields",),
}


@cache
def meta_schema() -> dict[str, Any]:
    """The JSON meta-schema of a SchemaVersion's ``fields`` list."""
    text = resources.files("lakeop.core").joinpath(META_SCHEMA_RESOURCE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(meta_schema())


def field_problems(raw: Any, path: str = "") -> list[str]:
    """Every structural problem of ``raw`` as ``<field path>: <message>``, most relevant first."""
    errors = sorted(_validator().iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    seen: set[str] = set()
    out: list[str] = []
    for error in _leaves(errors):
        msg = _render(error, raw, path)
        if msg is not None and msg not in seen:
            seen.add(msg)
            out.append(msg)
    return out


def validate_fields(raw: Any, path: str = "") -> None:
    """Raise :class:`InvalidSchemaError` listing the structural problems of ``raw``, if any."""
    problems = field_problems(raw, path)
    if problems:
        shown = problems[:MAX_REPORTED]
        more = len(problems) - len(shown)
        suffix = f"; and {more} more" if more else ""
        raise InvalidSchemaError("; ".join(shown) + suffix)


def _leaves(errors: Iterable[ValidationError]) -> Iterable[ValidationError]:
    # if/then failures carry their causes in ``context``; report the specific ones.
    for error in errors:
        if error.context:
            yield from _leaves(error.context)
        else:
            yield error


def _locate(raw: Any, where: Sequence[Any], prefix: str) -> tuple[str, str | None]:
    """Walk an index path through the instance: (field path, trailing attribute)."""
    parts: list[str] = [prefix] if prefix else []
    node: Any = raw
    attr: str | None = None
    i = 0
    while i < len(where):
        key = where[i]
        if isinstance(key, int) and isinstance(node, list):
            item = node[key] if key < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name:
                parts.append(name)
            elif parts:
                parts[-1] = f"{parts[-1]}[{key}]"
            else:
                parts.append(f"fields[{key}]")
            node = item
        elif key == "fields" and i + 1 < len(where) and isinstance(node, dict):
            node = node.get("fields")
        elif key in ("values", "items") and i + 1 < len(where) and isinstance(node, dict):
            parts.append("<value>" if key == "values" else "<item>")
            node = node.get(key)
        else:
            attr = str(key)
            if key in ("values", "items"):
                parts.append("<value>" if key == "values" else "<item>")
                attr = None
            break
        i += 1
    return ".".join(parts) or "fields", attr


def _render(error: ValidationError, raw: Any, prefix: str) -> str | None:
    fpath, attr = _locate(raw, list(error.absolute_path), prefix)
    value = error.instance
    kind = error.validator
    if kind == "enum" and (attr == "type" or attr is None):
        return f'{fpath}: unknown type "{value}"'
    if kind == "required":
        missing = re.findall(r"'([^']+)'", error.message)[:1] or ["?"]
        tname = value.get("type") if isinstance(value, dict) else None
        if missing[0] in ("name", "type") or not isinstance(tname, str):
            return f"{fpath}: missing {missing[0]}"
        return f"{fpath}: {tname} needs {missing[0]}"
    if kind == "unevaluatedProperties":
        tname = value.get("type") if isinstance(value, dict) else None
        # A key of the right type whose value failed is reported by its own error.
        allowed = _TYPE_KEYS.get(tname, ()) if isinstance(tname, str) else ()
        found = re.findall(r"'([^']+)'", error.message)
        keys = ", ".join(k for k in found if k not in allowed)
        if not keys:
            return None
        for_type = f' for type "{tname}"' if isinstance(tname, str) else ""
        return f"{fpath}: unexpected key(s) {keys}{for_type}"
    what = f"{attr} " if attr else ""
    if kind == "type":
        expected = error.validator_value
        words = (
            " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected)
            if isinstance(expected, list)
            else _TYPE_WORDS.get(str(expected), str(expected))
        )
        if attr is None and expected == "object":
            return f"{fpath}: a field must be a mapping, got {value!r}"
        return f"{fpath}: {what}must be {words}, got {value!r}"
    if kind in ("minimum", "maximum"):
        bound = ">=" if kind == "minimum" else "<="
        return f"{fpath}: {what}must be {bound} {error.validator_value}, got {value!r}"
    if kind == "pattern":
        return (
            f"{fpath}: invalid field name {value!r} (letters, digits and underscores, "
            "not starting with a digit)"
        )
    if kind == "minItems":
        return f"{fpath}: needs at least one field"
    return f"{fpath}: {what}{error.message}"
