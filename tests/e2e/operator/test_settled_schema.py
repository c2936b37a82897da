"""Runs write under the settled schema: one ``kubectl apply`` of a Table, its SchemaVersions
v1, v2 and v3 (incompatible) and an IngestionJob together, as a GitOps sync or the README's
examples do. The run starts only once every SchemaVersion is decided, and writes under v2, the
highest Accepted one, never under v1 while v2 is still being judged; the Rejected v3 does not
hold it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from operator_e2e import (
    Operator,
    apply,
    ingestion_job,
    schema_version,
    status_of,
    table,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

V1 = [{"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "int"}]
V2 = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "v", "type": "long"},  # widened
    {"name": "note", "type": "string"},  # added, optional
]
V3 = [*V2, {"name": "score", "type": "int", "nullable": False}]  # required, no default


def test_one_apply_of_table_versions_and_job_writes_under_the_highest_accepted(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    src = tmp_path / "in.csv"
    # 3e9 does not fit v1's int: a run under v1 would reject those rows
    src.write_text("id,v,note\n1,3000000000,a\n2,7,b\n3,-3000000000,\n")
    apply(
        kube,
        ns,
        table("gs"),
        schema_version("gs-v1", "gs", 1, V1),
        schema_version("gs-v2", "gs", 2, V2),
        schema_version("gs-v3", "gs", 3, V3),
        ingestion_job("gs-load", "gs", src.as_uri(), options={"header": True}),
    )
    done = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "gs-load",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="the run done",
        timeout=120,
        operator=operator,
    )
    assert done["phase"] == "Succeeded", done
    run = done["lastRun"]
    assert (run["schemaVersion"], run["rowsWritten"], run.get("rowsRejected", 0)) == (2, 3, 0)
    phases = {
        n: status_of(kube, ns, "schemaversions", n).get("phase")
        for n in ("gs-v1", "gs-v2", "gs-v3")
    }
    assert phases == {"gs-v1": "Accepted", "gs-v2": "Accepted", "gs-v3": "Rejected"}
    location = str(status_of(kube, ns, "tables", "gs")["location"]).removeprefix("file://")
    files = sorted(Path(location).rglob("*.parquet"))
    assert files
    data = ds.dataset([str(f) for f in files], format="parquet").to_table()
    assert data.schema.field("v").type == pa.int64()  # v2's type, not v1's int32
    assert data.schema.field("note").type == pa.string()
    assert "score" not in data.schema.names
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT id, v, note FROM read_parquet('{location}/**/*.parquet') ORDER BY id"
    ).fetchall()
    assert rows == [(1, 3_000_000_000, "a"), (2, 7, "b"), (3, -3_000_000_000, None)]


def test_a_run_waits_for_versions_still_being_judged_behind_a_ready_table(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    """The same rule with the table already Ready under v1, so the only thing that can hold
    the run is the rule itself: v2 and v3 come with the IngestionJob, and v3 is judged only
    after v2 (the operator re-checks it a few seconds later), while the run could start at
    once under v1 or v2."""
    src = tmp_path / "in.csv"
    src.write_text("id,v,note\n1,3000000000,a\n2,7,b\n")
    apply(kube, ns, table("gt"), schema_version("gt-v1", "gt", 1, V1))
    wait_status(
        kube,
        ns,
        "tables",
        "gt",
        lambda s: s.get("currentSchemaVersion") == 1 and bool(s.get("location")),
        what="v1 current",
        operator=operator,
    )
    with_note = [*V1, {"name": "note", "type": "string"}]
    apply(
        kube,
        ns,
        schema_version("gt-v2", "gt", 2, with_note),
        schema_version("gt-v3", "gt", 3, V2),  # v widened to long
        ingestion_job("gt-load", "gt", src.as_uri(), options={"header": True}),
    )
    done = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "gt-load",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="the run done",
        timeout=120,
        operator=operator,
    )
    assert done["phase"] == "Succeeded", done
    assert (done["lastRun"]["schemaVersion"], done["lastRun"]["rowsWritten"]) == (3, 2)
    location = str(status_of(kube, ns, "tables", "gt")["location"]).removeprefix("file://")
    files = [str(f) for f in Path(location).rglob("*.parquet")]
    data = ds.dataset(files, format="parquet").to_table()
    assert data.schema.field("v").type == pa.int64()
    rows = (
        duckdb.connect()
        .execute(f"SELECT id, v, note FROM read_parquet('{location}/**/*.parquet') ORDER BY id")
        .fetchall()
    )
    assert rows == [(1, 3_000_000_000, "a"), (2, 7, "b")]
