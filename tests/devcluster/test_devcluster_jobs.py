"""batch/v1 Jobs on the devcluster behave as on a real cluster.

The real job controller and garbage collector decide; the process node only runs the pods
and reports their exit codes. These are the acceptance scenarios of the local cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]


def job(name: str, script: str, restart: str = "Never", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": restart,
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {"name": "main", "image": "python:3", "command": ["python", "-c", script]}
                    ],
                }
            },
            **spec,
        },
    }


def condition(obj: Obj | None, kind: str) -> Obj | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == "True":
            found: Obj = cond
            return found
    return None


def test_job_runs_to_complete(kube: Any, objs: Any, namespace: str, wait_for: Any) -> None:
    objs.apply(job("hello", "print('hi')", backoffLimit=0))
    wait_for(lambda: condition(objs.get("job", "hello"), "Complete"), 60, "Job hello Complete")
    final = objs.get("job", "hello")
    assert final["status"]["succeeded"] == 1
    [pod] = objs.list("pod", "job-name=hello")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["spec"]["nodeName"] == "devnode"
    assert kube.pod_log(namespace, pod["metadata"]["name"], "main") == "hi\n"


def test_indexed_job_runs_each_index_once_two_at_a_time(
    objs: Any, wait_for: Any, tmp_path: Path
) -> None:
    record = tmp_path / "runs"
    script = (
        "import os, time\n"
        f"path = {str(record)!r}\n"
        "i = os.environ['JOB_COMPLETION_INDEX']\n"
        "start = time.time(); time.sleep(1.0)\n"
        "open(path, 'a').write(f'{i} {start} {time.time()}\\n')\n"
    )
    objs.apply(job("indexed", script, completions=3, parallelism=2, completionMode="Indexed"))
    wait_for(lambda: condition(objs.get("job", "indexed"), "Complete"), 90, "Indexed Job Complete")
    runs = [line.split() for line in record.read_text().splitlines()]
    assert sorted(r[0] for r in runs) == ["0", "1", "2"]
    spans = [(float(s), float(e)) for _, s, e in runs]
    for s, _ in spans:
        overlapping = sum(1 for s2, e2 in spans if s2 <= s < e2)
        assert overlapping <= 2
    assert objs.get("job", "indexed")["status"]["completedIndexes"] == "0-2"


def test_backoff_limit_exceeded_fails_the_job(objs: Any, wait_for: Any) -> None:
    objs.apply(job("failing", "import sys; sys.exit(1)", backoffLimit=1))
    failed = wait_for(
        lambda: condition(objs.get("job", "failing"), "Failed"), 90, "Job failing Failed"
    )
    assert failed["reason"] == "BackoffLimitExceeded"
    pods = objs.list("pod", "job-name=failing")
    assert len(pods) == 2
    for pod in pods:
        state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (pod["status"]["phase"], state["exitCode"], state["reason"]) == (
            "Failed",
            1,
            "Error",
        )


def test_pod_failure_policy_fails_job_on_exit_code(objs: Any, wait_for: Any) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    objs.apply(job("pfp", "import sys; sys.exit(42)", backoffLimit=5, podFailurePolicy=policy))
    failed = wait_for(lambda: condition(objs.get("job", "pfp"), "Failed"), 60, "Job pfp Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert objs.get("job", "pfp")["status"].get("failed") == 1


def test_active_deadline_fails_job_and_stops_pod(objs: Any, wait_for: Any) -> None:
    objs.apply(job("slow", "import time; time.sleep(120)", activeDeadlineSeconds=3))
    failed = wait_for(lambda: condition(objs.get("job", "slow"), "Failed"), 60, "Job slow Failed")
    assert failed["reason"] == "DeadlineExceeded"
    wait_for(lambda: not objs.list("pod", "job-name=slow"), 30, "pods of Job slow to be removed")


def test_deleting_a_job_garbage_collects_its_pods(objs: Any, wait_for: Any) -> None:
    objs.apply(job("sleeper", "import time; time.sleep(300)"))
    running = wait_for(
        lambda: [
            p for p in objs.list("pod", "job-name=sleeper") if p["status"].get("phase") == "Running"
        ],
        60,
        "a Running pod of Job sleeper",
    )
    pid = int(running[0]["status"]["containerStatuses"][0]["containerID"].split("//")[1])
    objs.delete("job", "sleeper")  # kubectl's default propagation: background, via the GC
    wait_for(lambda: not objs.list("pod", "job-name=sleeper"), 60, "pods of Job sleeper removed")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_ttl_after_finished_removes_job_and_pods(objs: Any, wait_for: Any) -> None:
    objs.apply(job("ephemeral", "print('done')", ttlSecondsAfterFinished=0))
    wait_for(lambda: objs.get("job", "ephemeral") is None, 60, "Job ephemeral removed by its TTL")
    wait_for(
        lambda: not objs.list("pod", "job-name=ephemeral"), 30, "pods of Job ephemeral removed"
    )
