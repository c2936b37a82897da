"""Run admission on the local cluster: with LAKEOP_MAX_CONCURRENT_RUNS=1 three runs of three
priorities wait Queued behind a running one, with their positions, and start by priority;
the queue is one queue across namespaces. The runs read PostgreSQL tables the test holds locked
(:class:`operator_e2e.HeldSource`), so each holds the slot until the test has seen the queue
and releases it, on any machine; the start order is seen in the runs' states one release at a
time, not in Job timestamps of one-second resolution that fast runs share."""

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


def test_queued_runs_start_by_priority(  # noqa: PLR0917 - fixtures
    kube: Any, operator: Operator, ns: str, module_tag: str, held: HeldSource, postgres_url: str
) -> None:
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
    holds = {
        n: HeldSource(postgres_url, f"q_{n}_{module_tag}".replace("-", "_"), 2 + i)
        for i, n in enumerate(priorities)
    }
    try:
        apply(
            kube,
            ns,
            *(sql_job(n, "q", holds[n].query, priority=p) for n, p in priorities.items()),
        )
        # all three wait, and their queue positions follow priority
        positions = wait_for(
            lambda: (
                (q := {n: status_of(kube, ns, "ingestionjobs", n) for n in priorities})
                and all(s.get("phase") == "Queued" for s in q.values())
                and {n: s.get("queuePosition") for n, s in q.items()}
                == {"high": 1, "mid": 2, "low": 3}
                and q
            ),
            timeout=60,
            what="low, mid and high Queued at positions 3, 2, 1",
        )
        ready = {c["type"]: c for c in positions["low"]["conditions"]}["Ready"]
        assert ready["reason"] == "MaxConcurrentRuns"
        assert "position 3" in ready["message"]
        assert status_of(kube, ns, "ingestionjobs", "first")["phase"] == "Running"
        # each run holds the slot until released: the next one in priority order takes it,
        # the others stay Queued with their positions moved up
        held.release()
        order = ["high", "mid", "low"]
        for i, name in enumerate(order):
            wait_status(
                kube,
                ns,
                "ingestionjobs",
                name,
                lambda s: s.get("phase") == "Running",
                what=f"{name} running",
                operator=operator,
            )
            behind = order[i + 1 :]
            wait_for(
                lambda behind=behind: all(
                    (s := status_of(kube, ns, "ingestionjobs", n)).get("phase") == "Queued"
                    and s.get("queuePosition") == k + 1
                    for k, n in enumerate(behind)
                ),
                timeout=30,
                what=f"{behind} still Queued, at positions 1.. in order",
            )
            holds[name].release()
        done = {
            name: wait_status(
                kube,
                ns,
                "ingestionjobs",
                name,
                lambda s: s.get("phase") == "Succeeded",
                what=f"{name} done",
                timeout=120,
                operator=operator,
            )
            for name in ("first", *order)
        }
    finally:
        for source in holds.values():
            source.close()
    assert done["first"]["lastRun"]["rowsWritten"] == held.rows
    assert {n: done[n]["lastRun"]["rowsWritten"] for n in order} == {
        n: holds[n].rows for n in order
    }
    assert not any("queuePosition" in done[n] for n in priorities)


def test_priority_orders_one_queue_across_namespaces(  # noqa: PLR0917 - fixtures
    kube: Any,
    operator: Operator,
    ns: str,
    ns2: str,
    tmp_path: Path,
    held: HeldSource,
    postgres_url: str,
    module_tag: str,
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
    with HeldSource(postgres_url, f"q_high_{module_tag}".replace("-", "_"), 3) as high:
        apply(kube, ns2, sql_job("high", "q", high.query, priority=10))
        wait_for(
            lambda: (
                status_of(kube, ns2, "ingestionjobs", "high").get("queuePosition") == 1
                and status_of(kube, ns, "ingestionjobs", "low").get("queuePosition") == 2
            ),
            timeout=60,
            what="high (other namespace) at position 1, low at position 2",
        )
        held.release()
        # high takes the slot (and holds it until released); low waits, now first in line
        wait_status(
            kube,
            ns2,
            "ingestionjobs",
            "high",
            lambda s: s.get("phase") == "Running",
            what="high running",
            operator=operator,
        )
        wait_for(
            lambda: (
                (s := status_of(kube, ns, "ingestionjobs", "low")).get("phase") == "Queued"
                and s.get("queuePosition") == 1
            ),
            timeout=30,
            what="low still Queued, at position 1",
        )
        high.release()
        done = {
            (namespace, name): wait_status(
                kube,
                namespace,
                "ingestionjobs",
                name,
                lambda s: s.get("phase") == "Succeeded",
                what=f"{namespace}/{name} done",
                timeout=120,
                operator=operator,
            )
            for namespace, name in ((ns, "first"), (ns2, "high"), (ns, "low"))
        }
    created = {
        key: lakeop_jobs(kube, key[0], key[1])[0].metadata.creation_timestamp for key in done
    }
    assert created[(ns, "first")] <= created[(ns2, "high")] <= created[(ns, "low")], created
    assert [done[k]["lastRun"]["rowsWritten"] for k in done] == [held.rows, 3, 3]
