"""A small in-memory stand-in for :class:`lakeop.kube.client.Kube`, the operator's one API edge.

It subclasses ``Kube`` so every method keeps the real signature, holds objects, Jobs, pods,
logs and Secrets in dicts, applies status patches with JSON merge-patch semantics (as the API
server does for custom resources), answers 409-style on a second create, and records every
write in :attr:`FakeKube.calls` so tests can assert on what a handler sent and in which order.
Like the API server, it refuses (HTTP 422, :class:`~lakeop.kube.client.JobRejectedError`) a Job
whose container mounts two volumes at one path, and whatever :attr:`FakeKube.refuse_jobs` says.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.constants import INGESTION_JOBS, SCHEMA_VERSIONS, TABLES
from lakeop.kube.client import JobRejectedError, Kube

KINDS = {TABLES: "Table", SCHEMA_VERSIONS: "SchemaVersion", INGESTION_JOBS: "IngestionJob"}


def merge_patch(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386: ``None`` removes a key, dicts merge, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping):  # into an empty object when there is none: nulls drop
            if not isinstance(target.get(key), dict):
                target[key] = {}
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def invalid_job(manifest: Mapping[str, Any]) -> str | None:
    """The API server's validation that lakeop's Jobs could fail: unique mount paths."""
    containers = manifest["spec"]["template"]["spec"]["containers"]
    for c, container in enumerate(containers):
        seen: set[str] = set()
        for m, mount in enumerate(container.get("volumeMounts") or []):
            path = str(mount.get("mountPath"))
            if path in seen:
                return (
                    f'Job.batch "{manifest["metadata"]["name"]}" is invalid: '
                    f"spec.template.spec.containers[{c}].volumeMounts[{m}].mountPath: "
                    f'Invalid value: "{path}": must be unique'
                )
            seen.add(path)
    return None


def matches(labels: Mapping[str, str], selector: str) -> bool:
    """``k=v,k2=v2`` equality selectors, the only kind lakeop sends."""
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


@dataclass
class Call:
    verb: str  # patch_status, create_job, delete_job
    kind: str  # plural or "jobs"
    namespace: str
    name: str
    body: Any = None


@dataclass
class FakeKube(Kube):
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    #: the API server's message refusing a Job (HTTP 422), or None to create it
    refuse_jobs: Callable[[Mapping[str, Any]], str | None] = lambda _manifest: None

    # -- test set-up and inspection -------------------------------------------------------

    def put(self, plural: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(dict(obj))
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        stored.setdefault("apiVersion", "lakeop.io/v1alpha1")
        stored.setdefault("kind", KINDS.get(plural, plural))
        self.objects[(plural, meta["namespace"], meta["name"])] = stored
        return stored

    def obj(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[(plural, namespace, name)]

    def status(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return dict(self.obj(plural, namespace, name).get("status") or {})

    def writes(self, verb: str, kind: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.verb == verb and kind in (None, c.kind)]

    def put_job(self, job: Mapping[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(dict(job))
        meta = stored["metadata"]
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        self.jobs[(meta["namespace"], meta["name"])] = stored
        return stored

    def finish_job(self, namespace: str, name: str, *, succeeded: bool, at: str) -> None:
        kind = "Complete" if succeeded else "Failed"
        status = self.jobs[(namespace, name)].setdefault("status", {})
        status["conditions"] = [
            {"type": kind, "status": "True", "lastTransitionTime": at, "message": kind}
        ]
        if succeeded:
            status["completionTime"] = at

    # -- the Kube interface -----------------------------------------------------------------

    async def close(self) -> None:
        return None

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((plural, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def list_objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (p, ns, _), o in self.objects.items()
            if (p, ns) == (plural, namespace)
        ]

    async def list_all_objects(self, plural: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (p, _, _), o in self.objects.items() if p == plural]

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> bool:
        self.calls.append(
            Call("patch_status", plural, namespace, name, copy.deepcopy(dict(status)))
        )
        found = self.objects.get((plural, namespace, name))
        if found is None:
            return False
        merge_patch(found, {"status": dict(status)})
        return True

    async def create_job(self, manifest: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        meta = manifest["metadata"]
        key = (meta["namespace"], meta["name"])
        self.calls.append(Call("create_job", "jobs", *key, copy.deepcopy(dict(manifest))))
        refused = self.refuse_jobs(manifest) or invalid_job(manifest)
        if refused:
            name = f"{key[0]}/{key[1]}"
            raise JobRejectedError(f"the API server refused Job {name} (HTTP 422): {refused}")
        if key in self.jobs:
            return False, copy.deepcopy(self.jobs[key])
        return True, copy.deepcopy(self.put_job(manifest))

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.jobs.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(Call("delete_job", "jobs", namespace, name))
        self.jobs.pop((namespace, name), None)

    async def list_jobs(self, label_selector: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(j)
            for j in self.jobs.values()
            if matches(j["metadata"].get("labels") or {}, label_selector)
        ]

    async def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(p)
            for p in self.pods
            if p["metadata"]["namespace"] == namespace
            and matches(p["metadata"].get("labels") or {}, label_selector)
        ]

    async def pod_log(self, namespace: str, name: str, tail_lines: int = 50) -> str:
        return self.logs.get((namespace, name), "")

    async def read_secret(self, namespace: str, name: str, prefix: str = "") -> dict[str, str]:
        return {prefix + k: v for k, v in self.secrets[(namespace, name)].items()}
