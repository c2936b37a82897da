"""The per-namespace run limit on the local cluster: with
LAKEOP_MAX_CONCURRENT_RUNS_PER_NAMESPACE=1 a namespace's second run waits Queued (reason
NamespaceConcurrencyLimit) behind its first, while another namespace's run goes ahead. The
first run reads a PostgreSQL table the test holds locked (:class:`operator_e2e.HeldSource`), so
it keeps its slot until the test releases it, on any machine."""

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
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def operator(
    kube: Any, crds: None, module_tag: str, lake: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    op = make_operator(
        kube,
        module_tag,
        lake,
        tmp_path_factory.mktemp("operator"),
        LAKEOP_MAX_CONCURRENT_RUNS="10",
        LAKEOP_MAX_CONCURRENT_RUNS_PER_NAMESPACE="1",
    )
    op.start()
    yield op
    op.stop()


def test_a_full_namespace_queues_its_runs_and_not_the_others(  # noqa: PLR0917 - fixtures
    kube: Any, operator: Operator, ns: str, ns2: str, tmp_path: Path, held: HeldSource
) -> None:
    small = tmp_path / "small.csv"
    small.write_text("id,v\n1,a\n2,b\n")
    for namespace in (ns, ns2):
        table_with_v1(kube, operator, namespace, "t")
        db_secret(kube, namespace, held.url)
    apply(kube, ns, sql_job("slow", "t", held.query))  # holds the namespace's slot
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "slow",
        lambda s: s.get("phase") == "Running",
        what="slow running",
        operator=operator,
    )
    apply(kube, ns, ingestion_job("second", "t", small.as_uri(), options={"header": True}))
    queued = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "second",
        lambda s: s.get("phase") == "Queued",
        what="second Queued behind its namespace's running run",
        operator=operator,
    )
    ready = {c["type"]: c for c in queued["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "NamespaceConcurrencyLimit")
    assert queued["queuePosition"] == 1
    assert "1 runs at once in this namespace" in ready["message"]
    # the other namespace is not held back: its run starts and ends while slow still runs
    apply(kube, ns2, ingestion_job("other", "t", small.as_uri(), options={"header": True}))
    other = wait_status(
        kube,
        ns2,
        "ingestionjobs",
        "other",
        lambda s: s.get("phase") == "Succeeded",
        what="the other namespace's run done",
        timeout=120,
        operator=operator,
    )
    assert other["lastRun"]["rowsWritten"] == 2
    assert status_of(kube, ns, "ingestionjobs", "slow")["phase"] == "Running"
    assert status_of(kube, ns, "ingestionjobs", "second")["phase"] == "Queued"
    # when the namespace's slot frees, its queued run starts
    held.release()
    slow_done = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "slow",
        lambda s: s.get("phase") == "Succeeded",
        what="slow done",
        timeout=240,
        operator=operator,
    )
    second = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "second",
        lambda s: s.get("phase") == "Succeeded",
        what="second done after slow",
        timeout=120,
        operator=operator,
    )
    assert slow_done["lastRun"]["rowsWritten"] == held.rows
    assert second["lastRun"]["rowsWritten"] == 2
    assert "queuePosition" not in second
    slow_job, second_job = lakeop_jobs(kube, ns, "slow")[0], lakeop_jobs(kube, ns, "second")[0]
    assert second_job.metadata.creation_timestamp >= slow_job.status.completion_time
