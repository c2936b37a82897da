"""What the operator refuses itself, on the local cluster, without a webhook in front of it:

* a *scheduled* run whose ``file://`` source no Job pod volume covers: when the schedule timer
  fires, ``Ready=False``, reason ``LocationNotMounted``, naming the path, and no Job;
* an unknown ``timeZone`` on an IngestionJob without a ``schedule`` (no timer ever reads it):
  the reconcile refuses it with ``Ready=False``, reason ``InvalidSchedule``;
* a ``spec.podTemplate`` mount at the operator's lake volume path: refused at run start with
  ``InvalidSpec``, naming the field and the value, before any Job;
* any other Job the API server refuses (HTTP 422): ``Failed``/``InvalidSpec`` with the API
  server's message, once, the run un-recorded, instead of retried forever.

The operator runs as in a cluster (``LAKEOP_REQUIRE_MOUNTS=true``, a lake volume at the lake's
path); none of these runs gets as far as a pod.
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
    ingestion_job,
    make_operator,
    table_with_v1,
    wait_status,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def operator(
    kube: Any,
    crds: None,
    module_tag: str,
    lake: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    op = make_operator(
        kube,
        module_tag,
        lake,
        tmp_path_factory.mktemp("operator"),
        LAKEOP_REQUIRE_MOUNTS="true",
        LAKEOP_LAKE_VOLUME=json.dumps({"emptyDir": {}}),
        LAKEOP_LAKE_MOUNT_PATH=str(lake),
    )
    op.start()
    yield op
    op.stop()


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    (ready,) = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
    return ready


def _reason(reason: str) -> Any:
    return lambda s: any(c.get("reason") == reason for c in s.get("conditions") or [])


def _jobs(kube: Any, ns: str) -> list[Any]:
    return list(json.loads(kube.kubectl("get", "jobs", "-n", ns, "-o", "json").stdout)["items"])


def _landing(lake: Path, ns: str) -> Path:
    landing = lake / f"landing-{ns}"  # on the lake volume: every Job pod has it
    landing.mkdir()
    (landing / "a.csv").write_text("id,v\n1,a\n")
    return landing


def test_the_schedule_timer_sets_location_not_mounted(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    table_with_v1(kube, operator, ns, "events")
    outside = tmp_path / "landing"  # on the operator's disk, in no Job pod volume
    outside.mkdir()
    (outside / "a.csv").write_text("id,v\n1,a\n")
    uri = f"{outside.as_uri()}/*.csv"
    apply(kube, ns, ingestion_job("tick", "events", uri, schedule="* * * * *"))
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "tick",
        _reason("LocationNotMounted"),
        what="LocationNotMounted from the schedule timer",
        timeout=150,  # the next minute, then a tick
        operator=operator,
    )
    ready = _ready(status)
    assert ready["status"] == "False"
    assert f"spec.source.uri {uri}" in ready["message"]
    assert f"covers {outside}" in ready["message"]
    assert status["phase"] == "Scheduled"  # the next tick tries again, after a fix
    assert "currentRun" not in status
    assert _jobs(kube, ns) == []


def test_an_unknown_time_zone_without_a_schedule_is_refused_by_reconcile(
    kube: Any, operator: Operator, ns: str, lake: Path
) -> None:
    table_with_v1(kube, operator, ns, "events")
    source = (_landing(lake, ns) / "a.csv").as_uri()
    apply(kube, ns, ingestion_job("zoned", "events", source, timeZone="Europe/Berln"))
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "zoned",
        lambda s: s.get("phase") == "Failed",
        what="refused",
        operator=operator,
    )
    ready = _ready(status)
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSchedule", ready
    assert "spec.timeZone: timeZone 'Europe/Berln': not a known IANA time zone" in ready["message"]
    assert _jobs(kube, ns) == [] and "currentRun" not in status


def test_a_template_mount_at_the_lake_path_is_invalid_spec_before_any_job(
    kube: Any, operator: Operator, ns: str, lake: Path
) -> None:
    table_with_v1(kube, operator, ns, "events")
    job = ingestion_job("clash", "events", (_landing(lake, ns) / "a.csv").as_uri())
    job["spec"]["podTemplate"] = {
        "spec": {
            "volumes": [{"name": "mine", "emptyDir": {}}],
            "containers": [
                {"name": "ingest", "volumeMounts": [{"name": "mine", "mountPath": str(lake)}]}
            ],
        }
    }
    apply(kube, ns, job)
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "clash",
        _reason("InvalidSpec"),
        what="refused",
        operator=operator,
    )
    ready = _ready(status)
    assert (status["phase"], ready["status"]) == ("Failed", "False")
    field = "spec.podTemplate.spec.containers[0].volumeMounts[0].mountPath"
    assert f"IngestionJob {ns}/clash: {field}: is where the operator mounts" in ready["message"]
    assert repr(str(lake)) in ready["message"]
    assert _jobs(kube, ns) == [] and "currentRun" not in status


def test_a_job_the_api_server_refuses_fails_once_with_its_message(
    kube: Any, operator: Operator, ns: str, lake: Path
) -> None:
    table_with_v1(kube, operator, ns, "events")
    job = ingestion_job("refused", "events", (_landing(lake, ns) / "a.csv").as_uri())
    # a toleration the API server's Pod validation refuses (HTTP 422), which lakeop passes on
    bad = {"key": "k", "operator": "Exists", "value": "v", "effect": "NoSchedule"}
    job["spec"]["podTemplate"] = {"spec": {"tolerations": [bad]}}
    apply(kube, ns, job)
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "refused",
        _reason("InvalidSpec"),
        what="refused by the API server",
        timeout=90,
        operator=operator,
    )
    ready = _ready(status)
    assert (status["phase"], ready["status"]) == ("Failed", "False")
    assert "(HTTP 422)" in ready["message"]
    assert "tolerations" in ready["message"]  # the API server's own words
    assert "currentRun" not in status and "runs" not in status  # the run never started
    assert _jobs(kube, ns) == []
