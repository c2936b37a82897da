"""A deliberately small Kubernetes client: the handful of calls the operator makes itself.

kopf watches and patches the object a handler runs for; everything else — reading a
referenced Table, creating a run's Job, reading its pod's termination message, patching a
*different* object's status, reading a storage Secret the operator needs itself — goes
through :class:`Kube`. Responses are plain dicts (camelCase keys, as in manifests), and API
failures become lakeop errors: 404 is ``None``, 409 on create means "already there", anything
else is a :class:`~lakeop.errors.TransientError` so handlers retry instead of crashing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from lakeop.core.constants import GROUP, VERSION
from lakeop.core.spec.secrets import decode_secret_data
from lakeop.errors import InvalidSpecError, TransientError

MERGE_PATCH = "application/merge-patch+json"


class KubeError(TransientError):
    """The API server refused or failed a call; the message names the call and object."""

    reason = "KubernetesApiError"


class JobRejectedError(InvalidSpecError):
    """The API server refused a run's Job as invalid (HTTP 400 or 422): retrying the same Job
    cannot help, so the run is refused (``InvalidSpec``) with the API server's own message."""


#: statuses of a create that says the object itself is wrong, never a passing condition
INVALID = (400, 422)


class Kube:
    """Async API access; create with :meth:`connect`, close with :meth:`close`."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)

    @classmethod
    async def connect(cls) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
        load_incluster: Callable[[], None] = config.load_incluster_config
        try:
            load_incluster()
            api = client.ApiClient()
        except config.ConfigException:
            cfg = client.Configuration()
            await config.load_kube_config(client_configuration=cfg)
            api = client.ApiClient(configuration=cfg)
        return cls(api)

    async def close(self) -> None:
        await self._api.close()

    def _plain(self, obj: Any) -> dict[str, Any]:
        data = self._api.sanitize_for_serialization(obj)
        return data if isinstance(data, dict) else {}

    # -- lakeop objects ---------------------------------------------------------------------

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _error(exc, f"get {plural} {namespace}/{name}") from exc
        return dict(obj)

    async def list_objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        try:
            result = await self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural
            )
        except ApiException as exc:
            raise _error(exc, f"list {plural} in {namespace}") from exc
        return [dict(item) for item in result.get("items", [])]

    async def list_all_objects(self, plural: str) -> list[dict[str, Any]]:
        """Objects of a lakeop kind in every namespace."""
        try:
            result = await self._custom.list_cluster_custom_object(GROUP, VERSION, plural)
        except ApiException as exc:
            raise _error(exc, f"list {plural} in all namespaces") from exc
        return [dict(item) for item in result.get("items", [])]

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> bool:
        """Merge-patch another object's status; False when the object is gone."""
        try:
            # A dict body would be sent as a strategic merge patch, which custom resources
            # do not support: force JSON merge-patch.
            options: dict[str, Any] = {"_content_type": MERGE_PATCH}
            await self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, {"status": dict(status)}, **options
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _error(exc, f"patch status of {plural} {namespace}/{name}") from exc
        return True

    # -- Jobs and pods ----------------------------------------------------------------------

    async def create_job(self, manifest: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Create a Job; ``(False, existing)`` when one with that name exists (HTTP 409);
        :class:`JobRejectedError` when the API server refuses it as invalid (HTTP 400, 422)."""
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            # The generated client serialises a plain dict body as is (it is typed V1Job).
            body: dict[str, Any] = {"body": dict(manifest)}
            job = await self._batch.create_namespaced_job(namespace, **body)
            return True, self._plain(job)
        except ApiException as exc:
            if exc.status in INVALID:
                raise JobRejectedError(
                    f"the API server refused Job {namespace}/{name} "
                    f"(HTTP {exc.status}): {api_message(exc)}"
                ) from exc
            if exc.status != 409:
                raise _error(exc, f"create Job {namespace}/{name}") from exc
        existing = await self.get_job(namespace, name)
        if existing is None:
            raise KubeError(f"Job {namespace}/{name} conflicts but cannot be read", delay=2)
        return False, existing

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._plain(await self._batch.read_namespaced_job(name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _error(exc, f"get Job {namespace}/{name}") from exc

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and (in the background) its pods; gone already is fine."""
        try:
            await self._batch.delete_namespaced_job(
                name, namespace, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise _error(exc, f"delete Job {namespace}/{name}") from exc

    async def list_jobs(self, label_selector: str) -> list[dict[str, Any]]:
        """Jobs matching the selector in every namespace."""
        try:
            result = await self._batch.list_job_for_all_namespaces(label_selector=label_selector)
        except ApiException as exc:
            raise _error(exc, f"list Jobs {label_selector}") from exc
        return [self._plain(j) for j in result.items]

    async def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        try:
            result = await self._core.list_namespaced_pod(namespace, label_selector=label_selector)
        except ApiException as exc:
            raise _error(exc, f"list pods {namespace} {label_selector}") from exc
        return [self._plain(p) for p in result.items]

    async def pod_log(self, namespace: str, name: str, tail_lines: int = 50) -> str:
        try:
            text = await self._core.read_namespaced_pod_log(name, namespace, tail_lines=tail_lines)
        except ApiException as exc:
            if exc.status in (400, 404):
                return ""
            raise _error(exc, f"read log of pod {namespace}/{name}") from exc
        return str(text or "")

    # -- Secrets (only those the operator itself must use) ----------------------------------

    async def read_secret(self, namespace: str, name: str, prefix: str = "") -> dict[str, str]:
        """A Secret's keys, decoded, as env-style names (``prefix + key``); never logged."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            raise _error(exc, f"read Secret {namespace}/{name}") from exc
        data = decode_secret_data(namespace, name, secret.data or {})
        return {prefix + k: v for k, v in data.items()}


def job_outcome(job: Mapping[str, Any]) -> tuple[bool | None, str]:
    """(True, "") succeeded, (False, message) failed, (None, "") still running."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        # Complete/Failed, not SuccessCriteriaMet/FailureTarget: only the final conditions
        # guarantee the pod has terminated and left its termination message.
        if cond.get("type") == "Complete":
            return True, ""
        if cond.get("type") == "Failed":
            return False, str(cond.get("message") or cond.get("reason") or "Job failed")
    return None, ""


def api_message(exc: ApiException) -> str:
    """The ``message`` of the Status object the API server answered with, else its reason."""
    try:
        status = json.loads(exc.body or "")
    except (TypeError, ValueError):
        status = None
    message = status.get("message") if isinstance(status, dict) else None
    return str(message or exc.reason or "no message")


def _error(exc: ApiException, what: str) -> KubeError:
    delay = 30.0 if exc.status in (401, 403) else 5.0
    return KubeError(f"{what}: HTTP {exc.status} {exc.reason}", delay=delay)
