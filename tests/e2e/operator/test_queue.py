"""Run admission on the local cluster: with LAKEOP_MAX_CONCURRENT_RUNS=1 three runs of three
priorities wait Queued behind a running one, with their positions, and start by priority;
the queue is one queue across namespaces. The run holding the slot reads a PostgreSQL table the
test holds locked (:class:`operator_e2e.HeldSource`), so it holds the slot until the test has
seen the queue and releases it, on any machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_e2e import (
    HeldSource,
    Operator,
    apply,
    db_secret,
    ingestion_job,
    lakeop_jobs,
    make_operator,
    sql_job,
    status_of,
    table_with_v1,
    wait_for,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def operator(
    kube: Any, crds: None, module_tag: str, lake: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    op = make_operator(
        kube, module_tag, lake, tmp_path_factory.mktemp("operator"), LAKEOP_MAX_CONCURRENT_RUNS="1"
    )
    op.start()
    yield op
    op.stop()


def _setup(kube: Any, operator: Operator, ns: str, held: HeldSource) -> None:
    """Table ``q`` with v1 current, and the ``db`` secret of the held SQL runs."""
    table_with_v1(kube, operator, ns, "q")
    db_secret(kube, ns, held.url)


def test_queued_runs_start_by_priority(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, held: HeldSource
) -> None:
    small = tmp_path / "small.csv"
    small.write_text("id,v\n1,a\n2,b\n")
    _setup(kube, operator, ns, held)
    apply(kube, ns, sql_job("first", "q", held.query))  # holds the one slot until released
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "first",
        lambda s: s.get("phase") == "Running",
        what="first running",
        operator=operator,
    )
    priorities = {"low": 0, "mid": 5, "high": 10}
    apply(
        kube,
        ns,
        *(
            ingestion_job(n, "q", small.as_uri(), options={"header": True}, priority=p)
            for n, p in priorities.items()
        ),
    )
    # all three wait, and their queue positions follow priority
    positions = wait_for(
        lambda: (
            (q := {n: status_of(kube, ns, "ingestionjobs", n) for n in priorities})
            and all(s.get("phase") == "Queued" for s in q.values())
            and {n: s.get("queuePosition") for n, s in q.items()} == {"high": 1, "mid": 2, "low": 3}
            and q
        ),
        timeout=60,
        what="low, mid and high Queued at positions 3, 2, 1",
    )
    ready = {c["type"]: c for c in positions["low"]["conditions"]}["Ready"]
    assert ready["reason"] == "MaxConcurrentRuns"
    assert "position 3" in ready["message"]
    assert status_of(kube, ns, "ingestionjobs", "first")["phase"] == "Running"
    held.release()
    done = {}
    for name in ("first", "high", "mid", "low"):
        done[name] = wait_status(
            kube,
            ns,
            "ingestionjobs",
            name,
            lambda s: s.get("phase") == "Succeeded",
            what=f"{name} done",
            timeout=240,
            operator=operator,
        )
    created = {name: lakeop_jobs(kube, ns, name)[0].metadata.creation_timestamp for name in done}
    assert created["first"] < created["high"] < created["mid"] < created["low"], created
    starts = [done[n]["lastRun"]["startTime"] for n in ("first", "high", "mid", "low")]
    assert starts == sorted(starts)
    assert done["first"]["lastRun"]["rowsWritten"] == held.rows
    assert all(done[n]["lastRun"]["rowsWritten"] == 2 for n in priorities)
    assert not any("queuePosition" in done[n] for n in priorities)


def test_priority_orders_one_queue_across_namespaces(  # noqa: PLR0917 - fixtures
    kube: Any, operator: Operator, ns: str, ns2: str, tmp_path: Path, held: HeldSource
) -> None:
    small = tmp_path / "small.csv"
    small.write_text("id,v\n1,a\n2,b\n3,c\n")
    for namespace in (ns, ns2):
        _setup(kube, operator, namespace, held)
    apply(kube, ns, sql_job("first", "q", held.query))  # holds the one slot until released
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "first",
        lambda s: s.get("phase") == "Running",
        what="first running",
        operator=operator,
    )
    # the older, low-priority run waits in the first namespace; a newer high-priority run
    # in the second namespace goes ahead of it
    apply(kube, ns, ingestion_job("low", "q", small.as_uri(), options={"header": True}))
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "low",
        lambda s: s.get("phase") == "Queued",
        what="low Queued",
        operator=operator,
    )
    apply(
        kube,
        ns2,
        ingestion_job("high", "q", small.as_uri(), options={"header": True}, priority=10),
    )
    wait_for(
        lambda: (
            status_of(kube, ns2, "ingestionjobs", "high").get("queuePosition") == 1
            and status_of(kube, ns, "ingestionjobs", "low").get("queuePosition") == 2
        ),
        timeout=60,
        what="high (other namespace) at position 1, low at position 2",
    )
    held.release()
    done = {
        (namespace, name): wait_status(
            kube,
            namespace,
            "ingestionjobs",
            name,
            lambda s: s.get("phase") == "Succeeded",
            what=f"{namespace}/{name} done",
            timeout=240,
            operator=operator,
        )
        for namespace, name in ((ns, "first"), (ns2, "high"), (ns, "low"))
    }
    created = {
        key: lakeop_jobs(kube, key[0], key[1])[0].metadata.creation_timestamp for key in done
    }
    assert created[(ns, "first")] < created[(ns2, "high")] < created[(ns, "low")], created
    assert [done[k]["lastRun"]["rowsWritten"] for k in done] == [held.rows, 3, 3]
