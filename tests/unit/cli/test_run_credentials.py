"""``lakeop run`` with no cluster to reach exits at once with status 2 and a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakeop.cli.credentials import TOKEN_FILE, missing_credentials


@pytest.mark.parametrize(
    ("environ", "present", "fine"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, [TOKEN_FILE], True),
        ({"KUBECONFIG": "/k/a"}, ["/k/a"], True),
        ({"KUBECONFIG": f"/k/missing{os.pathsep}/k/b"}, ["/k/b"], True),
        ({}, ["/home/u/.kube/config"], True),
        ({}, [], False),
        ({"KUBECONFIG": "/k/a"}, ["/home/u/.kube/config"], False),  # KUBECONFIG wins
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, [], False),  # a pod without a token
    ],
)
def test_missing_credentials(environ: dict[str, str], present: list[str], fine: bool) -> None:
    problem = missing_credentials(environ, lambda p: p in present, home="/home/u")
    assert (problem is None) is fine, problem


def test_the_message_says_what_was_looked_for() -> None:
    problem = missing_credentials({}, lambda _: False, home="/home/u")
    assert problem == (
        "lakeop run: no Kubernetes cluster to connect to: not in a cluster "
        "(KUBERNETES_SERVICE_HOST is not set), and KUBECONFIG is not set and "
        "/home/u/.kube/config does not exist. "
        "Set KUBECONFIG to a kubeconfig file, or run the operator in a cluster."
    )
    named = missing_credentials({"KUBECONFIG": "/k/a"}, lambda _: False, home="/home/u")
    assert named is not None and "KUBECONFIG names /k/a, which does not exist" in named
    pod = missing_credentials({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, lambda _: False)
    assert pod is not None and f"without a service account token ({TOKEN_FILE})" in pod


@pytest.mark.parametrize("kubeconfig", [None, "does-not-exist.yaml"])
def test_lakeop_run_outside_a_cluster_exits_2_at_once(
    tmp_path: Path, kubeconfig: str | None
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    if kubeconfig:
        env["KUBECONFIG"] = str(tmp_path / kubeconfig)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "lakeop", "run", "--standalone"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert "no Kubernetes cluster to connect to" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert took < 30  # no retrying: the interpreter's start-up and one check
