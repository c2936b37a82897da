"""Table maintenance on the local cluster: an on-demand compaction by annotation, then a
scheduled one (every minute), each an owned batch/v1 Job running ``lakeop compact`` (then
expiry), checked through the API server (``status.maintenance``, Events, the Jobs' owner),
the operator's metrics endpoint, and DuckDB over the committed files before and after (the
same multiset of rows, fewer files)."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kubernetes import client
from operator_e2e import (
    Operator,
    apply,
    get,
    ingestion_job,
    make_operator,
    table_with_v1,
    wait_status,
)

from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import live_files
from lakeop.storage import open_storage
from waiting import wait_for

pytestmark = pytest.mark.e2e

ROWS = 40  # per ingestion run: each run writes one small file (the table is unpartitioned)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def operator(  # noqa: PLR0917  (pytest passes fixtures positionally)
    kube: Any,
    crds: None,
    module_tag: str,
    lake: Path,
    metrics_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    op = make_operator(
        kube,
        module_tag,
        lake,
        tmp_path_factory.mktemp("operator"),
        LAKEOP_METRICS_PORT=str(metrics_port),
    )
    op.start()
    yield op
    op.stop()


def committed(location: Path) -> tuple[Counter[tuple[Any, ...]], int]:
    """The table's rows (a multiset, through DuckDB over the commit log's live files) and
    how many files hold them."""
    files = sorted(live_files(CommitLog(open_storage(location.as_uri())).commits()))
    paths = [str(location / p) for p in files]
    rows = duckdb.sql(f"SELECT id, v FROM read_parquet({paths})").fetchall()
    return Counter(rows), len(files)


def ingest_runs(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, *, first: int, count: int
) -> None:
    """``count`` IngestionJobs of ``ROWS`` rows each, waited for: ``count`` small files."""
    for r in range(first, first + count):
        src = tmp_path / f"part-{r}.csv"
        src.write_text("id,v\n" + "".join(f"{r * ROWS + i},v{i % 5}\n" for i in range(ROWS)))
        apply(
            kube, ns, ingestion_job(f"load-{r}", "events", src.as_uri(), options={"header": True})
        )
    for r in range(first, first + count):
        wait_status(
            kube, ns, "ingestionjobs", f"load-{r}",
            lambda s: s.get("phase") in ("Succeeded", "Failed"),
            what="run ended", timeout=180, operator=operator,
        )  # fmt: skip
        assert get(kube, ns, "ingestionjobs", f"load-{r}")["status"]["phase"] == "Succeeded"


def table_events(kube: Any, ns: str) -> list[Any]:
    items = client.CoreV1Api(kube.api).list_namespaced_event(ns).items
    return [e for e in items if e.involved_object.kind == "Table"]


def scrape(port: int, ns: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    labels = f'{{namespace="{ns}",table="events"}} '
    return {
        line.split("{", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if labels in line
    }


def test_on_demand_then_scheduled_compaction(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, metrics_port: int
) -> None:
    location = table_with_v1(kube, operator, ns, "events")
    ingest_runs(kube, operator, ns, tmp_path, first=0, count=6)
    before, files = committed(location)
    assert files == 6 and sum(before.values()) == 6 * ROWS
    wait_status(
        kube, ns, "tables", "events", lambda s: s.get("smallFiles") == 6,
        what="6 small files", operator=operator,
    )  # fmt: skip

    # on demand: a new token, one run; retention 0s, so expiry deletes the replaced files
    patch = {"spec": {"maintenance": {"retention": {"snapshots": "0s"}}}}
    kube.kubectl("patch", "ltbl", "events", "-n", ns, "--type=merge", "-p", json.dumps(patch))
    kube.kubectl("annotate", "ltbl", "events", "-n", ns, "lakeop.io/compact=first", "--overwrite")
    status = wait_status(
        kube, ns, "tables", "events",
        lambda s: "lastCompaction" in (s.get("maintenance") or {})
        and not s["maintenance"].get("currentRun"),
        what="the on-demand compaction recorded", timeout=180, operator=operator,
    )  # fmt: skip
    m = status["maintenance"]
    assert m["lastCompactToken"] == "first"
    assert m["lastRun"]["trigger"] == "annotation lakeop.io/compact=first"
    assert m["lastRun"].get("error") is None
    last = m["lastCompaction"]
    assert (last["partitions"], last["filesBefore"], last["filesAfter"]) == (1, 6, 1)
    assert last["bytesBefore"] > 0 and last["bytesAfter"] > 0
    assert m["lastExpiry"]["filesDeleted"] == 6 and m["lastExpiry"]["bytesFreed"] > 0
    after, files = committed(location)
    assert after == before and files == 1
    assert not list((location / "_lakeop" / "retired").rglob("*.retired"))  # expired
    wait_status(
        kube, ns, "tables", "events", lambda s: s.get("smallFiles") == 1 and s.get("files") == 1,
        what="totals after compaction", operator=operator,
    )  # fmt: skip
    jobs = (
        client.BatchV1Api(kube.api)
        .list_namespaced_job(ns, label_selector="lakeop.io/maintenance=compact")
        .items
    )
    assert [j.metadata.name for j in jobs] == [m["lastRun"]["jobName"]]
    (owner,) = jobs[0].metadata.owner_references
    assert (owner.kind, owner.name) == ("Table", "events")
    reasons = [e.reason for e in table_events(kube, ns)]
    assert {"JobCreated", "Compacted", "Expired"} <= set(reasons), reasons

    # scheduled: every minute; more small files first
    ingest_runs(kube, operator, ns, tmp_path, first=6, count=3)
    before, files = committed(location)
    assert files == 4 and sum(before.values()) == 9 * ROWS
    patch = {"spec": {"maintenance": {"compaction": {"schedule": "* * * * *", "minInputFiles": 3}}}}
    kube.kubectl("patch", "ltbl", "events", "-n", ns, "--type=merge", "-p", json.dumps(patch))
    status = wait_status(
        kube, ns, "tables", "events",
        lambda s: str(((s.get("maintenance") or {}).get("lastRun") or {}).get("trigger"))
        .startswith("schedule ") and not s["maintenance"].get("currentRun"),
        what="a scheduled compaction recorded", timeout=240, operator=operator,
    )  # fmt: skip
    m = status["maintenance"]
    assert m["lastRun"].get("error") is None and m["nextCompactionTime"] > m["lastScheduleTime"]
    last = m["lastCompaction"]
    assert (last["partitions"], last["filesBefore"], last["filesAfter"]) == (1, 4, 1)
    after, files = committed(location)
    assert after == before and files == 1

    metrics = wait_for(
        lambda: (s := scrape(metrics_port, ns)).get("lakeop_maintenance_runs_succeeded_total", 0)
        >= 2 and s,
        timeout=30, what="maintenance metrics",
    )  # fmt: skip
    assert metrics["lakeop_files_compacted_total"] >= 10  # 6 + 4 (+ 0 for runs that found none)
    assert metrics["lakeop_files_expired_total"] >= 10
    assert metrics["lakeop_bytes_compacted_total"] > 0
    assert metrics["lakeop_maintenance_runs_failed_total"] == 0
    assert metrics["lakeop_maintenance_duration_seconds_count"] >= 2
    reasons = [e.reason for e in table_events(kube, ns)]
    assert reasons.count("Compacted") >= 2 and "MaintenanceFailed" not in reasons
