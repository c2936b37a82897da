"""A run's live progress on the cluster: ``status.currentRun.progress`` while it reads.

The run reads a PostgreSQL query whose first rows stream out and whose next row waits for an
advisory lock the test holds (:class:`paused_source.PausedSource`): the run has read and
reported, and is still in flight, however fast or slow the machine. The operator's follow tick
(5 s here) reads the pod's last log lines and puts the progress on the status; once the test
lets the query go, the run commits every row once and the progress is gone with the run.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
from operator_e2e import (
    Operator,
    apply,
    db_secret,
    sql_job,
    table_with_v1,
    wait_for,
    wait_status,
)

from paused_source import PausedSource

pytestmark = [pytest.mark.e2e]

BEFORE, AFTER = 300_000, 1_000


def _progress(status: dict[str, Any]) -> dict[str, Any]:
    return dict((status.get("currentRun") or {}).get("progress") or {})


def test_a_paused_run_shows_its_progress_then_commits_every_row_once(
    kube: Any, operator: Operator, ns: str, postgres_url: str
) -> None:
    location = table_with_v1(kube, operator, ns, "prog")
    with PausedSource(postgres_url, random.randrange(1, 2**31), BEFORE, AFTER) as src:
        db_secret(kube, ns, src.url)
        apply(kube, ns, sql_job("prog-load", "prog", src.query, backoffLimit=0))
        wait_for(lambda: src.waiting() > 0, timeout=120, what="the run paused in its query")
        running = wait_status(
            kube,
            ns,
            "ingestionjobs",
            "prog-load",
            lambda s: _progress(s).get("rowsRead", 0) > 0,
            what="the paused run's progress on its status",
            timeout=60,
            operator=operator,
        )
        progress = _progress(running)
        assert running["phase"] == "Running"
        assert 0 < progress["rowsRead"] <= BEFORE, progress
        assert progress["rowsPerSecond"] > 0, progress
        assert "percent" not in progress  # a SQL source has no total to count against
        assert src.waiting() > 0  # still paused: the progress was read from a run in flight
        listed = kube.kubectl(
            "get", "lij", "prog-load", "-n", ns, "-o", "jsonpath={.status.currentRun.progress}"
        )
        assert '"rowsRead"' in listed.stdout, listed.stdout  # what kubectl shows a user
        src.release()
        done = wait_status(
            kube,
            ns,
            "ingestionjobs",
            "prog-load",
            lambda s: s.get("phase") == "Succeeded",
            what="the run done once the query went on",
            timeout=180,
            operator=operator,
        )
    assert not done.get("currentRun")
    assert done["lastRun"]["rowsWritten"] == BEFORE + AFTER
    ids = _ids(location)
    assert (len(ids), len(set(ids)), min(ids), max(ids)) == (
        BEFORE + AFTER,
        BEFORE + AFTER,
        1,
        BEFORE + AFTER,
    )


def _ids(location: Path) -> list[int]:
    rows = (
        duckdb.connect()
        .execute(f"SELECT id FROM read_parquet('{location}/**/*.parquet')")
        .fetchall()
    )
    return [int(r[0]) for r in rows]
