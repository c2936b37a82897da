"""The last-success refresh against a fake API edge: snapshot, filter, and API failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lakeop.config import Settings
from lakeop.handlers.freshness import refresh_forever, refresh_once
from lakeop.kube.client import KubeError
from lakeop.metrics import Metrics

GAUGE = "lakeop_last_success_timestamp_seconds"
T0 = "2026-12-01T02:00:00+00:00"


class FakeKube:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.fail = False
        self.calls = 0

    async def list_all_objects(self, plural: str) -> list[dict[str, Any]]:
        assert plural == "ingestionjobs"
        self.calls += 1
        if self.fail:
            raise KubeError("list ingestionjobs in all namespaces: HTTP 503 Unavailable")
        return self.objects


def job(namespace: str, name: str, when: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {
            "tableRef": "events",
            "source": {"uri": "s3://landing/*.csv", "format": "csv"},
            "schedule": "*/15 * * * *",
        },
        "status": {"lastSuccessfulTime": when},
    }


def labels(namespace: str, name: str) -> dict[str, str]:
    return {"namespace": namespace, "ingestionjob": name}


def test_refresh_exports_served_jobs_and_drops_deleted_ones() -> None:
    kube = FakeKube([job("analytics", "daily", T0), job("elsewhere", "daily", T0)])
    metrics = Metrics()
    settings = Settings(default_location="file:///lake", served_namespaces=("analyt*",))
    assert asyncio.run(refresh_once(kube, metrics, settings)) == 1  # type: ignore[arg-type]
    assert metrics.sample(GAUGE, labels("analytics", "daily")) == 1796090400.0
    assert metrics.sample(GAUGE, labels("elsewhere", "daily")) is None
    text = metrics.render().decode()
    assert f"# TYPE {GAUGE} gauge" in text
    assert f'{GAUGE}{{ingestionjob="daily",namespace="analytics"}} 1.7960904e+09' in text
    interval = "lakeop_schedule_interval_seconds"
    assert metrics.sample(interval, labels("analytics", "daily")) == 900.0

    kube.objects = []  # the IngestionJob was deleted: its series goes with it
    asyncio.run(refresh_once(kube, metrics, settings))  # type: ignore[arg-type]
    assert metrics.sample(GAUGE, labels("analytics", "daily")) is None
    assert metrics.sample(interval, labels("analytics", "daily")) is None


def test_an_api_failure_keeps_the_last_snapshot() -> None:
    kube = FakeKube([job("analytics", "daily", T0)])
    metrics = Metrics()
    settings = Settings(default_location="file:///lake")
    asyncio.run(refresh_once(kube, metrics, settings))  # type: ignore[arg-type]
    kube.fail = True
    assert asyncio.run(refresh_once(kube, metrics, settings)) == -1  # type: ignore[arg-type]
    assert metrics.sample(GAUGE, labels("analytics", "daily")) == 1796090400.0


def test_the_loop_survives_failures_and_keeps_refreshing() -> None:
    kube = FakeKube([job("analytics", "daily", T0)])
    kube.fail = True
    metrics = Metrics()

    async def scenario() -> None:
        settings = Settings(default_location="file:///lake")
        task = asyncio.create_task(refresh_forever(kube, metrics, settings, interval=0.01))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert kube.calls >= 2 and not task.done()
        kube.fail = False
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert metrics.sample(GAUGE, labels("analytics", "daily")) == 1796090400.0
