"""The few API calls the process node makes, with plain dicts in and out.

The sync ``kubernetes`` client's generated models are slow to build and drop fields they do
not know; the node only needs JSON, so every call asks for the raw response and decodes it
here. This is the only module of the node that touches the client library.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config, watch

Obj = dict[str, Any]
ApiException = client.ApiException

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


def _json(resp: Any) -> Obj:
    data: Obj = json.loads(resp.data)
    return data


class KubeApi:
    def __init__(self, kubeconfig: str) -> None:
        api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        self._api: Any = api
        self.core: Any = client.CoreV1Api(api)
        self.coordination: Any = client.CoordinationV1Api(api)

    def close(self) -> None:
        self._api.close()

    # nodes and leases
    def get_node(self, name: str) -> Obj:
        return _json(self.core.read_node(name, _preload_content=False))

    def create_node(self, body: Obj) -> Obj:
        return _json(self.core.create_node(body, _preload_content=False))

    def patch_node_status(self, name: str, body: Obj) -> None:
        self.core.patch_node_status(name, body, _content_type=STRATEGIC, _preload_content=False)

    def renew_lease(self, namespace: str, name: str, spec: Obj) -> None:
        # Create bodies pass through the client's models, which print MicroTime fields in a
        # format the API server rejects; patch bodies are sent verbatim. So: create bare, patch.
        patch = {"spec": spec}
        try:
            self.coordination.patch_namespaced_lease(
                name, namespace, patch, _content_type=MERGE, _preload_content=False
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {"metadata": {"name": name, "namespace": namespace}, "spec": {}}
            self.coordination.create_namespaced_lease(namespace, body, _preload_content=False)
            self.coordination.patch_namespaced_lease(
                name, namespace, patch, _content_type=MERGE, _preload_content=False
            )

    # pods
    def list_pods(self) -> Obj:
        return _json(self.core.list_pod_for_all_namespaces(_preload_content=False))

    def watch_pods(self, resource_version: str, timeout: int) -> Iterator[Obj]:
        w: Any = watch.Watch()  # type: ignore[no-untyped-call]
        stream: Iterator[Obj] = w.stream(
            self.core.list_pod_for_all_namespaces,
            resource_version=resource_version,
            timeout_seconds=timeout,
            allow_watch_bookmarks=True,
            deserialize=False,
        )
        return stream

    def bind_pod(self, namespace: str, name: str, node: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self.core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)

    def patch_pod_status(self, namespace: str, name: str, status: Obj) -> None:
        self.core.patch_namespaced_pod_status(
            name, namespace, {"status": status}, _content_type=STRATEGIC, _preload_content=False
        )

    def delete_pod_now(self, namespace: str, name: str, uid: str) -> None:
        """Final delete after the processes are gone (what the kubelet does)."""
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        try:
            self.core.delete_namespaced_pod(
                name, namespace, body=body, grace_period_seconds=0, _preload_content=False
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # configuration objects referenced from pods
    def get_data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """Data of a Secret (decoded) or ConfigMap; None when it does not exist."""
        read = (
            self.core.read_namespaced_secret
            if kind == "Secret"
            else self.core.read_namespaced_config_map
        )
        try:
            obj = _json(read(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        if kind == "Secret":
            return {
                k: base64.b64decode(v).decode("utf-8", "replace")
                for k, v in (obj.get("data") or {}).items()
            }
        data: dict[str, str] = dict(obj.get("data") or {})
        return data

    def create_token(self, namespace: str, service_account: str, audiences: list[str]) -> str:
        body: Obj = {"spec": {"audiences": audiences or None, "expirationSeconds": 3600}}
        resp = self.core.create_namespaced_service_account_token(
            service_account, namespace, body, _preload_content=False
        )
        token: str = _json(resp)["status"]["token"]
        return token
