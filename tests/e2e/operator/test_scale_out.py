"""Scale-out on the local cluster: ``parallelism: 3`` over 9 files is an Indexed Job of 3
pods; one share fails once for real and is retried alone; the run commits exactly once. A
PostgreSQL query with ``parallelism: 3`` is split by key range, each pod reading a part.

Share 1's first attempt cannot complete: the place of its share manifest is occupied by a
directory (created while the IngestionJob is suspended, so before any pod starts). Once its
pod has failed, the test clears the place; Kubernetes retries index 1 only, and that pod
completes the set and commits.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from kubernetes import client
from operator_e2e import (
    Operator,
    apply,
    db_secret,
    get,
    ingestion_job,
    lakeop_jobs,
    sql_job,
    table_with_v1,
    wait_status,
)

from lakeop.core.runs.jobs import run_id
from lakeop.core.runs.shard_status import INDEX_ANNOTATION

# Process node: on kubenode every share of the failing-share test failed (seen once, not
# diagnosed yet; issue 15), so this module's Job pods stay host processes for now
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.process_node]


def make_files(src: Path) -> int:
    src.mkdir()
    next_id = 0
    for n in range(9):
        rows = range(next_id, next_id + 500 * (n + 1))
        (src / f"f{n}.csv").write_text("id,v\n" + "".join(f"{i},x{i % 7}\n" for i in rows))
        next_id += len(rows)
    return next_id


def share_pods(kube: Any, ns: str, index: int) -> list[Any]:
    pods = client.CoreV1Api(kube.api).list_namespaced_pod(
        ns, label_selector="lakeop.io/ingestionjob=fan"
    )
    return [
        p for p in pods.items if (p.metadata.annotations or {}).get(INDEX_ANNOTATION) == str(index)
    ]


def test_parallelism_3_with_one_share_failing_once(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, wait_for: Any
) -> None:
    total = make_files(tmp_path / "src")
    location = table_with_v1(kube, operator, ns, "fan")
    uri = (tmp_path / "src").as_uri() + "/*.csv"
    job = ingestion_job(
        "fan", "fan", uri, options={"header": True}, parallelism=3, backoffLimit=2, suspend=True
    )
    apply(kube, ns, job)
    wait_status(
        kube, ns, "ingestionjobs", "fan", lambda s: s.get("phase") == "Suspended", what="held"
    )
    uid = get(kube, ns, "ingestionjobs", "fan")["metadata"]["uid"]
    blocker = location / "_lakeop" / "staging" / run_id(uid, 1) / "shards" / "1.json"
    (blocker / "occupied").mkdir(parents=True)

    kube.kubectl(
        "patch",
        "ingestionjob",
        "fan",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        '{"spec":{"suspend":false}}',
    )
    wait_for(
        lambda: any(p.status.phase == "Failed" for p in share_pods(kube, ns, 1)),
        timeout=120,
        what="share 1's first pod failed",
    )
    # progress while in flight (the operator's follow timer runs every 5 s here; Kubernetes
    # waits 10 s before retrying a failed index)
    progress = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "fan",
        lambda s: (
            [x.get("state") for x in (s.get("currentRun") or {}).get("shards") or []][::2]
            == ["Done", "Done"]
        ),
        what="per-share progress in currentRun",
        timeout=8,
        operator=operator,
    )
    assert progress["currentRun"]["shards"][1]["state"] in {"Failed", "Pending", "Running"}
    shutil.rmtree(blocker)

    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "fan",
        lambda s: s.get("phase") in {"Succeeded", "Failed"},
        what="run finished",
        timeout=240,
        operator=operator,
    )
    assert status["phase"] == "Succeeded", status
    last = status["lastRun"]
    assert last["rowsWritten"] == total
    assert last["rowsRead"] == total
    assert last.get("error") is None
    shards = last["shards"]
    assert [s["index"] for s in shards] == [0, 1, 2]
    assert {s["state"] for s in shards} == {"Done"}
    assert sum(s["rowsWritten"] for s in shards) == total

    jobs = lakeop_jobs(kube, ns, "fan")
    assert len(jobs) == 1
    assert jobs[0].spec.completion_mode == "Indexed"
    assert jobs[0].spec.completions == 3
    assert [p.status.phase for p in share_pods(kube, ns, 1)].count("Failed") == 1
    assert all(len(share_pods(kube, ns, i)) == 1 for i in (0, 2))  # done shares not redone

    con = duckdb.connect()
    got = con.sql(
        f"SELECT count(*), count(DISTINCT id), min(id), max(id) "
        f"FROM read_parquet('{location}/**/*.parquet')"
    ).fetchall()
    assert got == [(total, total, 0, total - 1)]
    assert len(list((location / "_lakeop" / "commits").glob("*.json"))) == 1
    wait_status(
        kube,
        ns,
        "tables",
        "fan",
        lambda s: s.get("rows") == total,
        what="table totals",
        operator=operator,
    )


def test_parallelism_3_splits_a_postgresql_query_by_key_range(
    kube: Any, operator: Operator, ns: str, postgres_url: str
) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS fan_src"))
        conn.execute(sa.text("CREATE TABLE fan_src (id bigint PRIMARY KEY, v text)"))
        conn.execute(
            sa.text("INSERT INTO fan_src SELECT g, 'x' || g FROM generate_series(1, 9000) g")
        )
    engine.dispose()
    location = table_with_v1(kube, operator, ns, "fsql")
    db_secret(kube, ns, postgres_url)
    sql = {"incrementalColumn": "id"}
    job = sql_job("fsql", "fsql", "SELECT id, v FROM fan_src", sql=sql, parallelism=3)
    apply(kube, ns, job)
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "fsql",
        lambda s: s.get("phase") in {"Succeeded", "Failed"},
        what="run finished",
        timeout=240,
        operator=operator,
    )
    assert status["phase"] == "Succeeded", status
    shards = status["lastRun"]["shards"]
    assert [s["index"] for s in shards] == [0, 1, 2]
    rows = [s["rowsWritten"] for s in shards]
    assert sum(rows) == 9000 and all(r > 0 for r in rows), shards  # every share read a part
    assert lakeop_jobs(kube, ns, "fsql")[0].spec.completion_mode == "Indexed"
    got = duckdb.sql(
        f"SELECT count(*), count(DISTINCT id), min(id), max(id) "
        f"FROM read_parquet('{location}/**/*.parquet')"
    ).fetchall()
    assert got == [(9000, 9000, 1, 9000)]
    assert len(list((location / "_lakeop" / "commits").glob("*.json"))) == 1
