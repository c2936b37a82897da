"""``spec.podTemplate`` end to end on the real node: a run in a container on ``kubenode``,
reading its source and writing its lake through the template's hostPath volumes.

The module's operator sends its Job pods to ``kubenode`` (the suite's default, see
operator_e2e) but, unlike the suite's, gives them no lake volume: the template alone mounts the
source folder (read-only) and the table's location at the same paths the operator sees, and
adds a ServiceAccount, a label, a variable and (again) kubenode's nodeSelector and toleration.
The lake is owned by the Job pods' uid (65532), as it is when the operator runs in its own
pod; here the operator is a host process, so the test hands the table's folder over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from operator_e2e import (
    IMAGE,
    POD_UID,
    REAL_NODE,
    JobNode,
    Operator,
    apply,
    hand_over,
    ingestion_job,
    make_operator,
    on_the_real_node,
    table_with_v1,
    wait_status,
)

pytestmark = pytest.mark.e2e

ROWS = 500


@pytest.fixture(scope="module")
def operator(
    kube: Any,
    crds: None,
    *,
    module_tag: str,
    lake: Path,
    kubenode: JobNode,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    tmp = tmp_path_factory.mktemp("operator")
    # no lake volume ("" unsets it): the pod sees only what its template mounts
    op = make_operator(
        kube, module_tag, lake, tmp, kubenode, LAKEOP_LAKE_VOLUME="", LAKEOP_LAKE_MOUNT_PATH=""
    )
    op.start()
    yield op
    op.stop()


def _pod_template(source: Path, location: Path) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"team": "data"}},
        "spec": {
            "serviceAccountName": "lake-writer",
            **on_the_real_node()["spec"],
            "volumes": [
                {"name": "landing", "hostPath": {"path": str(source), "type": "Directory"}},
                {"name": "lake", "hostPath": {"path": str(location), "type": "Directory"}},
            ],
            "containers": [
                {
                    "name": "ingest",
                    "env": [{"name": "TZ", "value": "UTC"}],
                    "volumeMounts": [
                        {"name": "landing", "mountPath": str(source), "readOnly": True},
                        {"name": "lake", "mountPath": str(location)},
                    ],
                }
            ],
        },
    }


def test_run_in_a_container_through_pod_template_volumes(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    location = table_with_v1(kube, operator, ns, "events")
    hand_over(location)
    source = tmp_path / "landing"
    source.mkdir()
    lines = ["id,v", *(f"{i},row {i}" for i in range(ROWS))]
    (source / "events.csv").write_text("\n".join(lines) + "\n")
    source.chmod(0o755)
    (source / "events.csv").chmod(0o644)
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "lake-writer"}}
    job = ingestion_job("load", "events", (source / "events.csv").as_uri(), backoffLimit=0)
    job["spec"]["podTemplate"] = _pod_template(source, location)
    apply(kube, ns, sa, job)
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "load",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="the run ended",
        timeout=240,
        operator=operator,
    )
    assert status["phase"] == "Succeeded", status
    assert status["lastRun"]["rowsWritten"] == ROWS
    assert status["succeededRuns"] == 1

    pods = json.loads(
        kube.kubectl(
            "get", "pods", "-n", ns, "-l", "lakeop.io/ingestionjob=load", "-o", "json"
        ).stdout
    )["items"]
    assert len(pods) == 1
    pod = pods[0]
    spec = pod["spec"]
    assert spec["nodeName"] == REAL_NODE
    assert pod["metadata"]["labels"]["team"] == "data"
    assert spec["serviceAccountName"] == "lake-writer"
    assert spec["automountServiceAccountToken"] is False  # a service account, still no token
    assert not [v for v in spec["volumes"] if "projected" in v]
    (container,) = spec["containers"]
    assert {"name": "TZ", "value": "UTC"} in container["env"]
    assert container["command"] == ["lakeop", "ingest"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {str(source), str(location)}
    (state,) = pod["status"]["containerStatuses"]
    assert state["image"].endswith(IMAGE)
    assert state["state"]["terminated"]["exitCode"] == 0

    # the Parquet the container wrote, read back on the host by an independent reader
    files = sorted(location.rglob("*.parquet"))
    assert files and all(f.stat().st_uid == POD_UID for f in files)
    rows = (
        duckdb.connect()
        .execute(
            "select count(*), count(distinct id), min(id), max(id), max(v) "
            f"from read_parquet('{location}/**/*.parquet')"
        )
        .fetchall()
    )
    assert rows == [(ROWS, ROWS, 0, ROWS - 1, "row 99")]
