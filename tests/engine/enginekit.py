"""Helpers for engine tests: build plans, run them, read tables back independently."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from lakeop.core.runs.plan import PlanTable, RunPlan
from lakeop.core.spec.layout import parse_partitioning
from lakeop.core.spec.resources import ObjectKey
from lakeop.core.spec.sources import SourceSpec, SqlSourceSpec
from lakeop.engine.run import run_plan
from lakeop.engine.run_result import RunResult

EVENTS = (
    {"name": "id", "type": "long", "nullable": False},
    {"name": "user", "type": "string"},
    {"name": "ts", "type": "timestamp"},
    {"name": "amount", "type": "double"},
    {"name": "country", "type": "string"},
)


def plan(
    location: str | Path,
    source: SourceSpec | SqlSourceSpec,
    *,
    fields: tuple[dict[str, Any], ...] = EVENTS,
    partitioning: dict[str, Any] | None = None,
    run_id: str = "run-1",
    job: str = "job",
    mode: str = "append",
    policy: str = "fail",
    version: int = 1,
    batch_size: int = 10_000,
    compression: str = "snappy",
    table_format: str = "parquet",
) -> RunPlan:
    loc = str(location)
    if loc.startswith("/"):
        loc = "file://" + loc
    part = parse_partitioning(ObjectKey("Table", "t", "t"), partitioning)
    return RunPlan(
        namespace="t",
        job=job,
        run_id=run_id,
        table=PlanTable(
            "events",
            loc,
            compression,
            part,
            table_format,
            ("t", "events") if table_format == "iceberg" else None,
        ),
        schema_version=version,
        schema_fields=fields,
        source=source,
        mode=mode,
        batch_size=batch_size,
        on_invalid_records=policy,
    )


def csv_source(path: str | Path, **options: Any) -> SourceSpec:
    return SourceSpec(f"file://{path}", "csv", dict(options))


def run(p: RunPlan, env: dict[str, str] | None = None) -> RunResult:
    return run_plan(p, dict(os.environ) if env is None else env, progress=None)


def duck(location: str | Path, query: str = "SELECT * FROM t") -> list[tuple[Any, ...]]:
    """Run ``query`` over the table as DuckDB sees it (hive partitioning, filename column)."""
    con = duckdb.connect()
    con.sql(
        f"CREATE VIEW t AS SELECT * FROM read_parquet('{location}/**/*.parquet', "
        "hive_partitioning=true, filename=true, union_by_name=true)"
    )
    return con.sql(query).fetchall()


def dataset(location: str | Path) -> pa.Table:
    return ds.dataset(str(location), format="parquet", partitioning="hive").to_table()


def visible_parquet(location: str | Path) -> list[Path]:
    return sorted(Path(location).rglob("*.parquet"))


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path
