"""The operator's lake volume end to end on the real node, and ``LocationNotMounted``.

The operator runs as in a cluster with a shared lake (``LAKEOP_REQUIRE_MOUNTS=true``,
``LAKEOP_LAKE_VOLUME`` naming the PVC ``lakeop-lake``, ``LAKEOP_LAKE_MOUNT_PATH`` the lake's
path, which the operator itself sees). The namespace's PVC is bound to a hostPath
PersistentVolume at that same path, the way an RWX volume would be shared, so the run's
container on ``kubenode`` writes where the operator reads: the test reads the rows back with
DuckDB. The IngestionJob asks for nothing: the node (the suite's default placement, see
operator_e2e) and the volume are the operator's doing. A source or Table location outside
every mount gets ``Ready=False``, reason ``LocationNotMounted``, naming the path, and no Job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from operator_e2e import (
    POD_UID,
    REAL_NODE,
    JobNode,
    Operator,
    apply,
    hand_over,
    ingestion_job,
    make_operator,
    schema_version,
    table,
    table_with_v1,
    wait_status,
)

pytestmark = pytest.mark.e2e

ROWS = 300
CLAIM = "lakeop-lake"


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
    op = make_operator(
        kube,
        module_tag,
        lake,
        tmp_path_factory.mktemp("operator"),
        kubenode,
        LAKEOP_REQUIRE_MOUNTS="true",
        LAKEOP_LAKE_VOLUME=json.dumps({"persistentVolumeClaim": {"claimName": CLAIM}}),
        LAKEOP_LAKE_MOUNT_PATH=str(lake),
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def shared_lake(kube: Any, ns: str, lake: Path) -> Iterator[str]:
    """The namespace's PVC ``lakeop-lake``, bound to a hostPath PV at the lake's path."""
    pv = f"{ns}-lake"
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(lake), "type": "Directory"},
            "claimRef": {"namespace": ns, "name": CLAIM},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM, "namespace": ns},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": pv,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    apply(kube, ns, volume, claim)
    yield pv
    kube.kubectl("delete", "pvc", CLAIM, "-n", ns, "--wait=false", check=False)
    kube.kubectl("delete", "pv", pv, "--wait=false", check=False)


def test_job_pods_share_the_operators_lake_through_its_volume(
    kube: Any, operator: Operator, ns: str, lake: Path, shared_lake: str
) -> None:
    location = table_with_v1(kube, operator, ns, "events")
    assert location.is_relative_to(lake)
    landing = lake / f"landing-{ns}"  # the source lives on the shared volume too
    landing.mkdir()
    lines = ["id,v", *(f"{i},row {i}" for i in range(ROWS))]
    (landing / "events.csv").write_text("\n".join(lines) + "\n")
    hand_over(location)
    hand_over(landing)
    lake.chmod(0o755)  # the volume's root: the pods (uid 65532) must get through it
    job = ingestion_job("load", "events", (landing / "events.csv").as_uri(), backoffLimit=0)
    apply(kube, ns, job)
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
    assert status["lastSuccessfulTime"] == status["lastRun"]["completionTime"]

    (pod,) = json.loads(
        kube.kubectl(
            "get", "pods", "-n", ns, "-l", "lakeop.io/ingestionjob=load", "-o", "json"
        ).stdout
    )["items"]
    assert pod["spec"]["nodeName"] == REAL_NODE
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[CLAIM]["persistentVolumeClaim"] == {"claimName": CLAIM}
    (container,) = pod["spec"]["containers"]
    assert {"name": CLAIM, "mountPath": str(lake)} in [
        {k: m[k] for k in ("name", "mountPath")} for m in container["volumeMounts"]
    ]

    files = sorted(location.rglob("*.parquet"))
    assert files and all(f.stat().st_uid == POD_UID for f in files)  # the container wrote them
    rows = (
        duckdb.connect()
        .execute(
            "select count(*), count(distinct id), min(id), max(id) "
            f"from read_parquet('{location}/**/*.parquet')"
        )
        .fetchall()
    )
    assert rows == [(ROWS, ROWS, 0, ROWS - 1)]


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    (ready,) = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
    return ready


def test_a_source_no_volume_covers_is_location_not_mounted(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    table_with_v1(kube, operator, ns, "events")
    outside = tmp_path / "landing"  # on the operator's disk, in no Job pod volume
    outside.mkdir()
    (outside / "a.csv").write_text("id,v\n1,a\n")
    apply(kube, ns, ingestion_job("load", "events", f"{outside.as_uri()}/*.csv"))
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "load",
        lambda s: any(c.get("reason") == "LocationNotMounted" for c in s.get("conditions") or []),
        what="LocationNotMounted",
        timeout=60,
        operator=operator,
    )
    ready = _ready(status)
    assert ready["status"] == "False"
    assert f"spec.source.uri {outside.as_uri()}/*.csv" in ready["message"]
    assert f"covers {outside}" in ready["message"]
    jobs = json.loads(kube.kubectl("get", "jobs", "-n", ns, "-o", "json").stdout)["items"]
    assert jobs == []  # no Job bound to fail was created


def test_a_table_outside_the_lake_volume_is_location_not_mounted(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    apply(
        kube,
        ns,
        table("stray", location=elsewhere.as_uri()),
        schema_version("stray-v1", "stray", 1, [{"name": "id", "type": "long"}]),
    )
    status = wait_status(
        kube,
        ns,
        "tables",
        "stray",
        lambda s: any(c.get("reason") == "LocationNotMounted" for c in s.get("conditions") or []),
        what="LocationNotMounted",
        timeout=60,
        operator=operator,
    )
    ready = _ready(status)
    assert ready["status"] == "False"
    assert f"Table {ns}/stray: location {elsewhere.as_uri()}" in ready["message"]
    assert "location" not in status  # never prepared
    assert not elsewhere.exists()
