"""The engine against a real S3-compatible server (MinIO, started by the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from engine_services import S3Server
from enginekit import csv_source, plan, run

from lakeop.core.spec.sources import SourceSpec
from lakeop.engine import publish as publish_mod
from lakeop.engine.commitlog import table_totals
from waiting import wait_for

pytestmark = pytest.mark.s3

DAY = {"strategy": "date", "column": "ts", "granularity": "day"}


def client(s3: S3Server) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint_override=s3.endpoint.split("://")[1],
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )


def put_csv(fs: pafs.S3FileSystem, path: str, start: int, count: int, day: int) -> None:
    t = pa.table(
        {
            "id": pa.array(range(start, start + count), pa.int64()),
            "user": [f"u{i % 5}" for i in range(count)],
            "ts": [f"2026-05-0{day} 08:00:00"] * count,
            "amount": [0.5] * count,
            "country": ["DE"] * count,
        }
    )
    with fs.open_output_stream(path) as out:
        pcsv.write_csv(t, out)


def parquet_files(fs: pafs.S3FileSystem, root: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.path.endswith(".parquet"))


def test_s3_source_and_table(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = client(s3)
    fs.create_dir("landing")
    fs.create_dir("lake")
    put_csv(fs, "landing/in/a.csv", 0, 300, 1)
    put_csv(fs, "landing/in/b.csv", 300, 200, 2)
    env = {**os.environ, **s3.env("LAKEOP_STORAGE_"), **s3.env("LAKEOP_SOURCE_")}
    src = SourceSpec("s3://landing/in/*.csv", "csv")
    p = plan("s3://lake/events", src, partitioning=DAY, run_id="s3-1")

    # a crash between commit and publish: nothing visible, then the retry publishes
    monkeypatch.setattr(
        publish_mod, "publish", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        run(p, env)
    monkeypatch.undo()
    assert parquet_files(fs, "lake/events") == []
    again = run(p, env)
    assert again.already_committed and again.rows_written == 500

    files = parquet_files(fs, "lake/events")
    assert [f.split("/")[2:5] for f in files] == [
        ["year=2026", "month=5", "day=1"],
        ["year=2026", "month=5", "day=2"],
    ]
    table = ds.dataset(
        "lake/events", filesystem=fs, format="parquet", partitioning="hive"
    ).to_table()
    assert table.num_rows == 500 and sorted(table.column("id").to_pylist()) == list(range(500))
    totals = table_totals("s3://lake/events", env)
    assert (totals["rows"], totals["files"], totals["partitions"]) == (500, 2, 2)

    # incremental: only the new object is read; overwrite replaces day 2 only
    put_csv(fs, "landing/in/c.csv", 1000, 7, 2)
    p2 = plan("s3://lake/events", src, partitioning=DAY, run_id="s3-2", mode="overwrite-partitions")
    assert run(p2, env).rows_written == 7
    table = ds.dataset(
        "lake/events", filesystem=fs, format="parquet", partitioning="hive"
    ).to_table()
    assert table.num_rows == 307
    staging = fs.get_file_info(
        pafs.FileSelector("lake/events/_lakeop/staging", allow_not_found=True, recursive=True)
    )
    assert [i.path for i in staging if i.type == pafs.FileType.File] == []


@pytest.mark.slow
def test_s3_sigkill_mid_write_then_retry(s3: S3Server, tmp_path: Path) -> None:
    fs = client(s3)
    fs.create_dir("killlake")
    rows = 1_500_000
    src = tmp_path / "big.csv"
    pcsv.write_csv(
        pa.table(
            {
                "id": pa.array(range(rows), pa.int64()),
                "user": pa.array([f"u{i % 100}" for i in range(rows)]),
                "ts": pa.array([f"2026-06-{1 + i % 20:02d} 00:00:00" for i in range(rows)]),
                "amount": pa.array([1.0] * rows),
                "country": pa.array(["DE"] * rows),
            }
        ),
        src,
    )
    p = plan("s3://killlake/t", csv_source(src), partitioning=DAY, run_id="k1", batch_size=50_000)
    env = {
        **os.environ,
        **s3.env(),
        "LAKEOP_PLAN": p.to_json(),
        "LAKEOP_WRITE_BUFFER_BYTES": str(4 << 20),
    }
    cmd = [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "LAKEOP_PLAN"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staged: list[str] = []

    def five_staged_or_exited() -> bool:
        infos = fs.get_file_info(
            pafs.FileSelector("killlake/t", recursive=True, allow_not_found=True)
        )
        assert [i.path for i in infos if i.path.endswith(".parquet")] == []  # nothing visible
        staged[:] = [i.path for i in infos if i.path.endswith(".staged")]
        return proc.poll() is not None or len(staged) >= 5

    wait_for(five_staged_or_exited, 120, "5 staged files of run k1", 0.05, ignore=())
    assert proc.poll() is None and staged, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert parquet_files(fs, "killlake/t") == []

    retry = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert retry.returncode == 0, retry.stderr
    assert "removed uncommitted files of run k1" in retry.stderr
    table = ds.dataset("killlake/t", filesystem=fs, format="parquet", partitioning="hive").to_table(
        columns=["id"]
    )
    ids = table.column("id")
    assert table.num_rows == rows and pc.count_distinct(ids).as_py() == rows
    leftovers = fs.get_file_info(
        pafs.FileSelector("killlake/t/_lakeop/staging", recursive=True, allow_not_found=True)
    )
    assert [i.path for i in leftovers if i.type == pafs.FileType.File] == []
