"""``format: iceberg`` ingestion: lakeop -> Iceberg against two anchors in the same run.

On the ingest benchmark's generated CSV (user_id, event_type, timestamp, value, country; 90
days) with day partitioning (year/month/day), each side in its own subprocess (wall time
from the parent, peak RSS from ``wait4``'s rusage of that child):

- (a) DuckDB's plain partitioned Parquet ``COPY ... (PARTITION_BY (year, month, day))``;
- (b) pyiceberg's own ``Table.append`` of the same data into the same partition spec
  (``day(timestamp)``, embedded SQLite catalog); pyiceberg's partitioned append takes one
  Arrow table, so the whole CSV is read into memory first (its peak RSS shows it);
- lakeop ``ingest -f`` into a ``format: iceberg`` Table (lakeop's partitioned writer, one
  snapshot, the embedded SQLite catalog).

Targets (issue 13): lakeop >= 0.9x (a) and >= 1.0x (b) in throughput; lakeop's peak RSS
flat from the smallest to the largest size and at most 512 MiB.

Usage: iceberg_bench.py [--rows N [N ...]] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ingest_bench import PY, ROOT, Measured, best, generate, manifests, measure, run_duckdb
from pyiceberg.catalog.sql import SqlCatalog

from lakeop.core.lake.iceberg import CATALOG_NAME, EMBEDDED_CATALOG

DATE = {"strategy": "date", "column": "timestamp", "granularity": "day"}

PYICEBERG_APPEND = """
import sys
import pyarrow as pa, pyarrow.csv as pcsv
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.transforms import DayTransform
src, out = sys.argv[1], sys.argv[2]
table = pcsv.read_csv(src, read_options=pcsv.ReadOptions(block_size=8 << 20))
ts = table.column("timestamp").cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", ts)
cat = SqlCatalog("bench", uri=f"sqlite:///{out}/catalog.db", warehouse=f"file://{out}")
cat.create_namespace("bench")
tbl = cat.create_table("bench.events", schema=table.schema, location=f"file://{out}/events")
with tbl.update_spec() as spec:
    spec.add_field("timestamp", DayTransform(), "timestamp_day")
tbl.append(table)
"""


def run_pyiceberg_append(work: Path, src: Path) -> Measured:
    out = work / "pyiceberg_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    secs, rss = measure([PY, "-c", PYICEBERG_APPEND, str(src), str(out)])
    cat = SqlCatalog("bench", uri=f"sqlite:///{out}/catalog.db")
    rows = int(cat.load_table("bench.events").scan().count())
    cat.engine.dispose()
    shutil.rmtree(out, ignore_errors=True)
    return Measured(secs, rss, rows)


def run_lakeop_iceberg(work: Path, src: Path) -> Measured:
    shutil.rmtree(work / "lake" / "csv-iceberg", ignore_errors=True)
    m = manifests(work, "csv-iceberg", src, "csv", DATE)
    docs = [json.loads(d) for d in m.read_text().split("---\n") if d.strip()]
    docs[0]["spec"]["format"] = "iceberg"
    m.write_text("---\n".join(json.dumps(d) + "\n" for d in docs))
    summary = work / "csv-iceberg.summary.json"
    lakeop = str(Path(PY).with_name("lakeop"))
    secs, rss = measure(
        [lakeop, "ingest", "-f", str(m), "--output", "json", "--termination-log", str(summary)]
    )
    rows = int(json.loads(summary.read_text())["rowsWritten"])
    lake = work / "lake" / "csv-iceberg"
    cat = SqlCatalog(CATALOG_NAME, uri=f"sqlite:///{lake}/{EMBEDDED_CATALOG}")
    tbl = cat.load_table(
        tuple(docs[0]["metadata"][k].replace("-", "_") for k in ("namespace", "name"))
    )
    cat.engine.dispose()
    assert tbl.scan().count() == rows and len(tbl.metadata.snapshots) == 1
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
        print(f"iceberg bench: {rows:,} rows, CSV {size:.0f} MB, best of {args.repeat}")
        duck, pyi, lk = [], [], []
        for _ in range(args.repeat):  # interleaved: all sides see the same background load
            duck.append(run_duckdb(work, csv))
            pyi.append(run_pyiceberg_append(work, csv))
            lk.append(run_lakeop_iceberg(work, csv))
        a, b, mine = best(duck), best(pyi), best(lk)
        assert mine.rows == a.rows == b.rows == rows, (mine.rows, a.rows, b.rows, rows)
        print(line("(a) duckdb COPY PARTITION_BY parquet", a, {}))
        print(line("(b) pyiceberg append, day(timestamp)", b, {}))
        print(line("lakeop csv -> iceberg, day(timestamp)", mine, {"(a)": a, "(b)": b}))
        peaks[rows] = mine.peak_rss_mib
    if len(peaks) > 1:
        lo, hi = min(peaks), max(peaks)
        print(
            f"lakeop -> iceberg peak RSS {lo:,} rows: {peaks[lo]:.0f} MiB, {hi:,} rows: "
            f"{peaks[hi]:.0f} MiB ({peaks[hi] / peaks[lo] - 1:+.0%}; target: flat, <= 512 MiB)"
        )
    shutil.rmtree(work / "lake", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
