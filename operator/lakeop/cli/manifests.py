"""Reading YAML manifests from files and folders, for the offline commands.

``lakeop schema``, ``lakeop validate`` and ``lakeop ingest -f`` read what a GitOps repository
holds: multi-document YAML files (and JSON, which is YAML) in nested folders, through the one
:func:`find_files` / :func:`load_file` pair, so they all see the same objects. Each
document keeps where it came from (file and position) so every problem can be reported as
``path: Kind ns/name: field: message``. Only PyYAML is imported here, so the commands stay
quick enough for a pre-commit hook.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lakeop.core.constants import GROUP

#: what a folder contributes; hidden folders (``.git``, ``.github``...) are skipped
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# the libyaml-backed loader is several times faster, where PyYAML was built with it
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Document:
    path: str  # as given or found, for messages
    index: int  # position in a multi-document file, from 0
    body: Any

    @property
    def is_lakeop(self) -> bool:
        api = self.body.get("apiVersion") if isinstance(self.body, Mapping) else None
        return isinstance(api, str) and api.split("/", 1)[0] == GROUP

    @property
    def kind(self) -> str:
        kind = self.body.get("kind") if isinstance(self.body, Mapping) else None
        return kind if isinstance(kind, str) else "?"

    @property
    def namespace(self) -> str:
        """The object's namespace; ``default`` when unset, as kubectl would apply it."""
        meta = self.body.get("metadata") if isinstance(self.body, Mapping) else None
        ns = meta.get("namespace") if isinstance(meta, Mapping) else None
        return ns if isinstance(ns, str) and ns else "default"

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") if isinstance(self.body, Mapping) else None
        name = meta.get("name") if isinstance(meta, Mapping) else None
        return name if isinstance(name, str) and name else "?"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class ManifestError(Exception):
    """A file that cannot be read or parsed; the message names the file (and, for YAML,
    the line and column: ``where``), ``detail`` is the message after it."""

    def __init__(self, message: str, where: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.where = where
        self.detail = detail


def find_files(paths: Iterable[str]) -> list[str]:
    """Files given directly, plus ``*.yaml``/``*.yml``/``*.json`` under folders (sorted per
    folder; hidden folders skipped).

    Raises ManifestError for a path that does not exist.
    """
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found: list[str] = []
            for root, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found.extend(os.path.join(root, f) for f in files if f.endswith(MANIFEST_SUFFIXES))
            out.extend(sorted(found))
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise ManifestError(f"{p}: no such file or directory")
    return out


def yaml_problem(path: str, error: yaml.YAMLError) -> ManifestError:
    """``path:line:column: invalid YAML: problem`` (lines and columns from 1), one line; PyYAML's
    own text names ``<unicode string>`` instead of the file."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    text = ", ".join(str(p) for p in (context, problem) if p) if problem else str(error)
    detail = f"invalid YAML: {text}".replace("\n", " ")
    return ManifestError(f"{where}: {detail}", where, detail)


def load_file(path: str) -> list[Document]:
    """Every non-empty YAML document of ``path``; raises ManifestError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ManifestError(f"{path}: no such file or directory") from e
    except OSError as e:
        raise ManifestError(f"{path}: cannot read: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text: {e.reason}") from e
    try:
        bodies = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise yaml_problem(path, e) from e
    return [Document(path, i, b) for i, b in enumerate(bodies) if b is not None]
