"""The process node, end to end: what a pod's process sees and how it is stopped."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]


def pod(name: str, script: str, **spec: Any) -> Obj:
    container = {"name": "main", "image": "python:3", "command": ["python", "-c", script]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "probe"}},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def phase(objs: Any, name: str) -> str:
    obj = objs.get("pod", name)
    return str(((obj or {}).get("status") or {}).get("phase", ""))


def main_state(objs: Any, name: str) -> Obj:
    statuses = objs.get("pod", name)["status"].get("containerStatuses") or [{}]
    state: Obj = statuses[0].get("state") or {}
    return state


def pid_of(objs: Any, name: str) -> int:
    """The process id behind a running container (containerID is ``process://<pid>``)."""
    status = objs.get("pod", name)["status"]["containerStatuses"][0]
    assert "running" in status["state"], status
    return int(status["containerID"].removeprefix("process://"))


def test_env_envfrom_valuefrom_and_empty_dir(
    kube: Any, objs: Any, namespace: str, wait_for: Any
) -> None:
    objs.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"A": "1"}}
    )
    objs.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sec"},
            "stringData": {"AWS_ACCESS_KEY_ID": "key", "URL": "postgresql://x"},
        }
    )
    script = (
        "import json, os, pathlib\n"
        "pathlib.Path(os.environ['OUT']).write_text('data')\n"
        "print(json.dumps({**dict(os.environ), 'CWD': os.getcwd(),"
        " 'EXISTS': os.path.exists(os.environ['OUT'])}))\n"
    )
    container = {
        "envFrom": [
            {"secretRef": {"name": "sec"}, "prefix": "LAKEOP_STORAGE_"},
            {"configMapRef": {"name": "cm"}},
        ],
        "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "SQL", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "URL"}}},
            {"name": "CMA", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "A"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
            {"name": "DERIVED", "value": "$(NAME)-$(A)"},
            {"name": "OUT", "value": "/scratch/out.txt"},
        ],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    objs.apply(
        pod("envprobe", script, container=container, volumes=[{"name": "scratch", "emptyDir": {}}])
    )
    wait_for(lambda: phase(objs, "envprobe") == "Succeeded", 60, "pod envprobe Succeeded")
    env = json.loads(kube.pod_log(namespace, "envprobe", "main"))
    uid = objs.get("pod", "envprobe")["metadata"]["uid"]
    expected = {
        "LAKEOP_STORAGE_AWS_ACCESS_KEY_ID": "key",
        "LAKEOP_STORAGE_URL": "postgresql://x",
        "A": "1",
        "NAME": "envprobe",
        "NS": namespace,
        "UID": uid,
        "APP": "probe",
        "NODE": "devnode",
        "IP": "127.0.0.1",
        "SQL": "postgresql://x",
        "CMA": "1",
        "DERIVED": "envprobe-1",
        "CWD": str(kube.root),
        "EXISTS": True,
    }
    assert {k: env.get(k) for k in expected} == expected
    assert "OPT" not in env
    scratch = env["DEVNODE_VOLUME_SCRATCH"]
    assert env["OUT"] == f"{scratch}/out.txt"
    assert env["PATH"].split(":")[0] == str(kube.root / ".venv" / "bin")


def test_missing_secret_keeps_container_waiting(objs: Any, wait_for: Any) -> None:
    container = {
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]
    }
    objs.apply(pod("noconfig", "print(1)", container=container))
    waiting = wait_for(
        lambda: (
            main_state(objs, "noconfig").get("waiting", {}).get("reason")
            == "CreateContainerConfigError"
            and main_state(objs, "noconfig")["waiting"]
        ),
        30,
        "CreateContainerConfigError",
    )
    assert 'secret "gone" not found' in waiting["message"]
    assert phase(objs, "noconfig") == "Pending"


def test_termination_message_file_and_fallback(objs: Any, wait_for: Any, tmp_path: Path) -> None:
    # the path arrives as its own argument, as with `lakeop ingest --termination-log PATH`
    write = "import sys; open(sys.argv[1], 'w').write('{\"rows\": 3}')"
    objs.apply(pod("tmfile", write, container={"args": ["/dev/termination-log"]}))
    fail = "import sys; print('line one'); print('boom'); sys.exit(3)"
    fallback = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    objs.apply(pod("tmfallback", fail, container=fallback))
    objs.apply(
        pod("workdir", "import os; print(os.getcwd())", container={"workingDir": str(tmp_path)})
    )
    wait_for(lambda: phase(objs, "tmfile") == "Succeeded", 60, "pod tmfile Succeeded")
    done = main_state(objs, "tmfile")["terminated"]
    assert (done["exitCode"], done["reason"], done["message"]) == (0, "Completed", '{"rows": 3}')
    wait_for(lambda: phase(objs, "tmfallback") == "Failed", 60, "pod tmfallback Failed")
    failed = main_state(objs, "tmfallback")["terminated"]
    assert (failed["exitCode"], failed["reason"]) == (3, "Error")
    assert failed["message"] == "line one\nboom\n"
    wait_for(lambda: phase(objs, "workdir") == "Succeeded", 60, "pod workdir Succeeded")


def test_on_failure_restarts_the_container(objs: Any, wait_for: Any, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    script = (
        f"import pathlib, sys\np = pathlib.Path({str(marker)!r})\n"
        "if p.exists(): sys.exit(0)\np.touch(); sys.exit(1)\n"
    )
    objs.apply(pod("flaky", script, restartPolicy="OnFailure"))
    wait_for(lambda: phase(objs, "flaky") == "Succeeded", 60, "pod flaky Succeeded")
    status = objs.get("pod", "flaky")["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1


def test_delete_sends_sigterm_then_sigkill_after_grace(
    kube: Any, objs: Any, namespace: str, wait_for: Any
) -> None:
    stubborn = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('got SIGTERM', flush=True))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    polite = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    objs.apply(pod("stubborn", stubborn, terminationGracePeriodSeconds=3))
    objs.apply(pod("polite", polite, terminationGracePeriodSeconds=30))
    for name in ("stubborn", "polite"):
        wait_for(lambda n=name: "ready" in kube.pod_log(namespace, n, "main"), 60, f"{name} ready")
    pids = [pid_of(objs, name) for name in ("stubborn", "polite")]
    start = time.monotonic()
    objs.delete("pod", "polite")
    wait_for(lambda: objs.get("pod", "polite") is None, 20, "pod polite removed")
    assert time.monotonic() - start < 10  # exited on SIGTERM, long before its 30 s grace
    assert "bye" in kube.pod_log(namespace, "polite", "main")
    start = time.monotonic()
    objs.delete("pod", "stubborn")
    wait_for(lambda: objs.get("pod", "stubborn") is None, 30, "pod stubborn removed")
    assert time.monotonic() - start >= 2.5  # survived SIGTERM until the grace period ran out
    assert "got SIGTERM" in kube.pod_log(namespace, "stubborn", "main")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_unknown_command_is_a_start_error_not_a_node_crash(objs: Any, wait_for: Any) -> None:
    bad = pod("nocmd", "")
    bad["spec"]["containers"][0]["command"] = ["no-such-program-devcluster"]
    objs.apply(bad)
    wait_for(lambda: phase(objs, "nocmd") == "Failed", 30, "pod nocmd Failed")
    state = main_state(objs, "nocmd")["terminated"]
    assert (state["exitCode"], state["reason"]) == (128, "StartError")
    assert "no-such-program-devcluster" in state["message"]
    objs.apply(pod("after", "print('still serving')"))
    wait_for(lambda: phase(objs, "after") == "Succeeded", 30, "a pod after the bad one")


def test_kubectl_logs_reads_the_container_log(
    kubectl: Any, objs: Any, namespace: str, wait_for: Any
) -> None:
    objs.apply(pod("talker", "print('first'); print('second')"))
    wait_for(lambda: phase(objs, "talker") == "Succeeded", 30, "pod talker Succeeded")
    assert kubectl("logs", "talker", "-n", namespace).stdout == "first\nsecond\n"
    assert kubectl("logs", "talker", "-n", namespace, "--tail=1").stdout == "second\n"


def test_init_container_runs_first_and_shares_empty_dir(
    kube: Any, objs: Any, namespace: str, wait_for: Any
) -> None:
    manifest = pod(
        "withinit",
        "import sys; print(open(sys.argv[1]).read())",
        container={
            "args": ["/work/seed.txt"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        },
        volumes=[{"name": "work", "emptyDir": {}}],
        initContainers=[
            {
                "name": "seed",
                "image": "python:3",
                "command": ["python", "-c", "import sys; open(sys.argv[1], 'w').write('seeded')"],
                "args": ["/work/seed.txt"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            }
        ],
    )
    objs.apply(manifest)
    wait_for(lambda: phase(objs, "withinit") == "Succeeded", 60, "pod withinit Succeeded")
    status = objs.get("pod", "withinit")["status"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert kube.pod_log(namespace, "withinit", "main") == "seeded\n"


def test_pod_active_deadline_fails_the_pod(objs: Any, wait_for: Any) -> None:
    objs.apply(pod("deadline", "import time; time.sleep(60)", activeDeadlineSeconds=2))
    wait_for(lambda: phase(objs, "deadline") == "Failed", 30, "pod deadline Failed")
    status = objs.get("pod", "deadline")["status"]
    assert status["reason"] == "DeadlineExceeded"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
