"""Run admission on the local cluster: with LAKEOP_MAX_CONCURRENT_RUNS=1 a second run waits
Queued with its position, and waiting runs start by priority."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_e2e import (
    Operator,
    apply,
    ingestion_job,
    lakeop_jobs,
    make_operator,
    schema_version,
    table,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIELDS = [{"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "string"}]


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


def test_queued_runs_start_by_priority(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.csv"
    big.write_text("id,v\n" + "".join(f"{i},x{i % 13}\n" for i in range(300_000)))
    small = tmp_path / "small.csv"
    small.write_text("id,v\n1,a\n2,b\n")
    apply(kube, ns, table("q"), schema_version("q-v1", "q", 1, FIELDS))
    wait_status(
        kube,
        ns,
        "tables",
        "q",
        lambda s: s.get("currentSchemaVersion") == 1,
        what="schema",
        operator=operator,
    )
    apply(kube, ns, ingestion_job("first", "q", big.as_uri(), options={"header": True}))
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "first",
        lambda s: s.get("phase") == "Running",
        what="first running",
        operator=operator,
    )
    apply(
        kube,
        ns,
        ingestion_job("low", "q", small.as_uri(), options={"header": True}, priority=0),
        ingestion_job("high", "q", small.as_uri(), options={"header": True}, priority=10),
    )
    low = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "low",
        lambda s: s.get("phase") == "Queued",
        what="low Queued",
        operator=operator,
    )
    ready = {c["type"]: c for c in low["conditions"]}["Ready"]
    assert ready["reason"] == "MaxConcurrentRuns"
    assert "position" in ready["message"]
    assert low["queuePosition"] >= 1
    done = {}
    for name in ("first", "high", "low"):
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
    assert created["first"] < created["high"] < created["low"]
    assert done["low"]["lastRun"]["rowsWritten"] == 2
    assert "queuePosition" not in done["low"]
