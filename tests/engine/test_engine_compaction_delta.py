"""``lakeop compact`` / ``lakeop expire`` on a ``format: delta`` table (delta-rs optimize and
vacuum): fewer files per partition, the same rows through DuckDB's ``delta_scan``."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from deltakit import duck_delta
from deltalake import DeltaTable
from enginekit import EVENTS, csv_source, plan, run, write_csv
from test_engine_compaction import COLUMNS, DAILY, HEADER, rows

from lakeop.engine.formats import open_format
from lakeop.storage import open_storage


def files_per_partition(loc: Path) -> Counter[str]:
    live = open_format(open_storage(f"file://{loc}"), "delta").live_files()
    return Counter(f.partition for f in live.values())


def test_delta_compaction_and_vacuum(tmp_path: Path) -> None:
    loc = tmp_path / "lake"
    for i in range(12):
        src = write_csv(tmp_path / "src" / f"{i}.csv", HEADER, rows(i * 30, 30, (1, 2, 3)))
        p = plan(
            loc,
            csv_source(src),
            partitioning=DAILY,
            run_id=f"d{i}",
            job=f"d{i}",
            table_format="delta",
        )
        assert run(p).error is None
    before = Counter(duck_delta(loc, f"SELECT {COLUMNS} FROM t"))
    assert sum(before.values()) == 360
    assert set(files_per_partition(loc).values()) == {12}
    spec: dict[str, Any] = {"location": f"file://{loc}", "format": "delta", "partitioning": DAILY}
    docs = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {"name": "events", "namespace": "default"},
            "spec": spec,
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {"name": "events-v1", "namespace": "default"},
            "spec": {"tableRef": "events", "version": 1, "fields": list(EVENTS)},
        },
    ]
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump_all(docs))
    out = subprocess.run(
        [sys.executable, "-m", "lakeop", "compact", "-f", str(m), "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    summary = yaml.safe_load(out.stdout)
    assert (summary["partitions"], summary["filesBefore"], summary["filesAfter"]) == (3, 36, 3)
    assert set(files_per_partition(loc).values()) == {1}
    assert Counter(duck_delta(loc, f"SELECT {COLUMNS} FROM t")) == before
    # a vacuum never goes under six hours: the replaced files (just written) all stay
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakeop",
            "expire",
            "-f",
            str(m),
            "--retention",
            "0s",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["filesDeleted"] == 0
    assert Counter(duck_delta(loc, f"SELECT {COLUMNS} FROM t")) == before
    history = DeltaTable(str(loc)).history()
    # every partition of the table needed it: one OPTIMIZE commit swapped all three
    assert [h["operation"] for h in history].count("OPTIMIZE") == 1
