"""``spec.podTemplate``: the user's partial PodTemplateSpec, checked and merged over lakeop's pod.

The template follows the Flink operator's convention: a PodTemplateSpec of which lakeop takes
the fields listed in :data:`POD_FIELDS` and, for the main container named ``ingest``,
:data:`CONTAINER_FIELDS`. Anything else is refused rather than silently dropped, and so is any
attempt to take the run over: another command or args, lakeop's own environment variables
(``LAKEOP_*``, ``HOME``, ``TMPDIR``), lakeop's labels, its scratch volume or mount path, a second
container. :func:`parse_pod_template` is that one rule; ``lakeop validate`` (through
:func:`lakeop.core.spec.resources.parse_ingestion_job`), the webhook and the operator all call it.

:func:`merge_pod_template` lays a parsed template over the pod
:func:`lakeop.core.runs.jobs.build_job`
renders. Lists (volumes, mounts, env, tolerations, imagePullSecrets) are appended to lakeop's;
lakeop's hardening stays unless the template sets that very field (``automountServiceAccountToken``,
a key of the pod's or the container's ``securityContext``): the user then owns it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.constants import (
    ENV_PREFIX,
    LABEL_INGESTION_JOB,
    LABEL_MAINTENANCE,
    LABEL_MANAGED_BY,
    LABEL_RUN,
    LABEL_TABLE,
    LAKE_VOLUME,
    SCRATCH_DIR,
)
from lakeop.core.spec.fields import ObjectKey

MAIN_CONTAINER = "ingest"
SCRATCH_VOLUME = "scratch"
RESERVED_ENV = ("HOME", "TMPDIR")
RESERVED_ENV_PREFIX = ENV_PREFIX
RESERVED_LABELS = (
    LABEL_MANAGED_BY,
    LABEL_INGESTION_JOB,
    LABEL_MAINTENANCE,
    LABEL_TABLE,
    LABEL_RUN,
    "job-name",
)
METADATA_FIELDS = ("labels", "annotations")
POD_FIELDS = (
    "serviceAccountName",
    "automountServiceAccountToken",
    "nodeSelector",
    "tolerations",
    "affinity",
    "volumes",
    "containers",
    "imagePullSecrets",
    "priorityClassName",
    "securityContext",
)
CONTAINER_FIELDS = ("name", "env", "envFrom", "volumeMounts", "securityContext")
# Fields a user may be tempted to set, with where lakeop takes them instead.
_INSTEAD = {
    "command": "the ingest container always runs lakeop's own command",
    "args": "the ingest container always runs lakeop's own command",
    "image": "the image is the operator's LAKEOP_JOB_IMAGE",
    "resources": "set spec.resources instead",
    "initContainers": "only the ingest container is supported",
    "restartPolicy": "lakeop's retries are spec.backoffLimit",
}
PREFIX = "podTemplate."


@dataclass(frozen=True)
class PodTemplate:
    """The parts of ``spec.podTemplate`` lakeop merges; empty values mean "not set"."""

    labels: dict[str, str] = field(default_factory=dict, hash=False)
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    service_account_name: str | None = None
    automount_service_account_token: bool | None = None
    node_selector: dict[str, str] = field(default_factory=dict, hash=False)
    tolerations: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    affinity: dict[str, Any] = field(default_factory=dict, hash=False)
    volumes: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    image_pull_secrets: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    priority_class_name: str | None = None
    pod_security_context: dict[str, Any] = field(default_factory=dict, hash=False)
    env: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    env_from: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    volume_mounts: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    container_security_context: dict[str, Any] = field(default_factory=dict, hash=False)


def parse_pod_template(key: ObjectKey, raw: Any) -> PodTemplate | None:
    """Check ``spec.podTemplate`` and return what lakeop merges (None when absent)."""
    if raw is None:
        return None
    _mapping(key, "podTemplate", raw)
    _only(key, "podTemplate", raw, ("metadata", "spec"))
    meta = _mapping(key, PREFIX + "metadata", raw.get("metadata") or {})
    _only(key, PREFIX + "metadata", meta, METADATA_FIELDS)
    labels = _strings(key, PREFIX + "metadata.labels", meta.get("labels"))
    for name in labels:
        if name in RESERVED_LABELS:
            raise key.error(
                f"{PREFIX}metadata.labels", "is lakeop's own label and cannot be set", name
            )
    annotations = _strings(key, PREFIX + "metadata.annotations", meta.get("annotations"))
    spec = _mapping(key, PREFIX + "spec", raw.get("spec") or {})
    _only(key, PREFIX + "spec", spec, POD_FIELDS)
    sp = PREFIX + "spec."
    volumes = _objects(key, sp + "volumes", spec.get("volumes"))
    names = _names(key, sp + "volumes", volumes)
    if SCRATCH_VOLUME in names:
        raise key.error(sp + "volumes", "the name is lakeop's scratch volume", SCRATCH_VOLUME)
    if LAKE_VOLUME in names:
        raise key.error(sp + "volumes", "the name is lakeop's lake volume", LAKE_VOLUME)
    automount = spec.get("automountServiceAccountToken")
    if automount is not None and not isinstance(automount, bool):
        raise key.error(sp + "automountServiceAccountToken", "must be true or false", automount)
    container = _main_container(key, spec.get("containers"))
    mounts = _objects(key, sp + "containers[0].volumeMounts", container.get("volumeMounts"))
    _check_mounts(key, mounts, set(names))
    env = _objects(key, sp + "containers[0].env", container.get("env"))
    _check_env(key, env)
    env_from = _objects(key, sp + "containers[0].envFrom", container.get("envFrom"))
    for i, source in enumerate(env_from):
        prefix = source.get("prefix", "")
        if isinstance(prefix, str) and prefix.upper().startswith(RESERVED_ENV_PREFIX):
            raise key.error(
                f"{sp}containers[0].envFrom[{i}].prefix",
                f"{RESERVED_ENV_PREFIX}* variables are lakeop's own",
                prefix,
            )
    return PodTemplate(
        labels=labels,
        annotations=annotations,
        service_account_name=_opt_name(key, sp + "serviceAccountName", spec),
        automount_service_account_token=automount,
        node_selector=_strings(key, sp + "nodeSelector", spec.get("nodeSelector")),
        tolerations=tuple(_objects(key, sp + "tolerations", spec.get("tolerations"))),
        affinity=dict(_mapping(key, sp + "affinity", spec.get("affinity") or {})),
        volumes=tuple(volumes),
        image_pull_secrets=tuple(
            _objects(key, sp + "imagePullSecrets", spec.get("imagePullSecrets"))
        ),
        priority_class_name=_opt_name(key, sp + "priorityClassName", spec),
        pod_security_context=dict(
            _mapping(key, sp + "securityContext", spec.get("securityContext") or {})
        ),
        env=tuple(env),
        env_from=tuple(env_from),
        volume_mounts=tuple(mounts),
        container_security_context=dict(
            _mapping(
                key,
                sp + "containers[0].securityContext",
                container.get("securityContext") or {},
            )
        ),
    )


def merge_pod_template(pod: Mapping[str, Any], template: PodTemplate | None) -> dict[str, Any]:
    """``pod`` (``{"metadata": ..., "spec": ...}``, as lakeop builds it) under ``template``."""
    out = copy.deepcopy(dict(pod))
    if template is None:
        return out
    t = template
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**t.labels, **dict(meta.get("labels") or {})}  # lakeop's labels win
    if t.annotations:
        meta["annotations"] = {**dict(meta.get("annotations") or {}), **t.annotations}
    spec = out["spec"]
    if t.service_account_name:
        spec["serviceAccountName"] = t.service_account_name
    if t.automount_service_account_token is not None:
        spec["automountServiceAccountToken"] = t.automount_service_account_token
    if t.priority_class_name:
        spec["priorityClassName"] = t.priority_class_name
    if t.node_selector:
        spec["nodeSelector"] = {**dict(spec.get("nodeSelector") or {}), **t.node_selector}
    if t.affinity:
        spec["affinity"] = copy.deepcopy(t.affinity)
    for name, items in (
        ("tolerations", t.tolerations),
        ("volumes", t.volumes),
        ("imagePullSecrets", t.image_pull_secrets),
    ):
        if items:
            spec[name] = [*spec.get(name, []), *copy.deepcopy(list(items))]
    if t.pod_security_context:
        spec["securityContext"] = {**spec.get("securityContext", {}), **t.pod_security_context}
    (main,) = (c for c in spec["containers"] if c["name"] == MAIN_CONTAINER)
    if t.env:
        main["env"] = [*main.get("env", []), *copy.deepcopy(list(t.env))]
    if t.env_from:
        # the last source wins for a key in several: lakeop's Secrets go last
        main["envFrom"] = [*copy.deepcopy(list(t.env_from)), *main.get("envFrom", [])]
    if t.volume_mounts:
        main["volumeMounts"] = [
            *main.get("volumeMounts", []),
            *copy.deepcopy(list(t.volume_mounts)),
        ]
    if t.container_security_context:
        main["securityContext"] = {
            **main.get("securityContext", {}),
            **t.container_security_context,
        }
    return out


# ---------------------------------------------------------------------------- checks


def _main_container(key: ObjectKey, raw: Any) -> Mapping[str, Any]:
    path = PREFIX + "spec.containers"
    containers = _objects(key, path, raw)
    if not containers:
        return {}
    if len(containers) > 1:
        names = [c.get("name") for c in containers]
        raise key.error(
            path, f"only the one main container, named {MAIN_CONTAINER!r}, is supported", names
        )
    (container,) = containers
    if container.get("name") != MAIN_CONTAINER:
        raise key.error(
            path + "[0].name",
            f"the main container is named {MAIN_CONTAINER!r}",
            container.get("name"),
        )
    _only(key, path + "[0]", container, CONTAINER_FIELDS)
    return container


def _check_mounts(key: ObjectKey, mounts: list[dict[str, Any]], volumes: set[str]) -> None:
    path = PREFIX + "spec.containers[0].volumeMounts"
    seen: set[str] = set()
    for i, mount in enumerate(mounts):
        name, where = mount.get("name"), mount.get("mountPath")
        if not isinstance(name, str) or name not in volumes:
            raise key.error(
                f"{path}[{i}].name", "must name a volume of podTemplate.spec.volumes", name
            )
        if not isinstance(where, str) or not where.startswith("/"):
            raise key.error(f"{path}[{i}].mountPath", "must be an absolute path", where)
        normal = where.rstrip("/") or "/"
        if normal in (SCRATCH_DIR, "/") or normal in seen:
            problem = "is already mounted" if normal in seen else "is lakeop's own mount path"
            raise key.error(f"{path}[{i}].mountPath", problem, where)
        seen.add(normal)


def _check_env(key: ObjectKey, env: list[dict[str, Any]]) -> None:
    path = PREFIX + "spec.containers[0].env"
    seen: set[str] = set()
    for i, var in enumerate(env):
        name = var.get("name")
        if not isinstance(name, str) or not name:
            raise key.error(f"{path}[{i}].name", "required", name)
        if name.upper().startswith(RESERVED_ENV_PREFIX) or name in RESERVED_ENV:
            raise key.error(
                f"{path}[{i}].name",
                f"lakeop sets {RESERVED_ENV_PREFIX}*, {', '.join(RESERVED_ENV)} itself",
                name,
            )
        if name in seen:
            raise key.error(f"{path}[{i}].name", "is given twice", name)
        seen.add(name)


def _only(key: ObjectKey, path: str, raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for name in raw:
        if name not in allowed:
            why = _INSTEAD.get(str(name), f"lakeop takes only {', '.join(allowed)}")
            raise key.error(f"{path}.{name}", f"cannot be set: {why}", raw[name])


def _mapping(key: ObjectKey, path: str, raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise key.error(path, "must be a mapping", raw)
    return raw


def _strings(key: ObjectKey, path: str, raw: Any) -> dict[str, str]:
    values = _mapping(key, path, raw or {})
    for name, value in values.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise key.error(f"{path}.{name}", "must be a string", value)
    return dict(values)


def _objects(key: ObjectKey, path: str, raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        raise key.error(path, "must be a list of mappings", raw)
    return [dict(item) for item in raw]


def _names(key: ObjectKey, path: str, items: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for i, item in enumerate(items):
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise key.error(f"{path}[{i}].name", "required", name)
        if name in names:
            raise key.error(f"{path}[{i}].name", "is given twice", name)
        names.append(name)
    return names


def _opt_name(key: ObjectKey, path: str, spec: Mapping[str, Any]) -> str | None:
    value = spec.get(path.rsplit(".", 1)[1])
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise key.error(path, "must be a non-empty string", value)
    return value
