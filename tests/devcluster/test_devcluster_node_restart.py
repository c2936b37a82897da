"""A process node that dies and comes back marks the pods it had been running as Failed.

The shared node ``devnode`` runs other tests' pods, so this starts a second, private node
(``--no-schedule``: it only runs pods bound to it by name) and kills that one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


class PrivateNode:
    def __init__(self, kube: Any, state: Path) -> None:
        self.kube = kube
        self.state = state
        self.name = f"t-node-{uuid.uuid4().hex[:6]}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        root = self.kube.root
        self.state.mkdir(parents=True, exist_ok=True)
        with (self.state / "node.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(root / ".venv" / "bin" / "python"), "-m", "procnode",
                    "--kubeconfig", str(self.kube.state_dir / "pki" / "procnode.kubeconfig"),
                    "--root", str(root), "--state", str(self.state),
                    "--node-name", self.name, "--no-schedule",
                ],
                env={**os.environ, "PYTHONPATH": str(root / "devcluster")},
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def private_node(kube: Any, tmp_path: Path, wait_for: Any) -> Iterator[PrivateNode]:
    node = PrivateNode(kube, tmp_path / "state")
    node.start()
    wait_for(
        lambda: kube.kubectl("get", "node", node.name, check=False).returncode == 0,
        30,
        f"node {node.name} registered",
    )
    yield node
    node.stop()
    kube.kubectl("delete", "node", node.name, "--wait=false", check=False)


def test_restarted_node_marks_lost_pods_failed(
    kube: Any, objs: Any, private_node: PrivateNode, wait_for: Any
) -> None:
    script = "import time\nprint('ready', flush=True)\nwhile True: time.sleep(0.2)\n"
    objs.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "orphan"},
            "spec": {
                "nodeName": private_node.name,
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "x", "command": ["python", "-c", script]}],
            },
        }
    )
    running = wait_for(
        lambda: (
            (objs.get("pod", "orphan")["status"].get("containerStatuses") or [{}])[0]
            .get("state", {})
            .get("running")
            and objs.get("pod", "orphan")["status"]["containerStatuses"][0]
        ),
        30,
        "pod orphan running on the test node",
    )
    pid = int(running["containerID"].removeprefix("process://"))
    private_node.crash()
    os.kill(pid, 0)  # the pod's process outlived its node (own session)
    private_node.start()
    failed = wait_for(
        lambda: (
            objs.get("pod", "orphan")["status"].get("phase") == "Failed"
            and objs.get("pod", "orphan")["status"]
        ),
        30,
        "pod orphan marked Failed by the restarted node",
    )
    assert failed["reason"] == "NodeRestarted"
    terminated = failed["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "ContainerStatusUnknown")
    wait_for(lambda: _gone(pid), 10, f"leftover process {pid} killed")


def _gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
