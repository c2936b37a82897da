"""The node itself: registration, heartbeats, scheduling, and the pod watch.

The node binds every pending pod meant for the default scheduler whose nodeSelector matches
its labels to itself (with DEVCLUSTER_NODE=process there is no kube-scheduler; otherwise
kube-scheduler may bind the same pod to this node first, and the node's 409 is ignored).
It watches all pods (a list, then a watch that ends every few minutes and starts over with
a fresh list, so a missed event is repaired), starts a ``PodRuntime`` for each pod bound to
it, and on deletion stops the processes and removes the object the way the kubelet does:
terminal phase first, then a delete with grace 0 (finalizers such as the job controller's
``batch.kubernetes.io/job-tracking`` are left to their owners).
"""

from __future__ import annotations

import contextlib
import logging
import platform
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from . import status as st
from .kubeapi import ApiException
from .runtime import NodeContext, PodRuntime, signal_group

Obj = dict[str, Any]
log = logging.getLogger("procnode.node")

LEASE_SECONDS = 40
HEARTBEAT_SECONDS = 10
NODE_STATUS_SECONDS = 60
WATCH_SECONDS = 300
TERMINAL = ("Succeeded", "Failed")


class ProcNode:
    def __init__(
        self,
        ctx: NodeContext,
        kubelet_version: str,
        *,
        schedule: bool = True,
        kubelet_port: int = 0,
    ) -> None:
        self.schedule = schedule
        self.kubelet_port = kubelet_port
        self.ctx = ctx
        self.api = ctx.api
        self.name = ctx.node_name
        self.kubelet_version = kubelet_version
        self.labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
            "devcluster.lakeop.io/process-node": "true",
        }
        self.runtimes: dict[str, PodRuntime] = {}
        self.finalizing: set[str] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    # node object
    def _node_status(self) -> Obj:
        ready = st.condition("Ready", True, "KubeletReady")
        ready["message"] = "process node is posting ready status"
        ready["lastHeartbeatTime"] = st.now()
        conds = [ready]
        for kind, reason in (
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
        ):
            cond = st.condition(kind, False, reason)
            cond["lastHeartbeatTime"] = st.now()
            conds.append(cond)
        return {
            "capacity": dict(self.ctx.allocatable),
            "allocatable": dict(self.ctx.allocatable),
            "conditions": conds,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "devcluster process node",
                "containerRuntimeVersion": "process://1",
                "kubeletVersion": self.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": self.labels["kubernetes.io/arch"],
            },
        }

    def register(self) -> None:
        try:
            self.api.get_node(self.name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.api.create_node({"metadata": {"name": self.name, "labels": self.labels}})
            log.info("node %s registered", self.name)
        self.api.patch_node_status(self.name, {"status": self._node_status()})
        self._renew_lease()

    def _renew_lease(self) -> None:
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": st.now().replace("Z", ".000000Z"),
        }
        self.api.renew_lease("kube-node-lease", self.name, spec)

    def heartbeat_loop(self) -> None:
        since_status = 0
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                self._renew_lease()
                since_status += HEARTBEAT_SECONDS
                if since_status >= NODE_STATUS_SECONDS:
                    self.register()  # re-creates the Node if someone deleted it
                    since_status = 0
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)

    # pods
    def sync_loop(self) -> None:
        while not self.stop.is_set():
            try:
                listing = self.api.list_pods()
                seen = set()
                for pod in listing.get("items", []):
                    seen.add(pod["metadata"]["uid"])
                    self.handle(pod)
                with self.lock:
                    gone = [uid for uid in self.runtimes if uid not in seen]
                for uid in gone:
                    self._forget(uid)
                rv = listing["metadata"]["resourceVersion"]
                for event in self.api.watch_pods(rv, WATCH_SECONDS):
                    if self.stop.is_set():
                        return
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        log.info("watch ended: %s", obj.get("message"))
                        break
                    if kind == "DELETED":
                        self._forget(obj["metadata"]["uid"])
                    elif kind in ("ADDED", "MODIFIED"):
                        self.handle(obj)
            except Exception as exc:
                log.warning("pod sync failed, relisting: %s", exc)
                self.stop.wait(1)

    def handle(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        try:
            if not spec.get("nodeName"):
                if self.schedule and self._schedulable(pod):
                    self.api.bind_pod(meta["namespace"], meta["name"], self.name)
                    log.info("pod %s/%s bound to %s", meta["namespace"], meta["name"], self.name)
                return
            if spec["nodeName"] != self.name:
                return
            with self.lock:
                runtime = self.runtimes.get(uid)
                if meta.get("deletionTimestamp"):
                    if uid in self.finalizing:
                        return
                    self.finalizing.add(uid)
                    threading.Thread(
                        target=self._finalize, args=(pod, runtime), daemon=True
                    ).start()
                    return
                if runtime is not None or pod.get("status", {}).get("phase") in TERMINAL:
                    return
                if _was_started(pod):
                    self._mark_lost(pod)
                    return
                runtime = PodRuntime(self.ctx, pod)
                self.runtimes[uid] = runtime
            log.info("pod %s: starting", runtime)
            runtime.start()
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning(
                    "pod %s/%s: %s %s", meta["namespace"], meta["name"], exc.status, exc.body
                )
        except Exception:
            log.exception("pod %s/%s: handling failed", meta["namespace"], meta["name"])

    def _schedulable(self, pod: Obj) -> bool:
        spec = pod["spec"]
        if pod["metadata"].get("deletionTimestamp") or spec.get("schedulingGates"):
            return False
        if (spec.get("schedulerName") or "default-scheduler") != "default-scheduler":
            return False
        if pod.get("status", {}).get("phase", "Pending") != "Pending":
            return False
        selector = spec.get("nodeSelector") or {}
        return all(self.labels.get(k) == v for k, v in selector.items())

    def _mark_lost(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        log.info(
            "pod %s/%s: processes lost with a previous node process",
            meta["namespace"],
            meta["name"],
        )
        status = {
            "phase": "Failed",
            "reason": "NodeRestarted",
            "message": "The process node restarted; the pod's processes are gone",
            "containerStatuses": [st.lost_container(c) for c in spec["containers"]],
        }
        self.api.patch_pod_status(meta["namespace"], meta["name"], status)

    def _finalize(self, pod: Obj, runtime: PodRuntime | None) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        ns, name = meta["namespace"], meta["name"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        try:
            if runtime is not None:
                log.info("pod %s: deleting, grace %ss", runtime, grace)
                runtime.terminate(float(grace))
                runtime.done.wait(float(grace) + 30)
            elif pod.get("status", {}).get("phase") not in TERMINAL:
                self.api.patch_pod_status(ns, name, {"phase": "Failed"})
            self.api.delete_pod_now(ns, name, meta["uid"])
        except Exception:
            log.exception("pod %s/%s: deletion failed", ns, name)
            with self.lock:
                self.finalizing.discard(meta["uid"])

    def _forget(self, uid: str) -> None:
        with self.lock:
            runtime = self.runtimes.pop(uid, None)
            self.finalizing.discard(uid)
        if runtime is not None and not runtime.done.is_set():
            runtime.terminate(0)
        shutil.rmtree(self.ctx.state / "pods" / uid, ignore_errors=True)

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        """Can the container still write output? (for ``kubectl logs -f``)"""
        with self.lock:
            runtimes = list(self.runtimes.values())
        return any(
            r.namespace == namespace and r.name == pod and not r.done.is_set() for r in runtimes
        )

    def kill_leftovers(self) -> None:
        """Process groups recorded by an earlier node process that outlived it."""
        marker = f"DEVNODE_POD_DIR={self.ctx.state / 'pods'}/".encode()
        for path in (self.ctx.state / "run" / "pods").glob("*.pgid"):
            with contextlib.suppress(ValueError, OSError):
                pgid = int(path.read_text())
                environ = Path(f"/proc/{pgid}/environ").read_bytes().split(b"\0")
                if any(item.startswith(marker) for item in environ):  # still one of ours
                    signal_group(pgid, signal.SIGKILL)
            path.unlink(missing_ok=True)

    def shutdown(self, grace: float) -> None:
        with self.lock:
            runtimes = list(self.runtimes.values())
        threads = [threading.Thread(target=r.terminate, args=(grace,)) for r in runtimes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _was_started(pod: Obj) -> bool:
    """Did an earlier node process start this pod's containers?"""
    status = pod.get("status", {})
    if status.get("phase") == "Running":
        return True
    statuses = [
        *(status.get("containerStatuses") or []),
        *(status.get("initContainerStatuses") or []),
    ]
    return any(
        "running" in s.get("state", {}) or "terminated" in s.get("state", {}) for s in statuses
    )
