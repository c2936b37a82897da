"""Compaction of many small files: lakeop's parquet compaction vs delta-rs ``optimize.compact``.

Both tables hold the same small files (FILES files of ROWS_PER_FILE rows over PARTITIONS
daily partitions, one commit per file, as a job run every few minutes leaves them). Each
compaction runs in its own process (peak RSS is that process's, against the Job pod's
default memory limit of 1 GiB). Reported: rows/s and input MB/s of each, lakeop's as a ratio
of delta-rs's (the target is >= 1.0x), and a DuckDB aggregate over the lakeop table before
and after, with the number of files it opened.

Scaled down from the issue's 2,000 files / 20M rows to 2,000 files / 2M rows by default
(``LAKEOP_BENCH_COMPACT_ROWS`` sets the rows per file): the shared 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from lakeop.core.schema.parse import parse_fields
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import Commit, DataFile, live_files
from lakeop.engine.compaction import CompactionPolicy, compact
from lakeop.storage import open_storage

FILES = int(os.environ.get("LAKEOP_BENCH_COMPACT_FILES", "2000"))
ROWS_PER_FILE = int(os.environ.get("LAKEOP_BENCH_COMPACT_ROWS", "1000"))
PARTITIONS = 20
TARGET = 128 * 1024 * 1024
POD_LIMIT = 1024 * 1024 * 1024
FIELDS = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "user", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "country", "type": "string"},
]


def batch(i: int) -> pa.Table:
    rng = np.random.default_rng(i)
    ids = np.arange(i * ROWS_PER_FILE, (i + 1) * ROWS_PER_FILE, dtype=np.int64)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "user": pa.array([f"user-{x % 5000}" for x in ids]),
            "amount": pa.array(rng.random(ROWS_PER_FILE) * 100),
            "country": pa.array(np.array(["DE", "FR", "US", "JP"])[ids % 4]),
        },
        schema=pa.schema(
            [
                pa.field("id", pa.int64(), nullable=False),
                pa.field("user", pa.string()),
                pa.field("amount", pa.float64()),
                pa.field("country", pa.string()),
            ]
        ),
    )


def build_lakeop(root: Path) -> None:
    storage = open_storage(f"file://{root}")
    log = CommitLog(storage)
    for i in range(FILES):
        part = f"day={i % PARTITIONS + 1:02d}"
        path = f"{part}/part-run{i:05d}-00000.parquet"
        (root / part).mkdir(parents=True, exist_ok=True)
        t = batch(i)
        pq.write_table(t, root / path)
        size = (root / path).stat().st_size
        log.commit(
            Commit(
                f"run{i:05d}",
                "bench",
                "2026-01-01T00:00:00Z",
                i,
                1,
                "append",
                [DataFile(path, part, t.num_rows, size)],
            )
        )


def build_delta(root: Path) -> None:
    for i in range(FILES):
        t = batch(i).append_column("day", pa.array([f"{i % PARTITIONS + 1:02d}"] * ROWS_PER_FILE))
        write_deltalake(str(root), t, mode="append", partition_by=["day"])


def peak_rss() -> int:
    """This process's own high-water RSS (``VmHWM``: reset at exec, unlike ``ru_maxrss``,
    which keeps the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child(kind: str, root: str) -> None:
    """One compaction, in this process; prints its numbers as JSON."""
    t0 = time.perf_counter()
    if kind == "lakeop":
        storage = open_storage(f"file://{root}")
        res = compact(
            storage, parse_fields(FIELDS), 1, CompactionPolicy(TARGET, 5), "bench-c", progress=None
        )
        out: dict[str, Any] = {
            "files_before": res.files_before,
            "files_after": res.files_after,
            "rows": res.rows,
            "bytes_before": res.bytes_before,
        }
    else:
        dt = DeltaTable(root)
        before = sum(pa.table(dt.get_add_actions(flatten=True)).column("size_bytes").to_pylist())
        metrics = dt.optimize.compact(target_size=TARGET)
        out = {
            "files_before": metrics["numFilesRemoved"],
            "files_after": metrics["numFilesAdded"],
            "rows": FILES * ROWS_PER_FILE,
            "bytes_before": before,
        }
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss"] = peak_rss()
    print(json.dumps(out))


def compaction(kind: str, root: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def aggregate(root: Path) -> tuple[float, int]:
    """Median seconds of a grouped aggregate over the committed files, and the files opened."""
    files = [
        str(root / p)
        for p in sorted(live_files(CommitLog(open_storage(f"file://{root}")).commits()))
    ]
    q = (
        f"SELECT country, count(*), sum(amount), max(id) FROM read_parquet({files}) "
        "GROUP BY country ORDER BY country"
    )
    con = duckdb.connect()
    con.execute("SET threads = 2")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        con.sql(q).fetchall()
        times.append(time.perf_counter() - t0)
    return sorted(times)[2], len(files)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lakeop-compact-bench-"))
    try:
        rows = FILES * ROWS_PER_FILE
        print(
            f"{FILES:,} small files, {rows:,} rows, {PARTITIONS} partitions, "
            f"target {TARGET:,} bytes"
        )
        t0 = time.perf_counter()
        build_lakeop(work / "lakeop")
        t1 = time.perf_counter()
        build_delta(work / "delta")
        print(f"setup: lakeop table {t1 - t0:.1f} s, delta table {time.perf_counter() - t1:.1f} s")
        q_before, opened_before = aggregate(work / "lakeop")
        ours = compaction("lakeop", work / "lakeop")
        q_after, opened_after = aggregate(work / "lakeop")
        anchor = compaction("delta", work / "delta")
        for name, r in (("lakeop compaction", ours), ("delta-rs optimize.compact", anchor)):
            print(
                f"{name}: {r['files_before']} -> {r['files_after']} files, {r['seconds']:.2f} s, "
                f"{r['rows'] / r['seconds']:,.0f} rows/s, "
                f"{r['bytes_before'] / r['seconds'] / 1e6:.1f} MB/s, "
                f"peak RSS {r['peak_rss'] / 2**20:.0f} MiB "
                f"({r['peak_rss'] / POD_LIMIT:.0%} of 1 GiB)"
            )
        ratio = (ours["rows"] / ours["seconds"]) / (anchor["rows"] / anchor["seconds"])
        print(f"lakeop / delta-rs throughput: {ratio:.2f}x (target >= 1.0x)")
        print(
            f"DuckDB aggregate: before {q_before * 1000:.1f} ms over {opened_before} files, "
            f"after {q_after * 1000:.1f} ms over {opened_after} files: "
            f"{q_before / q_after:.1f}x faster"
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3])
        raise SystemExit(0)
    raise SystemExit(main())
