"""Runs whose Job pods land on the devcluster's real node (kubelet + containerd, the
project's image): a memory limit the run goes over is enforced by the kubelet, and lakeop
reports the OOMKilled reason on the IngestionJob.

The test namespace sends every pod to ``kubenode`` through the API server's PodNodeSelector
and PodTolerationRestriction admission plugins, so the Job lakeop builds is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_e2e import (
    Operator,
    apply,
    db_secret,
    make_operator,
    sql_job,
    table_with_v1,
    wait_status,
)

pytestmark = pytest.mark.e2e

NODE = "kubenode"
TAINT = "devcluster.lakeop.io/real-node"
IMAGE = "lakeop:0.1.0"


@pytest.fixture(scope="module")
def operator(
    kube: Any,
    crds: None,
    module_tag: str,
    lake: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    if kube.kubectl("get", "node", NODE, check=False).returncode != 0:
        pytest.skip("no real node in this cluster (DEVCLUSTER_NODE=process)")
    op = make_operator(
        kube, module_tag, lake, tmp_path_factory.mktemp("operator"), LAKEOP_JOB_IMAGE=IMAGE
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def real_ns(kube: Any, ns: str) -> str:
    tolerations = [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}]
    kube.kubectl(
        "annotate",
        "namespace",
        ns,
        f"scheduler.alpha.kubernetes.io/node-selector=kubernetes.io/hostname={NODE}",
        f"scheduler.alpha.kubernetes.io/defaultTolerations={json.dumps(tolerations)}",
    )
    return ns


def test_run_over_its_memory_limit_is_oomkilled_and_reported(
    kube: Any, operator: Operator, real_ns: str
) -> None:
    table_with_v1(kube, operator, real_ns, "events")
    db_secret(kube, real_ns)
    job = sql_job(
        "hog",
        "events",
        # the run cannot even import its libraries in 32 MiB (its lake, on this host, is not
        # mounted in the pod: a run that got further would fail on that instead)
        "SELECT 1 AS id, 'x' AS v",
        resources={"requests": {"memory": "32Mi"}, "limits": {"memory": "32Mi"}},
        backoffLimit=0,
    )
    apply(kube, real_ns, job)
    status = wait_status(
        kube,
        real_ns,
        "ingestionjobs",
        "hog",
        lambda s: bool((s.get("lastRun") or {}).get("error")),
        what="the run failed",
        timeout=180,
        operator=operator,
    )
    pods = json.loads(
        kube.kubectl("get", "pods", "-n", real_ns, "-l", "job-name", "-o", "json").stdout
    )["items"]
    assert pods and all(p["spec"]["nodeName"] == NODE for p in pods)
    error = status["lastRun"]["error"]
    assert error["reason"] == "OOMKilled", status["lastRun"]
    assert "(32Mi)" in error["message"], error
