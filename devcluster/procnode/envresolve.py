"""What a container's process sees: its environment, its command line and its paths.

Pure functions over the pod as a dict, so the rules can be unit-tested without a cluster.
They follow the kubelet: ``envFrom`` first (with ``prefix``; keys that are not valid
variable names are skipped), then ``env`` in order overriding it; ``$(VAR)`` references in
values, ``command`` and ``args`` expand against the variables defined so far (``$$`` escapes);
a missing non-optional Secret, ConfigMap or key is a ``CreateContainerConfigError``.

There are no mount namespaces here, so a container path under a volume's ``mountPath`` (or
equal to its ``terminationMessagePath``) is rewritten to the local directory that stands in
for it, in argv, env values and ``workingDir``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]
# (kind "Secret" | "ConfigMap", namespace, name) -> decoded data, or None when missing
Lookup = Callable[[str, str, str], Mapping[str, str] | None]

POD_IP = "127.0.0.1"
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SUFFIX: dict[str, Decimal | int] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip


class ContainerConfigError(Exception):
    """The container cannot be started as configured (kubelet: CreateContainerConfigError)."""


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: unknown references stay as written, ``$$`` is ``$``."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
        elif value[i + 1] == "$":
            out.append("$")
            i += 2
        elif value[i + 1] == "(":
            close = value.find(")", i + 2)
            if close < 0:
                out.append(value[i:])
                break
            name = value[i + 2 : close]
            out.append(env[name] if name in env else value[i : close + 1])
            i = close + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_quantity(text: str) -> Decimal:
    match = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)", text.strip())
    if not match or (match.group(2) and match.group(2) not in _SUFFIX):
        raise ContainerConfigError(f"invalid resource quantity {text!r}")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:
        raise ContainerConfigError(f"invalid resource quantity {text!r}") from exc
    return number * Decimal(_SUFFIX[match.group(2)]) if match.group(2) else number


def field_value(pod: Obj, path: str) -> str:
    """Value of a downward-API ``fieldRef.fieldPath``."""
    meta = pod.get("metadata", {})
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if keyed:
        return str((meta.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((meta.get(path.split(".")[1]) or {}).items())
        return "\n".join(f'{k}="{v}"' for k, v in items)
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
    }
    if path not in simple:
        raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")
    return str(simple[path] or "")


def resource_value(container: Obj, ref: Obj, allocatable: Mapping[str, str]) -> str:
    """Value of a ``resourceFieldRef`` (limits default to the node's allocatable)."""
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(name)
    if raw is None:
        raw = allocatable.get(name, "0")
    divisor = parse_quantity(str(ref.get("divisor") or "1"))
    if divisor == 0:
        raise ContainerConfigError(f"resourceFieldRef {resource}: divisor must not be 0")
    return str(math.ceil(parse_quantity(str(raw)) / divisor))


def _keyed(lookup: Lookup, namespace: str, kind: str, ref: Obj) -> str | None:
    name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
    data = lookup(kind, namespace, name)
    if data is None:
        if optional:
            return None
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found in namespace {namespace}')
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key]


def resolve_env(
    pod: Obj,
    container: Obj,
    lookup: Lookup,
    service_env: Mapping[str, str] | None = None,
    allocatable: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables the container declares (envFrom then env), expanded, in order."""
    namespace = pod.get("metadata", {}).get("namespace", "")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(field)
            if ref is None:
                continue
            data = lookup(kind, namespace, ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                name = ref.get("name")
                raise ContainerConfigError(
                    f'{kind.lower()} "{name}" not found in namespace {namespace}'
                )
            for key, item in data.items():
                if ENV_NAME.match(prefix + key):
                    env[prefix + key] = item
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var:
            env[name] = expand(str(var["value"]), {**(service_env or {}), **env})
            continue
        source = var.get("valueFrom")
        if not source:
            env[name] = ""
            continue
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in source:
            value = resource_value(container, source["resourceFieldRef"], allocatable or {})
        elif "secretKeyRef" in source:
            value = _keyed(lookup, namespace, "Secret", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _keyed(lookup, namespace, "ConfigMap", source["configMapKeyRef"])
        else:
            raise ContainerConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[name] = value
    return env


class PathMap:
    """Container paths (mount paths, termination message path) -> local paths."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._items = sorted(
            ((k.rstrip("/") or "/", v) for k, v in mapping.items()), key=lambda kv: -len(kv[0])
        )

    def rewrite(self, value: str) -> str:
        for container_path, local in self._items:
            if value == container_path:
                return local
            if value.startswith(container_path + "/"):
                return local + value[len(container_path) :]
        return value


def volume_env_name(volume: str) -> str:
    return "DEVNODE_VOLUME_" + re.sub(r"[^A-Za-z0-9]", "_", volume).upper()


def container_argv(container: Obj, env: Mapping[str, str], paths: PathMap) -> list[str]:
    """``command`` + ``args`` expanded and path-rewritten; there is no image entrypoint."""
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    if not words:
        raise ContainerConfigError(
            f"container {container.get('name')}: no command or args (images are not pulled, "
            "so there is no entrypoint to fall back to)"
        )
    return [paths.rewrite(expand(str(w), env)) for w in words]
