"""Structural validation of a ``fields`` list against lakeop's JSON meta-schema.

The meta-schema (``core/schema/schemas/fields.schema.json``, shipped as package data) is the one
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
from functools import cache, lru_cache
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


# Keys a type adds to a field besides name/type/nullable/default/doc (as in the meta-schema).
_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "decimal": ("precision", "scale"),
    "map": ("values", "valuesNullable"),
    "array": ("items", "itemsNullable"),
    "struct": ("fields",),
}
_ALL_TYPE_KEYS = frozenset(k for keys in _TYPE_KEYS.values() for k in keys)


@cache
def meta_schema() -> dict[str, Any]:
    """The JSON meta-schema of a SchemaVersion's ``fields`` list."""
    text = resources.files("lakeop.core.schema").joinpath(META_SCHEMA_RESOURCE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(root: str = "#/$defs/fieldList") -> Draft202012Validator:
    schema = dict(meta_schema())
    schema["$ref"] = root
    return Draft202012Validator(schema)


def field_problems(raw: Any, path: str = "") -> list[str]:
    """Every structural problem of ``raw`` as ``<field path>: <message>``, most relevant first.

    Fields are checked one by one and the verdict is cached by content: the versions of a
    table repeat most of their fields, and jsonschema is the slow part of ``lakeop validate``.
    """
    named = isinstance(raw, list) and raw and all(_named(item) for item in raw)
    if not named:
        return _problems(_validator(), raw, raw, (), path)
    out: list[str] = []
    for item in raw:
        try:
            key = json.dumps(item, sort_keys=True, default=str)
        except TypeError:  # non-string keys deeper down: not cacheable, check it as it is
            out.extend(_problems(_validator("#/$defs/field"), item, [item], (0,), path))
            continue
        out.extend(_item_problems(key, path))
    return out


def _named(item: Any) -> bool:
    """A mapping with string keys and a name: checked alone and cached by its JSON text."""
    return (
        isinstance(item, dict)
        and all(isinstance(k, str) for k in item)
        and isinstance(item.get("name"), str)
        and bool(item["name"])
    )


@lru_cache(maxsize=4096)
def _item_problems(item_json: str, path: str) -> tuple[str, ...]:
    item = json.loads(item_json)
    return tuple(_problems(_validator("#/$defs/field"), item, [item], (0,), path))


def _problems(
    validator: Draft202012Validator, instance: Any, raw: Any, base: tuple[int, ...], path: str
) -> list[str]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    seen: set[str] = set()
    out: list[str] = []
    for error in _leaves(errors):
        msg = _render(error, raw, path, base)
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


def _locate(raw: Any, where: Sequence[Any], prefix: str) -> tuple[str, str | None, Any]:
    """Walk an index path through the instance: (field path, trailing attribute, its owner)."""
    parts: list[str] = [prefix] if prefix else []
    node: Any = raw
    attr: str | None = None
    i = 0
    while i < len(where):
        key = where[i]
        last = i + 1 == len(where)
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
        elif key == "fields" and not last and isinstance(node, dict):
            node = node.get("fields")
        elif (
            key in ("values", "items")
            and isinstance(node, dict)
            and (not last or isinstance(node.get(key), dict))
        ):
            parts.append("<value>" if key == "values" else "<item>")
            node = node.get(key)
        else:
            attr = str(key)
            break
        i += 1
    return ".".join(parts) or "fields", attr, node


def _render(error: ValidationError, raw: Any, prefix: str, base: tuple[int, ...]) -> str | None:
    fpath, attr, owner = _locate(raw, [*base, *error.absolute_path], prefix)
    value = error.instance
    kind = error.validator
    tname = owner.get("type") if isinstance(owner, dict) else None
    for_type = f' for type "{tname}"' if isinstance(tname, str) else ""
    if kind == "not" and isinstance(value, dict):  # keys that belong to another type
        tname = value.get("type")
        own = _TYPE_KEYS.get(tname, ()) if isinstance(tname, str) else ()
        keys = ", ".join(k for k in value if k in _ALL_TYPE_KEYS and k not in own)
        return f'{fpath}: unexpected key(s) {keys} for type "{tname}"'
    if kind == "additionalProperties" and isinstance(value, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        keys = ", ".join(str(k) for k in value if k not in known)
        return f"{fpath}: unexpected key(s) {keys}{for_type}"
    if attr in ("values", "items") and kind != "type":
        fpath, attr = f"{fpath}.{'<value>' if attr == 'values' else '<item>'}", None
    if kind == "enum" and (attr == "type" or attr is None):
        return f'{fpath}: unknown type "{value}"'
    if kind == "required":
        missing = re.findall(r"'([^']+)'", error.message)[:1] or ["?"]
        tname = value.get("type") if isinstance(value, dict) else None
        if missing[0] in ("name", "type") or not isinstance(tname, str):
            return f"{fpath}: missing {missing[0]}"
        return f"{fpath}: {tname} needs {missing[0]}"
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
