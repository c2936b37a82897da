"""IngestionJob reconcile against the fake API edge: the gates before a run (table, schema,
queue), the run's identity written before its Job, idempotence on resume, suspend, rerun and
cancel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube
from handler_builders import NS, Event, body, ij_obj, ready, sv_obj, table_obj

from lakeop.config import Settings
from lakeop.core.constants import INGESTION_JOBS, SCHEMA_VERSIONS, TABLES
from lakeop.core.runs.jobs import job_name, run_id
from lakeop.handlers import ingestionjob
from lakeop.memo import OperatorMemo

RUN1 = job_name("load", "uid-load", 1)


async def reconcile(memo: OperatorMemo, fake: FakeKube, name: str = "load") -> kopf.Patch:
    patch = kopf.Patch()
    await ingestionjob.reconcile(
        body=body(fake.obj(INGESTION_JOBS, NS, name)),
        memo=memo,
        patch=patch,
        name=name,
        namespace=NS,
    )
    return patch


def ready_condition(status: dict[str, Any]) -> tuple[str, str]:
    (cond,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return cond["status"], cond["reason"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("none", "TableNotFound"),
        ("not-ready", "TableNotReady"),
        ("pending-schema", "WaitingForSchema"),
        ("rejected-schema", "NoAcceptedSchema"),
    ],
)
async def test_a_run_waits_at_the_gates_without_a_job(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event], *, setup: str, reason: str
) -> None:
    if setup == "not-ready":
        fake.put(TABLES, table_obj())
    elif setup != "none":
        ready(fake, lake, accepted=0)
        phase = "Pending" if setup == "pending-schema" else "Rejected"
        fake.put(SCHEMA_VERSIONS, sv_obj(1, phase=phase))
    fake.put(INGESTION_JOBS, ij_obj())
    with pytest.raises(kopf.TemporaryError):
        await reconcile(memo, fake)
    assert fake.writes("create_job") == []
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert status["phase"] == "Pending"
    assert ready_condition(status) == ("False", reason)
    assert "currentRun" not in status
    assert [(e.type, e.reason) for e in events] == [("Normal", reason)]


async def test_waiting_again_posts_no_second_event(
    fake: FakeKube, memo: OperatorMemo, events: list[Event]
) -> None:
    fake.put(INGESTION_JOBS, ij_obj())
    for _ in range(2):
        with pytest.raises(kopf.TemporaryError):
            await reconcile(memo, fake)
    assert len(events) == 1


async def test_a_run_starts_with_its_identity_written_before_its_job(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    ready(fake, lake, accepted=2)
    fake.put(INGESTION_JOBS, ij_obj())
    await reconcile(memo, fake)
    first, second = fake.calls[0], fake.calls[1]
    assert (first.verb, first.kind) == ("patch_status", INGESTION_JOBS)
    assert first.body["currentRun"]["jobName"] == RUN1
    assert first.body["currentRun"]["runId"] == run_id("uid-load", 1)
    assert first.body["currentRun"]["schemaVersion"] == 2  # the highest Accepted
    assert first.body["phase"] == "Running"
    assert (second.verb, second.name) == ("create_job", RUN1)
    manifest = second.body
    assert manifest["metadata"]["labels"]["lakeop.io/ingestionjob"] == "load"
    assert manifest["metadata"]["labels"]["lakeop.io/run"] == "1"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "uid-load"
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "lakeop:test"
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    plan = json.loads(next(v for k, v in env.items() if v and k.endswith("PLAN")))
    assert plan["runId"] == run_id("uid-load", 1)
    assert plan["table"]["location"] == (lake / NS / "events").as_uri()
    assert [(e.reason, e.message.split(":")[0]) for e in events] == [
        ("JobCreated", f"run 1 ({run_id('uid-load', 1)})")
    ]
    assert memo.metrics.sample("lakeop_runs_started_total", {"namespace": NS, "table": "events"})


async def test_resume_recreates_the_same_job_once(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj())
    await reconcile(memo, fake)
    fake.jobs.clear()  # the operator died after writing currentRun, before the Job existed
    await reconcile(memo, fake)
    created = fake.writes("create_job")
    assert [c.name for c in created] == [RUN1, RUN1]
    assert fake.status(INGESTION_JOBS, NS, "load")["currentRun"]["number"] == 1
    await reconcile(memo, fake)  # the Job exists now: nothing to do
    assert len(fake.writes("create_job")) == 2


async def test_a_full_queue_holds_the_run(
    fake: FakeKube, settings: Settings, lake: Path, events: list[Event]
) -> None:
    memo = OperatorMemo(
        settings=Settings(default_location=settings.default_location, max_concurrent_runs=1),
        kube=fake,
    )
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj("other", status={"phase": "Running"}))
    fake.put_job(
        {
            "metadata": {
                "name": "other-run",
                "namespace": NS,
                "labels": {
                    "app.kubernetes.io/managed-by": "lakeop",
                    "lakeop.io/ingestionjob": "other",
                },
            },
            "status": {"active": 1},
        }
    )
    fake.put(INGESTION_JOBS, ij_obj())
    with pytest.raises(kopf.TemporaryError, match="queue"):
        await reconcile(memo, fake)
    assert fake.writes("create_job") == []
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert status["phase"] == "Queued"
    assert status["queuePosition"] == 1
    assert ready_condition(status) == ("False", "MaxConcurrentRuns")
    # the slot frees: the queued run starts and its queue position is cleared
    fake.finish_job(NS, "other-run", succeeded=True, at="2026-01-01T00:05:00Z")
    await reconcile(memo, fake)
    assert [c.name for c in fake.writes("create_job")] == [RUN1]
    assert "queuePosition" not in fake.status(INGESTION_JOBS, NS, "load")


async def test_suspended_does_not_start(fake: FakeKube, memo: OperatorMemo, lake: Path) -> None:
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj(suspend=True))
    patch = await reconcile(memo, fake)
    assert patch["status"]["phase"] == "Suspended"
    assert ready_condition(dict(patch["status"])) == ("False", "Suspended")
    assert fake.calls == []


async def test_a_rerun_token_starts_the_next_run_once(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    ready(fake, lake)
    done = {"phase": "Succeeded", "runs": 1, "succeededRuns": 1, "lastRun": {"number": 1}}
    ij = fake.put(INGESTION_JOBS, ij_obj(status=done))
    await reconcile(memo, fake)
    assert fake.calls == []  # ran once already, no token
    ij["metadata"]["annotations"] = {"lakeop.io/rerun": "again"}
    await reconcile(memo, fake)
    status = fake.status(INGESTION_JOBS, NS, "load")
    assert status["currentRun"]["number"] == 2
    assert status["lastRerunToken"] == "again"
    assert [c.name for c in fake.writes("create_job")] == [job_name("load", "uid-load", 2)]
    # the run ends; the same token does not start a third
    ij = fake.obj(INGESTION_JOBS, NS, "load")
    ij["status"].update(phase="Succeeded", runs=2, lastRun={"number": 2})
    ij["status"].pop("currentRun")
    await reconcile(memo, fake)
    assert len(fake.writes("create_job")) == 1


async def test_suspend_holds_a_running_run_and_cancel_deletes_its_job(
    fake: FakeKube, memo: OperatorMemo, lake: Path
) -> None:
    ready(fake, lake)
    fake.put(INGESTION_JOBS, ij_obj())
    await reconcile(memo, fake)
    ij = fake.obj(INGESTION_JOBS, NS, "load")
    ij["spec"]["suspend"] = True
    await reconcile(memo, fake)  # suspend alone lets the active run finish
    assert fake.writes("delete_job") == []
    ij["metadata"]["annotations"] = {"lakeop.io/cancel": "true"}
    await reconcile(memo, fake)
    assert [c.name for c in fake.writes("delete_job")] == [RUN1]
    assert (NS, RUN1) not in fake.jobs
    assert len(fake.writes("create_job")) == 1  # and nothing re-created it
