"""lakeop's CRD schemas as JSON Schema validators, for checking manifests offline.

The CRDs' ``openAPIV3Schema`` is the API server's first check of every object; ``lakeop
validate`` runs the same structural check before anything reaches a cluster. OpenAPI v3
differs from JSON Schema in a few keywords, translated here: ``nullable: true`` admits null,
``x-kubernetes-int-or-string`` admits integers and strings, and an object with ``properties``
rejects unknown keys unless ``x-kubernetes-preserve-unknown-fields`` is set (kubectl's
default strict field validation reports unknown fields as errors). CEL rules
(``x-kubernetes-validations``) are not evaluated offline; lakeop's spec parsers cover them.

CRDs are read from ``--crds DIR`` or else from the copy shipped inside the package
(``lakeop/crds``, which in a source checkout is the repository's ``crds/`` folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from lakeop.cli.manifests import ManifestError, find_files, load_file
from lakeop.core.constants import GROUP, VERSION


def packaged_crds_dir() -> Path:
    return Path(str(resources.files("lakeop").joinpath("crds")))


def openapi_to_jsonschema(node: Any) -> Any:
    """Translate an OpenAPI v3 (structural) schema into an equivalent JSON Schema."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "format") or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = openapi_to_jsonschema(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        t = out["type"]
        out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def load_validators(crds_dir: str) -> dict[str, Draft202012Validator]:
    """kind -> validator for lakeop's CRDs found in ``crds_dir`` (the served v1alpha1 schema)."""
    validators: dict[str, Draft202012Validator] = {}
    for path in find_files([crds_dir]):
        for doc in load_file(path):
            body = doc.body
            if not isinstance(body, Mapping) or body.get("kind") != "CustomResourceDefinition":
                continue
            spec = body.get("spec") or {}
            if spec.get("group") != GROUP:
                continue
            kind = (spec.get("names") or {}).get("kind")
            for version in spec.get("versions") or []:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if version.get("name") == VERSION and isinstance(schema, Mapping):
                    validators[str(kind)] = Draft202012Validator(openapi_to_jsonschema(schema))
    if not validators:
        raise ManifestError(f"{crds_dir}: no {GROUP} CustomResourceDefinitions found")
    return validators


def error_path(parts: list[Any]) -> str:
    """``['spec', 'fields', 0, 'type']`` -> ``spec.fields[0].type``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"
