"""``format: delta`` ingestion: lakeop -> Delta against two anchors in the same run.

On the ingest benchmark's generated CSV (user_id, event_type, timestamp, value, country; 90
days) with day partitioning (year/month/day), each side in its own subprocess (wall time
from the parent, peak RSS from ``wait4``'s rusage of that child):

- (a) DuckDB's plain partitioned Parquet ``COPY ... (PARTITION_BY (year, month, day))``;
- (b) delta-rs's own writer, ``deltalake.write_deltalake(..., partition_by=[...])``, fed by
  pyarrow's streaming CSV reader with the same three key columns added;
- lakeop ``ingest -f`` into a ``format: delta`` Table (lakeop's partitioned writer, one
  Delta commit).

Targets (issue 12): lakeop >= 0.9x (a) and >= 1.0x (b) in throughput; lakeop's peak RSS
flat from the smallest to the largest size and at most 512 MiB.

Usage: delta_bench.py [--rows N [N ...]] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from deltalake import DeltaTable
from ingest_bench import PY, ROOT, Measured, best, generate, manifests, measure, run_duckdb

DATE = {"strategy": "date", "column": "timestamp", "granularity": "day"}

WRITE_DELTALAKE = """
import sys
import pyarrow as pa, pyarrow.csv as pcsv, pyarrow.compute as pc
from deltalake import write_deltalake
src, out = sys.argv[1], sys.argv[2]
reader = pcsv.open_csv(src, read_options=pcsv.ReadOptions(block_size=8 << 20))
ts_type = pa.timestamp("us", tz="UTC")
schema = pa.schema([
    *[f if f.name != "timestamp" else pa.field("timestamp", ts_type) for f in reader.schema],
    pa.field("year", pa.int32()), pa.field("month", pa.int32()), pa.field("day", pa.int32()),
])
def batches():
    for b in reader:
        ts = b.column("timestamp").cast(pa.timestamp("us")).cast(ts_type)
        cols = [ts if n == "timestamp" else b.column(n) for n in b.schema.names]
        keys = [pc.year(ts).cast(pa.int32()), pc.month(ts).cast(pa.int32()),
                pc.day(ts).cast(pa.int32())]
        yield pa.RecordBatch.from_arrays(cols + keys, schema=schema)
write_deltalake(out, pa.RecordBatchReader.from_batches(schema, batches()),
                partition_by=["year", "month", "day"], mode="append")
"""


def run_write_deltalake(work: Path, src: Path) -> Measured:
    out = work / "write_deltalake_out"
    shutil.rmtree(out, ignore_errors=True)
    secs, rss = measure([PY, "-c", WRITE_DELTALAKE, str(src), str(out)])
    rows = DeltaTable(str(out)).count()
    shutil.rmtree(out, ignore_errors=True)
    return Measured(secs, rss, rows)


def run_lakeop_delta(work: Path, src: Path) -> Measured:
    m = manifests(work, "csv-delta", src, "csv", DATE)
    docs = [json.loads(d) for d in m.read_text().split("---\n") if d.strip()]
    docs[0]["spec"]["format"] = "delta"
    m.write_text("---\n".join(json.dumps(d) + "\n" for d in docs))
    summary = work / "csv-delta.summary.json"
    lakeop = str(Path(PY).with_name("lakeop"))
    secs, rss = measure(
        [lakeop, "ingest", "-f", str(m), "--output", "json", "--termination-log", str(summary)]
    )
    rows = int(json.loads(summary.read_text())["rowsWritten"])
    table = DeltaTable(str(work / "lake" / "csv-delta"))
    assert table.count() == rows and table.version() == 1, (table.count(), table.version())
    return Measured(secs, rss, rows)


def line(label: str, m: Measured, refs: dict[str, Measured]) -> str:
    rate = m.rows / m.seconds / 1e6
    text = (
        f"  {label:36s} {m.seconds:7.2f} s {rate:6.2f} Mrows/s  peak RSS {m.peak_rss_mib:7.1f} MiB"
    )
    for name, ref in refs.items():
        text += f"  {ref.seconds / m.seconds:4.2f}x {name}"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 20_000_000])
    ap.add_argument("--repeat", type=int, default=2, help="repeats per side (best is kept)")
    ap.add_argument("--workdir", default=str(ROOT / ".bench" / "ingest"))
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    peaks: dict[int, float] = {}
    for rows in args.rows:
        csv = generate(work, rows, "csv")
        size = csv.stat().st_size / 1e6
        print(f"delta bench: {rows:,} rows, CSV {size:.0f} MB, best of {args.repeat}")
        duck, wdl, lk = [], [], []
        for _ in range(args.repeat):  # interleaved: all sides see the same background load
            duck.append(run_duckdb(work, csv))
            wdl.append(run_write_deltalake(work, csv))
            lk.append(run_lakeop_delta(work, csv))
        a, b, mine = best(duck), best(wdl), best(lk)
        assert mine.rows == a.rows == b.rows == rows, (mine.rows, a.rows, b.rows, rows)
        print(line("(a) duckdb COPY PARTITION_BY parquet", a, {}))
        print(line("(b) write_deltalake(partition_by)", b, {}))
        print(line("lakeop csv -> delta, date/day", mine, {"(a)": a, "(b)": b}))
        peaks[rows] = mine.peak_rss_mib
    if len(peaks) > 1:
        lo, hi = min(peaks), max(peaks)
        print(
            f"lakeop -> delta peak RSS {lo:,} rows: {peaks[lo]:.0f} MiB, {hi:,} rows: "
            f"{peaks[hi]:.0f} MiB ({peaks[hi] / peaks[lo] - 1:+.0%}; target: flat, <= 512 MiB)"
        )
    shutil.rmtree(work / "lake", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
