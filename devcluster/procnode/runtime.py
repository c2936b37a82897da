"""One pod's containers as local processes, and the status the kubelet would report.

A ``PodRuntime`` owns a thread that prepares the pod's volumes, runs the init containers one
after another, then the containers side by side, each in its own process group (so a
SIGTERM reaches the whole tree), restarting them as ``restartPolicy`` says. Every state
change is sent to the API server as a strategic-merge patch of ``status`` (conditions merge
by type, so conditions set by controllers such as ``DisruptionTarget`` survive).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import status as st
from .envresolve import (
    POD_IP,
    ContainerConfigError,
    PathMap,
    container_argv,
    resolve_env,
    volume_env_name,
)
from .kubeapi import ApiException, KubeApi
from .volumes import mount_map, prepare_volumes

Obj = dict[str, Any]
log = logging.getLogger("procnode.pod")

CONFIG_RETRY_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 10.0  # the kubelet's crash-loop backoff caps at 5 minutes; tests can't wait


@dataclass
class NodeContext:
    """What a pod runtime needs from its node."""

    api: KubeApi
    root: Path  # repository root: default working directory, home of .venv
    state: Path  # .devcluster
    node_name: str
    api_port: int
    allocatable: Mapping[str, str]

    def pgid_file(self, uid: str, container: str) -> Path:
        return self.state / "run" / "pods" / f"{uid}_{container}.pgid"


@dataclass
class ContainerRun:
    spec: Obj
    log_file: Path
    message_file: Path
    restart_count: int = 0
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    container_id: str = ""
    ever_started: bool = False

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def status(self) -> Obj:
        running = "running" in self.state
        out: Obj = {
            "name": self.name,
            "image": self.spec.get("image") or "none",
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


class PodRuntime:
    def __init__(self, ctx: NodeContext, pod: Obj) -> None:
        meta = pod["metadata"]
        self.ctx = ctx
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir = ctx.state / "pods" / self.uid
        logs = ctx.state / "logs" / "pods"
        self.policy: str = pod["spec"].get("restartPolicy") or "Always"

        def run(c: Obj) -> ContainerRun:
            stem = f"{self.namespace}_{self.name}_{c['name']}"
            msg = self.dir / "containers" / c["name"] / "termination-log"
            return ContainerRun(c, logs / f"{stem}.log", msg)

        self.init = [run(c) for c in pod["spec"].get("initContainers") or []]
        self.main = [run(c) for c in pod["spec"]["containers"]]
        self.volumes: dict[str, str] = {}
        self.phase = "Pending"
        self.reason = ""
        self.message = ""
        self.initialized = not self.init
        self.sandbox_ready = False
        self.start_time = st.now()
        self._conds: dict[str, Obj] = {}
        self._report_lock = threading.Lock()
        self._spawn_lock = threading.Lock()  # no process starts once terminate() has begun
        self.stopping = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pod {self}", daemon=True)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def start(self) -> None:
        self._thread.start()

    # lifecycle
    def _run(self) -> None:
        try:
            self.report()
            if not self._prepare():
                return
            deadline = self.pod["spec"].get("activeDeadlineSeconds")
            if deadline:
                timer = threading.Timer(float(deadline), self._deadline_exceeded)
                timer.daemon = True
                timer.start()
            sidecars: list[threading.Thread] = []
            for c in self.init:
                if c.spec.get("restartPolicy") == "Always":  # a sidecar: started, not awaited
                    sidecars.append(self._start_sidecar(c))
                    continue
                if self._container_loop(c, init=True) != 0 or self.stopping.is_set():
                    self._finish("Failed")
                    return
            self.initialized = True
            threads = [
                threading.Thread(target=self._container_loop, args=(c,), daemon=True)
                for c in self.main
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = all(c.state.get("terminated", {}).get("exitCode") == 0 for c in self.main)
            if sidecars:  # the main containers are done: stop the sidecars
                self.terminate(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
                for t in sidecars:
                    t.join()
            self._finish("Succeeded" if ok and not self.reason else "Failed")
        except Exception as exc:
            log.exception("pod %s: runtime failure", self)
            self.message = f"process node error: {exc}"
            self._finish("Failed")
        finally:
            self.done.set()

    def _start_sidecar(self, c: ContainerRun) -> threading.Thread:
        thread = threading.Thread(
            target=self._container_loop, args=(c,), kwargs={"policy": "Always"}, daemon=True
        )
        thread.start()
        while not c.ever_started and not self.stopping.wait(0.1):
            pass
        return thread

    def _finish(self, phase: str) -> None:
        for c in [*self.init, *self.main]:
            if c.ever_started and "terminated" not in c.state:
                c.state = st.terminated(
                    137, st.now(), c.container_id, reason="ContainerStatusUnknown"
                )
        self.phase = phase
        self.report()
        log.info("pod %s: %s", self, phase)

    def _prepare(self) -> bool:
        """Volumes; retried while referenced ConfigMaps/Secrets are missing."""
        while not self.stopping.is_set():
            try:
                self.volumes = prepare_volumes(self.pod, self.dir, self._lookup, self._token)
                self.sandbox_ready = True
                return True
            except ContainerConfigError as exc:
                for c in [*self.init, *self.main]:
                    c.state = {"waiting": {"reason": "ContainerCreating", "message": str(exc)}}
                self.report()
                self.stopping.wait(CONFIG_RETRY_SECONDS)
        self._finish("Failed")
        return False

    def _deadline_exceeded(self) -> None:
        if self.done.is_set():
            return
        self.reason = "DeadlineExceeded"
        self.message = "Pod was active on the node longer than the specified deadline"
        self.terminate(int(self.pod["spec"].get("terminationGracePeriodSeconds") or 30))

    def terminate(self, grace: float) -> None:
        """SIGTERM every process group, SIGKILL what is left after ``grace`` seconds."""
        with self._spawn_lock:
            self.stopping.set()
            procs = [c.proc for c in [*self.init, *self.main] if c.proc is not None]
        for p in procs:
            signal_group(p.pid, signal.SIGTERM)
        end = time.monotonic() + max(grace, 0)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.0, end - time.monotonic()))
        for p in procs:
            signal_group(p.pid, signal.SIGKILL)

    # containers
    def _container_loop(self, c: ContainerRun, init: bool = False, policy: str = "") -> int:
        policy = policy or self.policy
        if init and policy == "Always":
            policy = "OnFailure"
        backoff = 1.0
        while True:
            code = self._launch(c)
            if code is None:  # configuration error: the kubelet keeps retrying
                if self.stopping.wait(CONFIG_RETRY_SECONDS):
                    return 1
                continue
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if not restart or self.stopping.is_set():
                return code
            c.last_state = c.state
            c.restart_count += 1
            c.state = {"waiting": {"reason": "CrashLoopBackOff" if code else "Completed"}}
            self.report()
            if self.stopping.wait(backoff):
                return code
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _launch(self, c: ContainerRun) -> int | None:
        try:
            env, argv, cwd = self._process_spec(c)
        except ContainerConfigError as exc:
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            self.report()
            return None
        c.message_file.parent.mkdir(parents=True, exist_ok=True)
        c.message_file.write_bytes(b"")
        c.log_file.parent.mkdir(parents=True, exist_ok=True)
        started = st.now()
        try:
            # a new pod with an old pod's name starts a fresh log; restarts append to it
            mode = "ab" if c.ever_started else "wb"
            with self._spawn_lock, c.log_file.open(mode) as out:
                if self.stopping.is_set():  # terminate() ran already: do not start anything
                    c.state = st.terminated(137, started, "", reason="Error")
                    return 137
                c.proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            c.state = st.terminated(128, started, "", message=str(exc), reason="StartError")
            self.report()
            return 128
        pgid_file = self.ctx.pgid_file(self.uid, c.name)
        pgid_file.parent.mkdir(parents=True, exist_ok=True)
        pgid_file.write_text(str(c.proc.pid))
        c.container_id = f"process://{c.proc.pid}"
        c.ever_started = True
        c.state = {"running": {"startedAt": started}}
        self.phase = "Running" if self.initialized else "Pending"
        log.info("pod %s: container %s started (pid %s): %s", self, c.name, c.proc.pid, argv)
        self.report()
        code = st.exit_code_of(c.proc.wait())
        signal_group(c.proc.pid, signal.SIGKILL)  # the container's other processes go with it
        pgid_file.unlink(missing_ok=True)
        policy = c.spec.get("terminationMessagePolicy") or "File"
        message = st.termination_message(c.message_file, c.log_file, policy, code)
        c.state = st.terminated(code, started, c.container_id, message=message)
        log.info("pod %s: container %s exited %s", self, c.name, code)
        self.report()
        return code

    def _process_spec(self, c: ContainerRun) -> tuple[dict[str, str], list[str], str]:
        mounts = mount_map(c.spec, self.volumes)
        tm_path = c.spec.get("terminationMessagePath") or "/dev/termination-log"
        paths = PathMap({**mounts, tm_path: str(c.message_file)})
        service = {
            "KUBERNETES_SERVICE_HOST": POD_IP,
            "KUBERNETES_SERVICE_PORT": str(self.ctx.api_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.ctx.api_port),
        }
        declared = resolve_env(self.pod, c.spec, self._lookup, service, self.ctx.allocatable)
        venv = self.ctx.root / ".venv"
        tmp = self.dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
            "VIRTUAL_ENV": str(venv),
            "HOME": os.environ.get("HOME", str(self.dir)),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TMPDIR": str(tmp),
            "HOSTNAME": self.name,
            "PYTHONUNBUFFERED": "1",
            "DEVNODE_POD_DIR": str(self.dir),
            "DEVNODE_TERMINATION_MESSAGE_PATH": str(c.message_file),
            **{volume_env_name(v): p for v, p in self.volumes.items()},
            **service,
            **{k: paths.rewrite(v) for k, v in declared.items()},
        }
        argv = container_argv(c.spec, env, paths)
        cwd = str(self.ctx.root)
        if c.spec.get("workingDir"):
            cwd = paths.rewrite(c.spec["workingDir"])
            if not Path(cwd).is_dir():
                raise ContainerConfigError(f"workingDir {c.spec['workingDir']} does not exist")
        return env, argv, cwd

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        return self.ctx.api.get_data(kind, namespace, name)

    def _token(self, account: str, audiences: list[str], seconds: int) -> str:
        return self.ctx.api.create_token(self.namespace, account, audiences)

    # status
    def _cond(self, kind: str, ok: bool, reason: str = "") -> Obj:
        old = self._conds.get(kind)
        if old is None or old["status"] != ("True" if ok else "False"):
            self._conds[kind] = st.condition(kind, ok, reason)
        return self._conds[kind]

    def status(self) -> Obj:
        terminal = self.phase in ("Succeeded", "Failed")
        ready = not terminal and all("running" in c.state for c in self.main)
        reason = "PodCompleted" if terminal else ("" if ready else "ContainersNotReady")
        out: Obj = {
            "phase": self.phase,
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self.start_time,
            "conditions": [
                self._cond("PodReadyToStartContainers", self.sandbox_ready),
                self._cond(
                    "Initialized",
                    self.initialized,
                    "" if self.initialized else "ContainersNotInitialized",
                ),
                self._cond("ContainersReady", ready, reason),
                self._cond("Ready", ready, reason),
            ],
            "containerStatuses": [c.status() for c in self.main],
        }
        if self.init:
            out["initContainerStatuses"] = [c.status() for c in self.init]
        if self.reason:
            out["reason"], out["message"] = self.reason, self.message
        elif self.message:
            out["message"] = self.message
        return out

    def report(self) -> None:
        with self._report_lock:
            try:
                self.ctx.api.patch_pod_status(self.namespace, self.name, self.status())
            except ApiException as exc:
                if exc.status != 404:
                    log.warning("pod %s: status update failed: %s %s", self, exc.status, exc.body)
            except Exception as exc:
                log.warning("pod %s: status update failed: %s", self, exc)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
