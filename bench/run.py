"""``make bench``: every benchmark, each printing its numbers as ratios against an anchor
measured in the same run, then one table of every case measured against DuckDB
(bench/results.py). Add a benchmark by adding its module to BENCHMARKS."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results  # bench/results.py: the one table of cases

# module name -> what it measures
BENCHMARKS: dict[str, str] = {
    "ingest_bench": "CSV (1M/5M/20M), hash, JSON lines, Parquet ingestion vs DuckDB",
    "sql_bench": "PostgreSQL table ingestion vs DuckDB's postgres_scan",
    "delta_bench": "lakeop -> Delta vs DuckDB partitioned COPY and write_deltalake",
    "iceberg_bench": "lakeop -> Iceberg vs DuckDB partitioned COPY and pyiceberg append",
    "parallel_bench": "one run with parallelism 2 vs 1 (throughput ratio)",
    "validate_bench": "lakeop validate over a GitOps folder",
    "operator_bench": "300 Tables + SchemaVersions until Ready, operator peak RSS",
    "steady_bench": "1,000 Tables x 10 / 1,000 commits: Ready after start, idle CPU, reads, RSS",
    "compaction_bench": "compaction of 2,000 small files vs delta-rs, DuckDB before/after",
    "log_bench": "storage reads per run start and Table refresh at 10 / 1,000 / 10,000 commits",
}


def main(argv: list[str]) -> int:
    wanted = argv or list(BENCHMARKS)
    failed = 0
    for name in wanted:
        print(f"\n=== {name}: {BENCHMARKS.get(name, '')}", flush=True)
        start = time.monotonic()
        try:
            entry = importlib.import_module(name).main
            code = int((entry([]) if inspect.signature(entry).parameters else entry()) or 0)
        except SystemExit as exc:
            # sys.exit("message") carries its reason as the code: print it, or it is lost
            if exc.code is not None and not isinstance(exc.code, int):
                print(f"{name}: {exc.code}", file=sys.stderr, flush=True)
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        failed += code != 0
        print(f"=== {name}: {time.monotonic() - start:.0f} s", flush=True)
    if results.ROWS:
        print("\n=== every case against DuckDB doing the same work, in this run", flush=True)
        print(results.table(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
