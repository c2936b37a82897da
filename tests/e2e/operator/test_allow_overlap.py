"""``concurrencyPolicy: Allow`` on the local cluster: a one-minute schedule over a PostgreSQL
query that takes longer than a minute, so run 2 starts while run 1 still runs. Both are
tracked (run 1 in ``status.activeRuns``), both are recorded, and their input claims keep them
apart: the table ends with exactly the source's rows, none twice, though rows arrived while
run 1 was reading."""

from __future__ import annotations

import time
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from operator_e2e import (
    Operator,
    apply,
    db_secret,
    sql_job,
    status_of,
    table_with_v1,
    wait_for,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
#: a run reads the query twice (the claim's upper bound, then the rows): 80 s, longer than
#: the schedule's one-minute interval
QUERY = "SELECT id, v FROM events WHERE (SELECT true FROM pg_sleep(40))"


def _insert(url: str, ids: range, *, fresh: bool = False) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if fresh:
            conn.execute(sa.text("DROP TABLE IF EXISTS events"))
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS events (id bigint PRIMARY KEY, v text)"))
        conn.execute(
            sa.text("INSERT INTO events (id, v) VALUES (:id, :v)"),
            [{"id": i, "v": f"v{i}"} for i in ids],
        )
    engine.dispose()


def test_allow_runs_overlap_without_duplicating_or_losing_rows(
    kube: Any, operator: Operator, ns: str, postgres_url: str
) -> None:
    started = time.monotonic()
    _insert(postgres_url, range(1, 1001), fresh=True)
    location = table_with_v1(kube, operator, ns, "ev")
    db_secret(kube, ns, postgres_url)
    job = sql_job(
        "ev-load",
        "ev",
        QUERY,
        sql={"incrementalColumn": "id"},
        schedule="* * * * *",
        concurrencyPolicy="Allow",
    )
    apply(kube, ns, job)
    first = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "ev-load",
        lambda s: (s.get("currentRun") or {}).get("number") == 1,
        what="run 1 started by the schedule",
        timeout=80,
        operator=operator,
    )["currentRun"]
    _insert(postgres_url, range(1001, 1501))  # arrives while run 1 reads
    overlapping = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "ev-load",
        lambda s: (s.get("currentRun") or {}).get("number") == 2,
        what="run 2 started beside run 1 at the next schedule time",
        timeout=80,
        operator=operator,
    )
    # no run 3: stop scheduling now that two runs overlap
    kube.kubectl(
        "patch", "lij", "ev-load", "-n", ns, "--type", "merge", "-p", '{"spec":{"suspend":true}}'
    )
    active = overlapping.get("activeRuns") or []
    assert [(r["number"], r["jobName"]) for r in active] == [(1, first["jobName"])], overlapping
    assert overlapping["phase"] == "Running"
    done = wait_for(
        lambda: (
            (s := status_of(kube, ns, "ingestionjobs", "ev-load")).get("runs") == 2
            and not s.get("currentRun")
            and s
        ),
        timeout=400,
        what="both runs recorded",
    )
    assert (done["succeededRuns"], done["failedRuns"]) == (2, 0), done
    assert not done.get("activeRuns"), done
    commits = sorted((location / "_lakeop" / "commits").glob("*.json"))
    assert 1 <= len(commits) <= 2, commits  # run 2 commits nothing if run 1 took every row
    ids = [
        int(r[0])
        for r in duckdb.connect()
        .execute(f"SELECT id FROM read_parquet('{location}/**/*.parquet') ORDER BY id")
        .fetchall()
    ]
    assert ids == list(range(1, 1501)), (len(ids), len(set(ids)))
    table_status = status_of(kube, ns, "tables", "ev")
    assert table_status["rows"] == 1500
    assert time.monotonic() - started < 600
