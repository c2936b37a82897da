"""Progress of ``lakeop ingest``: a bar in a pseudo-terminal, log lines with the percentage
without one (plain and JSON, as in Job pods); bytes done of the total from the claimed files."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml
from enginekit import spawn, write_csv

from lakeop.cli.progress import bar_line
from paused_source import PausedSource
from waiting import wait_for

LAKEOP = str(Path(sys.executable).parent / "lakeop")


def manifests(tmp_path: Path) -> tuple[Path, int]:
    src = tmp_path / "in"
    for name, ids in [("a.csv", range(0, 500)), ("b.csv", range(500, 800))]:
        write_csv(src / name, "id,v", [f"{i},value-{i}" for i in ids])
    total = sum(f.stat().st_size for f in src.iterdir())
    meta = {"namespace": "demo"}
    docs = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {**meta, "name": "events"},
            "spec": {"location": f"file://{tmp_path}/lake/events"},
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "events-v1"},
            "spec": {
                "tableRef": "events",
                "version": 1,
                "fields": [
                    {"name": "id", "type": "long", "nullable": False},
                    {"name": "v", "type": "string"},
                ],
            },
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "IngestionJob",
            "metadata": {**meta, "name": "load"},
            "spec": {
                "tableRef": "events",
                "source": {"uri": f"file://{src}/*.csv", "format": "csv"},
            },
        },
    ]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return tmp_path / "all.yaml", total


def test_a_bar_in_a_pseudo_terminal(tmp_path: Path) -> None:
    path, total = manifests(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [LAKEOP, "ingest", "-f", str(path)],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "LAKEOP_LOG_FORMAT"},
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0, seen
    text = seen.decode()
    assert "\r[" + "#" * 20 + "] 100%" in text, text
    assert "800 rows" in text and "rows/s" in text
    assert f"of {total / 1000:.1f} kB" in text
    assert text.endswith("\n")
    assert b"800 rows written" in out  # the summary stays on stdout


def test_log_lines_with_the_percentage_without_a_terminal(tmp_path: Path) -> None:
    path, total = manifests(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "LAKEOP_LOG_FORMAT"}
    plain = subprocess.run(
        [LAKEOP, "ingest", "-f", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    assert "800 rows read, 0 rejected, " in plain.stderr
    assert f"rows/s, 100% ({total:,} of {total:,} bytes)" in plain.stderr
    assert "\r" not in plain.stderr and "#" not in plain.stderr

    (tmp_path / "in" / "c.csv").write_text("id,v\n900,x\n")
    pod = subprocess.run(
        [LAKEOP, "ingest", "-f", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "LAKEOP_LOG_FORMAT": "json"},
        check=False,
    )
    assert pod.returncode == 0, pod.stderr
    lines = [json.loads(x) for x in pod.stderr.splitlines() if x.startswith("{")]
    progress = [x for x in lines if x.get("percent") is not None]
    assert progress, pod.stderr
    last = progress[-1]
    assert (last["percent"], last["rowsRead"], last["bytesTotal"]) == (100, 1, 11)
    assert last["bytesDone"] == last["bytesTotal"] and "rowsPerSecond" in last


def test_bar_line() -> None:
    half = {"rowsRead": 1000, "rowsPerSecond": 500, "seconds": 2.0}
    half |= {"bytesDone": 1_200_000, "bytesTotal": 2_400_000}
    line = bar_line(half)
    assert line.startswith("[" + "#" * 10 + "." * 10 + "]  50%")
    assert "1.2 MB of 2.4 MB" in line and "1,000 rows" in line and "500 rows/s" in line
    assert line.endswith("ETA 2s")
    assert bar_line({"rowsRead": 3, "rowsPerSecond": 1}) == "3 rows  1 rows/s"


def test_a_run_whose_source_pauses_has_reported_its_first_batch(
    tmp_path: Path, postgres_url: str
) -> None:
    """The first batch is reported at once, not after the first interval: a run that then
    waits in its source (here an advisory lock held by the test) shows it has been reading."""
    before, after = 300_000, 500  # wide rows: the driver batches ~16 MB before the pause
    with PausedSource(postgres_url, 8_141_302, before, after) as src:
        docs = [
            {
                "apiVersion": "lakeop.io/v1alpha1",
                "kind": "Table",
                "metadata": {"namespace": "demo", "name": "paused"},
                "spec": {"location": f"file://{tmp_path}/lake"},
            },
            {
                "apiVersion": "lakeop.io/v1alpha1",
                "kind": "SchemaVersion",
                "metadata": {"namespace": "demo", "name": "paused-v1"},
                "spec": {
                    "tableRef": "paused",
                    "version": 1,
                    "fields": [{"name": "id", "type": "long"}, {"name": "v", "type": "string"}],
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"namespace": "demo", "name": "db"},
                "stringData": {"url": src.url},
            },
            {
                "apiVersion": "lakeop.io/v1alpha1",
                "kind": "IngestionJob",
                "metadata": {"namespace": "demo", "name": "paused-load"},
                "spec": {
                    "tableRef": "paused",
                    "source": {
                        "sql": {"urlSecretRef": {"name": "db", "key": "url"}, "query": src.query}
                    },
                },
            },
        ]
        m = tmp_path / "m.yaml"
        m.write_text(yaml.safe_dump_all(docs))
        p = spawn([LAKEOP, "ingest", "-f", str(m), "--job", "paused-load"], dict(os.environ))
        assert p.stderr is not None
        wait_for(lambda: src.waiting() > 0, timeout=60, what="the run paused in its query")
        # written before the pause, so there already
        assert select.select([p.stderr], [], [], 30)[0], "no progress line while paused"
        line = p.stderr.readline().decode()
        assert " rows read, 0 rejected, " in line, line
        assert p.poll() is None  # still paused
        src.release()
        out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    assert f"{before + after:,} rows written" in out.decode()
    got = (
        duckdb.connect()
        .execute(
            f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{tmp_path}/lake/**/*.parquet')"
        )
        .fetchone()
    )
    assert got == (before + after, before + after)
