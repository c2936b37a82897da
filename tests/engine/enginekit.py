"""Helpers for engine tests: build plans, run them, read tables back independently."""

from __future__ import annotations

import os
import subprocess
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

#: processes started by :func:`spawn`, reaped after each test (tests/engine/conftest.py)
SPAWNED: list[subprocess.Popen[bytes]] = []


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``args`` with piped output; a test that fails before reading it leaves no
    process running and no pipe open for a later test to trip over."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    SPAWNED.append(proc)
    return proc


def reap_spawned() -> None:
    while SPAWNED:
        proc = SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


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


# ----------------------------------------------------------------- maintenance, per format

#: the formats every compaction test runs against
FORMATS = ("parquet", "delta", "iceberg")
DAILY = {"strategy": "date", "column": "ts", "granularity": "day"}
MAINT_HEADER = "id,user,ts,amount,country"
MAINT_COLUMNS = "id, user, ts, amount, country"


def maint_rows(first: int, n: int, days: tuple[int, ...] = (1, 2, 3, 4, 5)) -> list[str]:
    return [
        f"{i},u{i % 97},2024-03-{days[i % len(days)]:02d}T{i % 24:02d}:00:00,{i * 0.25},"
        f"{'DE' if i % 3 else 'FR'}"
        for i in range(first, first + n)
    ]


def open_lake(loc: Path, table_format: str) -> Any:
    """The table format at ``loc`` opened from its location, as ``lakeop compact`` does."""
    from lakeop.engine.formats import open_format  # noqa: PLC0415
    from lakeop.engine.formats.iceberg_catalog import read_target  # noqa: PLC0415
    from lakeop.storage import open_storage  # noqa: PLC0415

    storage = open_storage(f"file://{loc}")
    if table_format == "iceberg":
        storage.format_target = read_target(storage)
    return open_format(storage, table_format)


def ingest_into(  # noqa: PLR0917
    tmp: Path,
    loc: Path,
    table_format: str,
    run_id: str,
    first: int,
    n: int,
    days: tuple[int, ...] = (1, 2, 3, 4, 5),
) -> None:
    """One in-process run of ``n`` rows (ids from ``first``) into a daily-partitioned table."""
    src = write_csv(tmp / "src" / f"{run_id}.csv", MAINT_HEADER, maint_rows(first, n, days))
    p = plan(
        loc,
        csv_source(src),
        partitioning=DAILY,
        run_id=run_id,
        job=run_id,
        table_format=table_format,
    )
    result = run(p)
    assert result.error is None, result.error


def read_rows(loc: Path, table_format: str) -> list[tuple[Any, ...]]:
    """The table's rows through DuckDB over the format's own reader: the commit log's live
    files (parquet), ``delta_scan`` (delta), ``iceberg_scan`` at the catalog's current
    metadata (iceberg)."""
    if table_format == "delta":
        from deltakit import duck_delta  # noqa: PLC0415

        return duck_delta(loc, f"SELECT {MAINT_COLUMNS} FROM t")
    if table_format == "iceberg":
        from icebergkit import duck_rows  # noqa: PLC0415

        meta = open_lake(loc, "iceberg").metadata_location()
        return [] if meta is None else duck_rows(meta, f"SELECT {MAINT_COLUMNS} FROM t")
    files = [str(loc / p) for p in sorted(open_lake(loc, "parquet").live_files())]
    if not files:
        return []
    query = f"SELECT {MAINT_COLUMNS} FROM read_parquet({files}, union_by_name=true)"
    return duckdb.sql(query).fetchall()


def listed_rows(loc: Path, table_format: str) -> list[tuple[Any, ...]] | None:
    """A parquet table as a directory-listing reader sees it (None for the other formats,
    whose readers never list)."""
    if table_format != "parquet":
        return None
    return duck(loc, f"SELECT {MAINT_COLUMNS} FROM t")


def live_paths(loc: Path, table_format: str) -> set[str]:
    return set(open_lake(loc, table_format).live_files())


def sizes_per_partition(loc: Path, table_format: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for f in open_lake(loc, table_format).live_files().values():
        out.setdefault(f.partition, []).append(f.bytes)
    return out


def compaction_files(loc: Path, table_format: str, run_id: str) -> set[str] | None:
    """The files compaction ``run_id`` committed, None if it did not commit. Delta: the files
    of the table's OPTIMIZE commits (delta-rs keeps no run id)."""
    if table_format == "delta":
        from deltalake import DeltaTable  # noqa: PLC0415

        dt = DeltaTable(str(loc))
        if not any(h.get("operation") == "OPTIMIZE" for h in dt.history()):
            return None
        return live_paths(loc, "delta")
    c = open_lake(loc, table_format).find(run_id)
    return None if c is None else {f.path for f in c.files}


def compacted(loc: Path, table_format: str) -> bool:
    """Whether a compaction has committed into the table."""
    if table_format == "delta":
        from deltalake import DeltaTable  # noqa: PLC0415

        return any(h.get("operation") == "OPTIMIZE" for h in DeltaTable(str(loc)).history())
    return any(c.mode == "compact" for c in open_lake(loc, table_format).commits())
