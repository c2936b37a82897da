"""Building blocks for manifest parsing: who an object is, and field readers whose errors
all read ``Kind namespace/name: spec.field: problem, got value``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lakeop.errors import InvalidSpecError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_LABEL, MAX_SUBDOMAIN = 63, 253
LABEL_RULE = (
    "must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
    "starting and ending with a letter or digit"
)
SUBDOMAIN_RULE = (
    "must be a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', "
    "each dot-separated part starting and ending with a letter or digit"
)


def label_problem(value: object) -> str | None:
    """Why ``value`` is not a DNS-1123 label (namespaces, run ids), else None."""
    if isinstance(value, str) and len(value) <= MAX_LABEL and DNS_LABEL.match(value):
        return None
    return LABEL_RULE


def subdomain_problem(value: object) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (object names), else None.

    These are Kubernetes' own rules for the names lakeop turns into storage paths (claims,
    commits, staging, default locations): no ``/``, no ``..``, nothing a path could escape by.
    """
    if isinstance(value, str) and len(value) <= MAX_SUBDOMAIN and DNS_SUBDOMAIN.match(value):
        return None
    return SUBDOMAIN_RULE


@dataclass(frozen=True)
class ObjectKey:
    """Who a spec came from; used to prefix every error message."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def error(self, path: str, problem: str, value: Any = None, *, show: bool = True) -> Any:
        tail = f", got {value!r}" if show else ""
        return InvalidSpecError(f"{self}: spec.{path}: {problem}{tail}")


def object_key(manifest: Mapping[str, Any], kind: str) -> ObjectKey:
    """Read kind/namespace/name, checking the manifest is the expected kind."""
    if not isinstance(manifest, Mapping):
        raise InvalidSpecError(f"{kind}: manifest must be a mapping, got {type(manifest).__name__}")
    meta = manifest.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise InvalidSpecError(f"{kind}: metadata must be a mapping, got {meta!r}")
    name = meta.get("name")
    namespace = meta.get("namespace") or "default"
    if not isinstance(name, str) or not name:
        raise InvalidSpecError(f"{kind} {namespace}/?: metadata.name: required, got {name!r}")
    if label_problem(namespace):
        raise InvalidSpecError(
            f"{kind} {namespace}/{name}: metadata.namespace: {LABEL_RULE}, got {namespace!r}"
        )
    if subdomain_problem(name):
        raise InvalidSpecError(
            f"{kind} {namespace}/{name}: metadata.name: {SUBDOMAIN_RULE}, got {name!r}"
        )
    key = ObjectKey(kind, str(namespace), name)
    got = manifest.get("kind", kind)
    if got != kind:
        raise InvalidSpecError(f"{key}: kind: expected {kind}, got {got!r}")
    return key


def spec_of(manifest: Mapping[str, Any], key: ObjectKey) -> Mapping[str, Any]:
    spec = manifest.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidSpecError(f"{key}: spec: required mapping, got {spec!r}")
    return spec


def choice(
    key: ObjectKey,
    spec: Mapping[str, Any],
    path: str,
    allowed: tuple[str, ...],
    default: str,
    *,
    prefix: str = "",
) -> str:
    value = spec.get(path, default)
    if value not in allowed:
        raise key.error(prefix + path, f"must be one of {', '.join(allowed)}", value)
    return str(value)


def int_field(
    key: ObjectKey, spec: Mapping[str, Any], path: str, default: int, minimum: int
) -> int:
    value = spec.get(path, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise key.error(path, f"must be an integer >= {minimum}", value)
    return value


def opt_str(key: ObjectKey, spec: Mapping[str, Any], path: str, prefix: str = "") -> str | None:
    value = spec.get(path)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise key.error(prefix + path, "must be a non-empty string", value)
    return value


def ref_name(key: ObjectKey, spec: Mapping[str, Any], path: str, what: str) -> str:
    """A required reference to another object by name (``tableRef``), a DNS-1123 subdomain."""
    value = spec.get(path)
    if not isinstance(value, str) or not value:
        raise key.error(path, f"required {what} name", value)
    if subdomain_problem(value):
        raise key.error(path, SUBDOMAIN_RULE, value)
    return value


def secret_name(key: ObjectKey, spec: Mapping[str, Any], path: str, prefix: str = "") -> str | None:
    ref = spec.get(path)
    if ref is None:
        return None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        raise key.error(prefix + path, "must be {name: <secret name>}", ref)
    return name
