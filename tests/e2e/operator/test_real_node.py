"""Runs whose Job pods land on the devcluster's real node (kubelet + containerd, the
project's image): a memory limit the run goes over is enforced by the kubelet, and lakeop
reports the OOMKilled reason on the IngestionJob.

The module's operator sends every Job pod to ``kubenode`` (``LAKEOP_JOB_NODE_SELECTOR`` and
``LAKEOP_JOB_TOLERATIONS``, the suite's default: see operator_e2e), so the IngestionJob asks
for nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_e2e import (
    REAL_NODE,
    Operator,
    apply,
    db_secret,
    sql_job,
    table_with_v1,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("kubenode")]


def test_run_over_its_memory_limit_is_oomkilled_and_reported(
    kube: Any, operator: Operator, ns: str
) -> None:
    table_with_v1(kube, operator, ns, "events")
    db_secret(kube, ns)
    job = sql_job(
        "hog",
        "events",
        # the run cannot even import its libraries in 32 MiB
        "SELECT 1 AS id, 'x' AS v",
        resources={"requests": {"memory": "32Mi"}, "limits": {"memory": "32Mi"}},
        backoffLimit=0,
    )
    apply(kube, ns, job)
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "hog",
        lambda s: bool((s.get("lastRun") or {}).get("error")),
        what="the run failed",
        timeout=180,
        operator=operator,
    )
    pods = json.loads(kube.kubectl("get", "pods", "-n", ns, "-l", "job-name", "-o", "json").stdout)[
        "items"
    ]
    assert pods and all(p["spec"]["nodeName"] == REAL_NODE for p in pods)
    error = status["lastRun"]["error"]
    assert error["reason"] == "OOMKilled", status["lastRun"]
    assert "(32Mi)" in error["message"], error
