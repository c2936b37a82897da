"""End to end on the local cluster with ``format: delta``: a run's Job commits one Delta
version, the Table's status shows format, snapshot and totals from the Delta log, a version
that adds a field and promotes int→long is applied (the next run's rows and the earlier ones
read as v2), a version the Delta table cannot apply is Rejected (FormatCannotEvolve), and
deletionPolicy works both ways. The data is read back by DuckDB's delta_scan and by delta-rs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import pytest
from deltalake import DeltaTable
from kubernetes import client
from operator_e2e import (
    Operator,
    apply,
    ingestion_job,
    schema_version,
    status_of,
    table,
    wait_for,
    wait_status,
)

from lakeop.duckext import delta_extension

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIELDS = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "ts", "type": "timestamp", "nullable": False},
    {"name": "score", "type": "int"},
]
ROWS = 40


def _write_csv(path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "ts", "score"])
        for i in range(ROWS):
            w.writerow([i, f"2026-03-{1 + i % 3:02d}T0{i % 10}:00:00Z", i * 2])


def _delta_scan(location: Path, query: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        con.execute(f"LOAD '{delta_extension()}'")
        return con.sql(query.format(t=f"delta_scan('{location}')")).fetchall()
    finally:
        con.close()


def _run(kube: Any, operator: Operator, ns: str, name: str, src: Path, **spec: Any) -> Path:
    apply(
        kube,
        ns,
        table(
            name,
            format="delta",
            partitioning={"strategy": "date", "column": "ts", "granularity": "day"},
            **spec,
        ),
        schema_version(f"{name}-v1", name, 1, FIELDS),
        ingestion_job(f"{name}-load", name, src.as_uri(), options={"header": True}),
    )
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        f"{name}-load",
        lambda s: s.get("phase") == "Succeeded",
        what="Succeeded",
        timeout=180,
        operator=operator,
    )
    return operator.lake / ns / name


def test_delta_table_end_to_end(kube: Any, operator: Operator, ns: str, tmp_path: Path) -> None:
    _write_csv(tmp_path / "d.csv")
    location = _run(kube, operator, ns, "events", tmp_path / "d.csv")
    got = _delta_scan(location, "SELECT count(*), count(DISTINCT id), sum(score) FROM {t}")
    assert got == [(ROWS, ROWS, sum(i * 2 for i in range(ROWS)))]
    delta = DeltaTable(str(location))
    assert delta.metadata().partition_columns == ["year", "month", "day"]
    assert delta.to_pyarrow_table().num_rows == ROWS
    st = wait_status(
        kube,
        ns,
        "tables",
        "events",
        lambda s: s.get("rows") == ROWS and bool(s.get("snapshot")),
        what="totals and snapshot",
        timeout=90,
        operator=operator,
    )
    assert st["format"] == "delta"
    assert st["snapshot"]["id"] == str(delta.version())
    assert (st["files"], st["partitions"]) == (len(delta.file_uris()), 3)
    # v2: a field added and a promotion: the table is widened by a rewrite commit
    v2 = [*FIELDS[:2], {"name": "score", "type": "long"}, {"name": "note", "type": "string"}]
    apply(kube, ns, schema_version("events-v2", "events", 2, v2))
    wait_status(
        kube,
        ns,
        "tables",
        "events",
        lambda s: s.get("currentSchemaVersion") == 2,
        what="v2 accepted",
        timeout=60,
        operator=operator,
    )
    src2 = tmp_path / "d2.csv"
    src2.write_text("id,ts,score,note\n100,2026-03-04T01:00:00Z,3000000000,big\n")
    apply(
        kube, ns, ingestion_job("events-load2", "events", src2.as_uri(), options={"header": True})
    )
    wait_status(
        kube,
        ns,
        "ingestionjobs",
        "events-load2",
        lambda s: s.get("phase") == "Succeeded",
        what="Succeeded",
        timeout=180,
        operator=operator,
    )
    got = _delta_scan(
        location, "SELECT count(*), sum(score), typeof(any_value(score)), max(note) FROM {t}"
    )
    assert got == [(ROWS + 1, sum(i * 2 for i in range(ROWS)) + 3000000000, "BIGINT", "big")]
    read = DeltaTable(str(location)).to_pyarrow_table()
    assert str(read.schema.field("score").type) == "int64" and read.num_rows == ROWS + 1
    # v3: an added field with a default: BACKWARD allows it, a Delta table cannot apply it
    v3 = [*v2, {"name": "region", "type": "string", "default": "eu"}]
    apply(kube, ns, schema_version("events-v3", "events", 3, v3))
    sv = wait_status(
        kube,
        ns,
        "schemaversions",
        "events-v3",
        lambda s: bool(s.get("phase")),
        what="judged",
        timeout=60,
        operator=operator,
    )
    assert sv["phase"] == "Rejected"
    assert sv["conditions"][0]["reason"] == "FormatCannotEvolve"
    assert "region" in sv["conditions"][0]["message"]
    assert status_of(kube, ns, "tables", "events")["currentSchemaVersion"] == 2


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_delta_deletion_policy(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, policy: str
) -> None:
    _write_csv(tmp_path / "d.csv")
    name = f"dgone-{policy.lower()}"
    location = _run(kube, operator, ns, name, tmp_path / "d.csv", deletionPolicy=policy)
    assert (location / "_delta_log").is_dir()
    kube.kubectl("delete", "ltbl", name, "-n", ns, "--timeout=60s")
    api = client.CustomObjectsApi(kube.api)

    def gone() -> bool:
        try:
            api.get_namespaced_custom_object("lakeop.io", "v1alpha1", ns, "tables", name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=60, what=f"Table {name} deleted")
    if policy == "Retain":  # still a readable Delta table
        assert _delta_scan(location, "SELECT count(*) FROM {t}") == [(ROWS,)]
    else:
        assert not location.exists()
