"""The operator killed with SIGKILL mid-run and restarted: exactly one Job per run, and the
run's result is still recorded (the run identity is in status before the Job exists)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from operator_e2e import (
    Operator,
    apply,
    get,
    ingestion_job,
    lakeop_jobs,
    schema_version,
    table,
    wait_for,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIELDS = [{"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "string"}]
ROWS = 200_000


def _job_finished(kube: Any, ns: str, ij: str) -> bool:
    jobs = lakeop_jobs(kube, ns, ij)
    return bool(jobs) and all(
        any(
            c.type in ("Complete", "Failed") and c.status == "True"
            for c in j.status.conditions or []
        )
        for j in jobs
    )


@pytest.mark.parametrize("kill_when", ["run-recorded", "right-after-apply"])
def test_kill_and_restart_mid_run(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, kill_when: str
) -> None:
    src = tmp_path / "big.csv"
    src.write_text("id,v\n" + "".join(f"{i},value-{i % 97}\n" for i in range(ROWS)))
    apply(kube, ns, table("big"), schema_version("big-v1", "big", 1, FIELDS))
    wait_status(
        kube,
        ns,
        "schemaversions",
        "big-v1",
        lambda s: s.get("phase") == "Accepted",
        what="Accepted",
        operator=operator,
    )
    wait_status(
        kube,
        ns,
        "tables",
        "big",
        lambda s: s.get("currentSchemaVersion") == 1,
        what="current schema",
        operator=operator,
    )
    apply(kube, ns, ingestion_job("big-load", "big", src.as_uri(), options={"header": True}))
    if kill_when == "run-recorded":
        wait_for(
            lambda: (get(kube, ns, "ingestionjobs", "big-load").get("status") or {}).get(
                "currentRun"
            ),
            timeout=60,
            what="currentRun in status",
        )
    else:
        time.sleep(0.5)
    operator.kill()
    current = (get(kube, ns, "ingestionjobs", "big-load").get("status") or {}).get("currentRun")
    if current:  # the run may end while the operator is down: nobody records it meanwhile
        wait_for(lambda: _job_finished(kube, ns, "big-load"), timeout=120, what="Job finished")
        assert get(kube, ns, "ingestionjobs", "big-load")["status"]["currentRun"] == current
    operator.start()
    done = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "big-load",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="finished",
        timeout=180,
        operator=operator,
    )
    assert done["phase"] == "Succeeded", done
    assert done["runs"] == 1
    assert done["lastRun"]["rowsWritten"] == ROWS
    assert "currentRun" not in done
    jobs = lakeop_jobs(kube, ns, "big-load")
    assert [j.metadata.name for j in jobs] == [done["jobName"]]
    if current:
        assert current["jobName"] == done["jobName"]
    written = ds.dataset(
        str(operator.lake / ns / "big"), format="parquet", ignore_prefixes=["_", "."]
    ).count_rows()
    assert written == ROWS
    time.sleep(3)  # a late duplicate would show up now
    assert len(lakeop_jobs(kube, ns, "big-load")) == 1
