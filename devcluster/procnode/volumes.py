"""Pod volumes as local directories.

Processes share the host's filesystem, so each volume becomes a directory under the pod's
state directory: ``emptyDir`` empty, ``configMap``/``secret``/``projected`` filled with
their keys (the ServiceAccount token of the injected ``kube-api-access-*`` volume comes from
the TokenRequest API), ``hostPath`` the host path itself. Other kinds (PVCs, ...) get an
empty directory and a warning in the node's log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .envresolve import ContainerConfigError, Lookup, field_value

Obj = dict[str, Any]
TokenMaker = Callable[[str, list[str], int], str]  # (service account, audiences, seconds)

log = logging.getLogger("procnode.volumes")


def _write_items(target: Path, data: Mapping[str, str], items: list[Obj] | None) -> None:
    if items:
        wanted = {str(i["key"]): str(i.get("path") or i["key"]) for i in items}
    else:
        wanted = {k: k for k in data}
    for key, rel in wanted.items():
        if key not in data:
            raise ContainerConfigError(f"key {key} not found")
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data[key])


def _keyed_source(
    target: Path, kind: str, source: Obj, namespace: str, lookup: Lookup, *, ref_field: str
) -> None:
    name = source.get(ref_field) or source.get("name", "")
    data = lookup(kind, namespace, name)
    if data is None:
        if source.get("optional"):
            return
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found in namespace {namespace}')
    _write_items(target, data, source.get("items"))


def _projected(
    target: Path, pod: Obj, sources: list[Obj], lookup: Lookup, token: TokenMaker
) -> None:
    namespace = pod["metadata"]["namespace"]
    for src in sources:
        if "configMap" in src:
            _keyed_source(
                target, "ConfigMap", src["configMap"], namespace, lookup, ref_field="name"
            )
        elif "secret" in src:
            _keyed_source(target, "Secret", src["secret"], namespace, lookup, ref_field="name")
        elif "downwardAPI" in src:
            for item in src["downwardAPI"].get("items") or []:
                if "fieldRef" in item:
                    path = target / item["path"]
                    path.write_text(field_value(pod, item["fieldRef"]["fieldPath"]))
        elif "serviceAccountToken" in src:
            sat = src["serviceAccountToken"]
            audiences = [sat["audience"]] if sat.get("audience") else []
            account = pod["spec"].get("serviceAccountName") or "default"
            try:
                value = token(account, audiences, int(sat.get("expirationSeconds") or 3600))
            except Exception as exc:
                log.warning("token for %s/%s not issued: %s", namespace, account, exc)
                continue
            (target / sat.get("path", "token")).write_text(value)


def prepare_volumes(pod: Obj, pod_dir: Path, lookup: Lookup, token: TokenMaker) -> dict[str, str]:
    """Create every volume of the pod; return volume name -> local directory."""
    namespace = pod["metadata"]["namespace"]
    local: dict[str, str] = {}
    for vol in pod["spec"].get("volumes") or []:
        name = vol["name"]
        if "hostPath" in vol:
            local[name] = vol["hostPath"]["path"]
            continue
        target = pod_dir / "volumes" / name
        target.mkdir(parents=True, exist_ok=True)
        local[name] = str(target)
        try:
            if "configMap" in vol:
                _keyed_source(
                    target, "ConfigMap", vol["configMap"], namespace, lookup, ref_field="name"
                )
            elif "secret" in vol:
                src = vol["secret"]
                _keyed_source(target, "Secret", src, namespace, lookup, ref_field="secretName")
            elif "projected" in vol:
                _projected(target, pod, vol["projected"].get("sources") or [], lookup, token)
            elif "emptyDir" not in vol:
                log.warning("volume %s of pod %s: only a local directory", name, namespace)
        except ContainerConfigError as exc:
            raise ContainerConfigError(f"volume {name}: {exc}") from exc
    return local


def mount_map(container: Obj, volumes: Mapping[str, str]) -> dict[str, str]:
    """Container mount path -> local path, for one container's volumeMounts."""
    mounts: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        base = volumes.get(mount["name"])
        if base is None:
            continue
        sub = mount.get("subPath") or ""
        mounts[mount["mountPath"]] = str(Path(base) / sub) if sub else base
    return mounts
