"""Ingestion throughput and memory: ``lakeop ingest`` against DuckDB in the same run.

The headline case reads a generated CSV (user_id, event_type, timestamp, value, country;
90 days of events) and writes date-partitioned (year/month/day) snappy Parquet. The anchor
is DuckDB's ``COPY (SELECT ..., year(ts), month(ts), day(ts) FROM read_csv(...)) TO ...
(PARTITION_BY (year, month, day))`` on the same file. Each side runs in its own subprocess;
wall time comes from the parent, peak RSS from ``wait4``'s rusage of exactly that child.
The other cases (JSON lines with ``read_json``, Parquet with ``read_parquet``, 64-bucket hash
partitioning with ``hash(user_id) % 64``) are each anchored on DuckDB doing the same work on
the same file. Every case is a row of the one table ``make bench`` prints (bench/results.py).

Usage: ingest_bench.py [--rows N [N ...]] [--repeat K] [--cases hash,json,parquet]
Generated inputs are cached under ``.bench/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
from results import Row, record, table

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LAKEOP = str(Path(PY).with_name("lakeop"))

FIELDS = [
    {"name": "user_id", "type": "string", "nullable": False},
    {"name": "event_type", "type": "string"},
    {"name": "timestamp", "type": "timestamp"},
    {"name": "value", "type": "double"},
    {"name": "country", "type": "string"},
]

GENERATE = """
import sys, datetime as dt
import numpy as np, pyarrow as pa, pyarrow.csv as pcsv, pyarrow.parquet as pq
path, rows, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(7)
EVENT_TYPES = ["click", "view", "purchase", "signup", "logout"]
start = dt.datetime(2026, 1, 1).timestamp()
chunk = 1_000_000
writer = None
with open(path, "wb") as out:
    for lo in range(0, rows, chunk):
        n = min(chunk, rows - lo)
        ts = (start + rng.integers(0, 90 * 86400, n)).astype("datetime64[s]")
        t = pa.table({
            "user_id": pa.array(np.char.add("u", rng.integers(0, 100_000, n).astype(str))),
            "event_type": pa.array(rng.choice(EVENT_TYPES, n)),
            "timestamp": pa.array(ts),
            "value": pa.array(rng.random(n) * 100),
            "country": pa.array(rng.choice([f"C{i:02d}" for i in range(40)], n)),
        })
        if fmt == "csv":
            pcsv.write_csv(t, out, pcsv.WriteOptions(include_header=lo == 0))
        elif fmt == "json":
            t = t.set_column(2, "timestamp", t.column("timestamp").cast(pa.string()))
            for rec in t.to_pylist():
                out.write((__import__("json").dumps(rec) + "\\n").encode())
        else:
            if writer is None:
                writer = pq.ParquetWriter(out, t.schema)
            writer.write_table(t)
    if writer is not None:
        writer.close()
"""

# DuckDB doing the same work as each lakeop case: read the source, add the partition
# columns, write snappy Parquet partitioned the same way (argv: source, output, case)
DUCKDB = """
import sys, duckdb
src, out, case = sys.argv[1], sys.argv[2], sys.argv[3]
read = {"csv": f"read_csv('{src}')", "json": f"read_json('{src}')",
        "parquet": f"read_parquet('{src}')"}[case.split("-")[0]]
if case.endswith("hash"):
    cols, part = "*, hash(user_id) % 64 AS bucket", "bucket"
else:
    cols = 'year("timestamp") AS year, month("timestamp") AS month, day("timestamp") AS day'
    cols, part = "*, " + cols, "year, month, day"
duckdb.sql(f\"\"\"COPY (SELECT {cols} FROM {read})
    TO '{out}' (FORMAT parquet, PARTITION_BY ({part}), COMPRESSION snappy)\"\"\")
"""


@dataclass
class Measured:
    seconds: float
    peak_rss_mib: float
    rows: int


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{out}\n{err}")
    return seconds, usage.ru_maxrss / 1024.0


def generate(work: Path, rows: int, fmt: str) -> Path:
    ext = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[fmt]
    path = work / f"events_{rows}.{ext}"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        subprocess.run([PY, "-c", GENERATE, str(tmp), str(rows), fmt], check=True)
        tmp.rename(path)
    return path


def manifests(work: Path, name: str, src: Path, fmt: str, partitioning: dict[str, object]) -> Path:
    lake = work / "lake" / name
    shutil.rmtree(lake, ignore_errors=True)
    docs = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {
                "location": f"file://{lake}",
                "compression": "snappy",
                "partitioning": partitioning,
            },
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {"name": f"{name}-v1", "namespace": "bench"},
            "spec": {"tableRef": name, "version": 1, "fields": FIELDS},
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "IngestionJob",
            "metadata": {"name": f"{name}-load", "namespace": "bench"},
            "spec": {
                "tableRef": name,
                "source": {"uri": f"file://{src}", "format": fmt},
                "batchSize": 100_000,
            },
        },
    ]
    path = work / f"{name}.yaml"
    path.write_text("---\n".join(json.dumps(d) + "\n" for d in docs))  # JSON is YAML
    return path


def run_lakeop(work: Path, name: str, src: Path, fmt: str, part: dict[str, object]) -> Measured:
    m = manifests(work, name, src, fmt, part)
    summary = work / f"{name}.summary.json"
    secs, rss = measure(
        [LAKEOP, "ingest", "-f", str(m), "--output", "json", "--termination-log", str(summary)]
    )
    rows = int(json.loads(summary.read_text())["rowsWritten"])
    return Measured(secs, rss, rows)


def run_duckdb(work: Path, src: Path, case: str = "csv-date") -> Measured:
    out = work / "duckdb_out"
    shutil.rmtree(out, ignore_errors=True)
    secs, rss = measure([PY, "-c", DUCKDB, str(src), str(out), case])
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchall()[0]
    shutil.rmtree(out, ignore_errors=True)
    return Measured(secs, rss, int(rows[0]) if rows else 0)


def line(label: str, m: Measured, ref: Measured | None = None) -> str:
    rate = m.rows / m.seconds / 1e6
    text = (
        f"  {label:34s} {m.seconds:7.2f} s {rate:6.2f} Mrows/s  peak RSS {m.peak_rss_mib:7.1f} MiB"
    )
    if ref is not None:
        text += f"  ratio {ref.seconds / m.seconds:4.2f}x DuckDB"
    return text


def best(runs: list[Measured]) -> Measured:
    """Fastest of the repeats (the machine is shared: the minimum is the least disturbed);
    the peak RSS reported is the highest seen."""
    fastest = min(runs, key=lambda m: m.seconds)
    return Measured(fastest.seconds, max(m.peak_rss_mib for m in runs), fastest.rows)


def headline(work: Path, rows: int, repeat: int, date: dict[str, object]) -> Measured:
    csv = generate(work, rows, "csv")
    print(f"ingest bench: {rows:,} rows, CSV {csv.stat().st_size / 1e6:.0f} MB, best of {repeat}")
    ducks, lakes = [], []
    for _ in range(repeat):  # interleaved, so both see the same background load
        ducks.append(run_duckdb(work, csv))
        lakes.append(run_lakeop(work, "csv-date", csv, "csv", date))
    duck, lk = best(ducks), best(lakes)
    assert lk.rows == duck.rows == rows, (lk.rows, duck.rows, rows)
    print(line("duckdb COPY PARTITION_BY (csv)", duck))
    print(line("lakeop csv -> date/day", lk, duck))
    record(
        Row(
            "CSV -> date/day (headline)",
            f"{rows:,}",
            lk.seconds,
            duck.seconds,
            lk.peak_rss_mib,
            duck.peak_rss_mib,
        )
    )
    return lk


OTHERS = {  # case -> (label, source format, partitioning)
    "hash": (
        "CSV -> hash 64 buckets",
        "csv",
        {"strategy": "hash", "column": "user_id", "buckets": 64},
    ),
    "json": ("JSON lines -> date/day", "json", None),
    "parquet": ("Parquet -> date/day", "parquet", None),
}


def others(work: Path, rows: int, cases: list[str], date: dict[str, object]) -> None:
    """Each case against DuckDB doing the same work on the same file, interleaved."""
    print(f"other cases at {rows:,} rows")
    for case in cases:
        label, fmt, part = OTHERS[case]
        src = generate(work, rows, fmt)
        duck = run_duckdb(work, src, f"{fmt}-{'hash' if case == 'hash' else 'date'}")
        lk = run_lakeop(work, f"{fmt}-{case}", src, fmt, part or date)
        assert lk.rows == duck.rows == rows, (case, lk.rows, duck.rows, rows)
        print(line(f"lakeop {label}", lk, duck))
        record(
            Row(label, f"{rows:,}", lk.seconds, duck.seconds, lk.peak_rss_mib, duck.peak_rss_mib)
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    ap.add_argument("--repeat", type=int, default=2, help="headline repeats (best is kept)")
    ap.add_argument("--cases", default="hash,json,parquet", help="other cases, smallest size")
    ap.add_argument("--workdir", default=str(ROOT / ".bench" / "ingest"))
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    date = {"strategy": "date", "column": "timestamp", "granularity": "day"}
    results = {rows: headline(work, rows, args.repeat, date) for rows in args.rows}
    if args.cases:
        others(work, min(args.rows), args.cases.split(","), date)
    if len(results) > 1:
        sizes = sorted(results)
        lo, hi = results[sizes[0]], results[sizes[-1]]
        growth = hi.peak_rss_mib / lo.peak_rss_mib - 1
        print(
            f"lakeop peak RSS {sizes[0]:,} rows: {lo.peak_rss_mib:.0f} MiB, "
            f"{sizes[-1]:,} rows: {hi.peak_rss_mib:.0f} MiB ({growth:+.0%}; "
            "target: within 20%, at most 512 MiB)"
        )
    shutil.rmtree(work / "lake", ignore_errors=True)
    if __name__ == "__main__":
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
