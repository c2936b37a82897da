"""``lakeop schema check`` and ``lakeop schema diff``: the compatibility verdict, offline.

The same pure functions the operator and its webhook use (:mod:`lakeop.core.schema.compat`,
:mod:`lakeop.core.schema.diff`), applied to files, so a change can be checked before it is pushed.
FILEs are SchemaVersion manifests or bare documents holding ``fields:`` (or just the list),
in version order; the last one is the candidate. Exit codes: 0 compatible, 1 incompatible,
2 invalid schema or usage.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lakeop.cli.manifests import Document, ManifestError, load_file
from lakeop.core.schema.compat import CompatibilityMode, check_compatibility, parse_mode
from lakeop.core.schema.diff import diff_schemas
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.errors import InvalidSchemaError, InvalidSpecError

EXIT_OK, EXIT_INCOMPATIBLE, EXIT_INVALID = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="check the last FILE against the others under a compatibility mode",
        description="FILEs are SchemaVersion manifests (or bare `fields:` documents) in version "
        "order; the last is the candidate. Exit 0 compatible, 1 incompatible, 2 invalid.",
    )
    check.add_argument(
        "--mode",
        default=CompatibilityMode.BACKWARD.value,
        help="compatibility mode: "
        + ", ".join(m.value for m in CompatibilityMode)
        + " (default: BACKWARD)",
    )
    check.add_argument("--output", choices=["text", "json"], default="text")
    check.add_argument("files", nargs="+", metavar="FILE")
    diff = sub.add_parser("diff", help="show what changed between two schema versions")
    diff.add_argument("--output", choices=["text", "json"], default="text")
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")


@dataclass(frozen=True)
class Version:
    source: str  # "path" or "path#2" for the third document of a file
    number: int | None  # spec.version when the document is a SchemaVersion
    schema: Schema


def _fields_of(body: Any) -> Any:
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        spec = body.get("spec")
        if isinstance(spec, Mapping) and "fields" in spec:
            return spec["fields"]
        if "fields" in body:
            return body["fields"]
    return None


def _version_of(doc: Document, many: bool) -> Version | None:
    fields = _fields_of(doc.body)
    if fields is None:
        return None
    source = f"{doc.path}#{doc.index}" if many else doc.path
    prefix = f"{source}: {doc.label}" if doc.is_lakeop else source
    try:
        schema = parse_fields(fields)
    except InvalidSchemaError as e:
        raise InvalidSchemaError(f"{prefix}: fields: {e}") from e
    number = None
    spec = doc.body.get("spec") if isinstance(doc.body, Mapping) else None
    if isinstance(spec, Mapping):
        v = spec.get("version")
        number = v if isinstance(v, int) and not isinstance(v, bool) else None
    return Version(source, number, schema)


def load_versions(paths: list[str]) -> list[Version]:
    """The schema versions held by ``paths``, in order; raises on unreadable or invalid files."""
    versions: list[Version] = []
    for path in paths:
        docs = load_file(path)
        found = [v for d in docs if (v := _version_of(d, len(docs) > 1)) is not None]
        if not found:
            raise InvalidSchemaError(f"{path}: no SchemaVersion or `fields:` document found")
        versions.extend(found)
    return versions


def _numbered(versions: list[Version]) -> list[tuple[int, Schema]]:
    """Use spec.version numbers when all are present and increasing, else positions (1..n)."""
    numbers = [v.number for v in versions]
    if all(n is not None for n in numbers):
        ints = [n for n in numbers if n is not None]
        if all(a < b for a, b in itertools.pairwise(ints)):
            return list(zip(ints, (v.schema for v in versions), strict=True))
    return [(i + 1, v.schema) for i, v in enumerate(versions)]


def run(args: argparse.Namespace) -> int:
    if args.schema_command == "diff":
        return _diff(args.old, args.new, args.output)
    return _check(args.files, args.mode, args.output)


def _check(files: list[str], mode_arg: str, output: str) -> int:
    try:
        mode = parse_mode(mode_arg)
        versions = _numbered(load_versions(files))
    except (InvalidSpecError, InvalidSchemaError, ManifestError) as e:
        print(f"lakeop schema check: {e}", file=sys.stderr)
        return EXIT_INVALID
    *accepted, (_, candidate) = versions
    result = check_compatibility(candidate, accepted, mode)
    previous = accepted[-1][1] if accepted else Schema(())
    diff = diff_schemas(previous, candidate)
    if output == "json":
        out: dict[str, Any] = {
            "compatible": result.compatible,
            "mode": result.mode,
            "violations": [v.to_dict() for v in result.violations],
            "diff": diff.to_dict(),
        }
        print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        print(result.summary() if result.compatible else f"incompatible under {result.mode}:")
        for v in result.violations:
            against = f" (against v{v.against})" if v.against is not None else ""
            print(f"  {v.message}{against}")
        if accepted:
            print("changes:")
            print("\n".join(f"  {line}" for line in diff.render().splitlines()))
    return EXIT_OK if result.compatible else EXIT_INCOMPATIBLE


def _diff(old: str, new: str, output: str) -> int:
    try:
        versions = load_versions([old, new])
    except (InvalidSchemaError, ManifestError) as e:
        print(f"lakeop schema diff: {e}", file=sys.stderr)
        return EXIT_INVALID
    diff = diff_schemas(versions[0].schema, versions[-1].schema)
    if output == "json":
        print(json.dumps(diff.to_dict(), ensure_ascii=False, default=str))
    else:
        print(diff.render())
    return EXIT_OK
