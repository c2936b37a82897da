"""Every property of every CRD explains itself, so ``kubectl explain`` reads like a manual.

The walk covers each schema node a user can reach: ``properties``, array ``items`` and map
``additionalProperties``, down to the leaves. A property needs a description; one with an
``enum`` names every allowed value, and one with a ``default`` says what the default is. A
field added without that fails here with its path. The one exception is the root
``metadata``: the API server refuses a CRD that says anything about it but its type
(``ObjectMeta`` is implicit; ``kubectl explain`` describes it from there).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = sorted((ROOT / "crds").glob("*.lakeop.io.yaml"))


def schemas() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for path in CRDS:
        crd = yaml.safe_load(path.read_text())
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            yield f"{kind}/{version['name']}", version["schema"]["openAPIV3Schema"]


def nodes(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, schema) of every reachable node below ``node``; ``[]`` items, ``{}`` map values."""
    for name, child in (node.get("properties") or {}).items():
        yield f"{path}.{name}", child
        yield from nodes(child, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        child = node.get(key)
        if isinstance(child, Mapping):
            yield path + suffix, child
            yield from nodes(child, path + suffix)


def problems(node: Mapping[str, Any], path: str = "") -> list[str]:
    if path.endswith("/v1alpha1.metadata") and path.count(".") == 1:
        # the API server: "must not specify anything other than name and generateName"
        return [] if set(node) == {"type"} else ["root metadata may only say type: object"]
    text = node.get("description")
    if not isinstance(text, str) or len(text.strip()) < 3:
        return ["no description"]
    out = [f"allowed value {v!r} not named" for v in node.get("enum", []) if str(v) not in text]
    if "default" in node:
        default = node["default"]
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        if "default" not in text.lower() or shown not in text:
            out.append(f"default {default!r} not stated")
    return out


ALL = [(kind, schema) for kind, schema in schemas()]


def test_every_lakeop_crd_is_walked() -> None:
    assert {kind for kind, _ in ALL} == {
        "Table/v1alpha1",
        "SchemaVersion/v1alpha1",
        "IngestionJob/v1alpha1",
    }


@pytest.mark.parametrize(("kind", "schema"), ALL, ids=[kind for kind, _ in ALL])
def test_every_property_has_a_description(kind: str, schema: Mapping[str, Any]) -> None:
    found = [(kind, schema), *nodes(schema, kind)]
    assert len(found) > 30  # the walk reaches the leaves, not just the top level
    bad = [f"{path}: {p}" for path, node in found for p in problems(node, path)]
    assert not bad, "CRD properties that kubectl explain cannot explain:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "string"}, ["no description"]),
        ({"type": "string", "description": " "}, ["no description"]),
        ({"enum": ["a", "b"], "description": "a or c"}, ["allowed value 'b' not named"]),
        ({"default": 3, "description": "retries"}, ["default 3 not stated"]),
        ({"default": False, "description": "Default true"}, ["default False not stated"]),
        ({"enum": ["a"], "default": "a", "description": "only a (default)"}, []),
    ],
)
def test_the_check_itself_catches_gaps(node: Mapping[str, Any], expected: list[str]) -> None:
    assert problems(node) == expected


def test_the_walk_reaches_items_and_map_values() -> None:
    schema = {
        "properties": {
            "a": {"type": "array", "items": {"properties": {"b": {"type": "string"}}}},
            "m": {"additionalProperties": {"type": "string"}},
        }
    }
    assert [path for path, _ in nodes(schema, "X")] == ["X.a", "X.a[]", "X.a[].b", "X.m", "X.m{}"]
