"""A run whose Job the API server would refuse is refused by the operator itself: a pod template
mount at the lake volume's path before anything is written (Ready=False, InvalidSpec, the field
and value named, no Job, no run), and any other HTTP 422 on creating the Job as a permanent
InvalidSpec with the API server's message, the run un-recorded instead of retried forever."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube
from handler_builders import NS, Event, body, ij_obj, ready
from test_schedule_timer import scheduled, tick

from lakeop.core.constants import INGESTION_JOBS
from lakeop.handlers import ingestionjob
from lakeop.memo import OperatorMemo

COLLIDING = {
    "spec": {
        "volumes": [{"name": "landing", "emptyDir": {}}],
        "containers": [
            {"name": "ingest", "volumeMounts": [{"name": "landing", "mountPath": "/lake/"}]}
        ],
    }
}
FIELD = "spec.podTemplate.spec.containers[0].volumeMounts[0].mountPath"
API_SAYS = 'Job.batch "x" is invalid: spec.template.spec.priorityClassName: Invalid value: "nope"'


@pytest.fixture
def lake_memo(memo: OperatorMemo) -> OperatorMemo:
    """The operator with a lake volume mounted at /lake in every Job pod."""
    settings = dataclasses.replace(
        memo.settings, lake_volume={"emptyDir": {}}, lake_mount_path="/lake"
    )
    return dataclasses.replace(memo, settings=settings)


async def reconcile(memo: OperatorMemo, fake: FakeKube) -> kopf.Patch:
    patch = kopf.Patch()
    await ingestionjob.reconcile(
        body=body(fake.obj(INGESTION_JOBS, NS, "load")),
        memo=memo,
        patch=patch,
        name="load",
        namespace=NS,
    )
    return patch


def ready_of(status: Any) -> dict[str, Any]:
    (cond,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return dict(cond)


async def test_a_mount_at_the_lake_path_is_refused_before_anything_is_written(
    fake: FakeKube, lake_memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj(podTemplate=COLLIDING))
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        await ingestionjob.reconcile(
            body=body(fake.obj(INGESTION_JOBS, NS, "load")),
            memo=lake_memo,
            patch=patch,
            name="load",
            namespace=NS,
        )
    assert patch.status["phase"] == "Failed"
    cond = ready_of(patch.status)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert f"IngestionJob {NS}/load: {FIELD}: is where the operator mounts" in cond["message"]
    assert "got '/lake/'" in cond["message"]
    assert fake.writes("create_job") == [] and fake.jobs == {}
    assert fake.writes("patch_status") == []  # no run recorded, not even currentRun
    assert events[-1].reason == "InvalidSpec"


async def test_the_same_mount_without_a_lake_volume_runs(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj(podTemplate=COLLIDING))
    await reconcile(memo, fake)
    assert len(fake.jobs) == 1


async def test_any_other_422_fails_the_run_for_good_with_the_api_servers_message(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj(priorityClassName="nope"))
    fake.refuse_jobs = lambda _manifest: API_SAYS
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError):  # never retried
        await ingestionjob.reconcile(
            body=body(fake.obj(INGESTION_JOBS, NS, "load")),
            memo=memo,
            patch=patch,
            name="load",
            namespace=NS,
        )
    assert len(fake.writes("create_job")) == 1 and fake.jobs == {}
    cond = ready_of(patch.status)
    assert (patch.status["phase"], cond["status"], cond["reason"]) == (
        "Failed",
        "False",
        "InvalidSpec",
    )
    assert API_SAYS in cond["message"] and "(HTTP 422)" in cond["message"]
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert "currentRun" not in status and "jobName" not in status  # the run never started
    assert "runs" not in status
    assert (events[-1].type, events[-1].reason) == ("Warning", "InvalidSpec")


async def test_a_scheduled_run_refused_with_422_spends_its_time_and_fails(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    scheduled(fake, lake, schedule="* * * * *")
    fake.refuse_jobs = lambda _manifest: API_SAYS
    patch = await tick(memo, fake)
    assert patch.status["phase"] == "Failed"
    assert ready_of(patch.status)["reason"] == "InvalidSpec"
    assert API_SAYS in ready_of(patch.status)["message"]
    assert patch.status.get("lastScheduleTime")  # the next tick waits for the next time
    assert "currentRun" not in fake.status(INGESTION_JOBS, NS, "load")
    assert fake.jobs == {}
