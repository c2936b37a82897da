"""Processes with one run id racing (a retried pod overlapping a zombie one): one commit.

Four real ``lakeop ingest`` processes start together with the same run id over a
multi-file source. Exactly one commit of the run results, DuckDB reads every source row
once, and all four report that commit's result and exit 0. The same on MinIO, where the
commit point is a conditional PUT. With some invalid records quarantined, exactly the
winner's quarantined records remain under ``_rejected/<run>/``: each invalid source record
once, as many as the commit's ``rowsRejected``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
import yaml
from engine_services import S3Server
from enginekit import EVENTS, duck

from lakeop.core.schema.parse import parse_fields
from lakeop.engine.commitlog import COMMITS_DIR, CommitLog
from lakeop.engine.reader import read_table
from lakeop.storage import open_storage

PROCESSES = 4
FILES = 4
ROWS_PER_FILE = 50_000
ROWS = FILES * ROWS_PER_FILE
# every INVALID_EVERY-th id has an amount that is not a number (the quarantine variant)
INVALID_EVERY = 613
INVALID = [i for i in range(ROWS) if i % INVALID_EVERY == 5]


def make_source(folder: Path, *, invalid: bool = False) -> None:
    folder.mkdir(parents=True)
    for n in range(FILES):
        ids = range(n * ROWS_PER_FILE, (n + 1) * ROWS_PER_FILE)
        amounts = ["n/a" if invalid and i % INVALID_EVERY == 5 else str(i * 0.25) for i in ids]
        pcsv.write_csv(
            pa.table(
                {
                    "id": pa.array(ids, pa.int64()),
                    "user": pa.array([f"u{i % 97}" for i in ids]),
                    "ts": pa.array([f"2026-05-{1 + i % 28:02d} 08:00:00" for i in ids]),
                    "amount": pa.array(amounts),
                    "country": pa.array(["DE", "FR", "PL"][i % 3] for i in ids),
                }
            ),
            folder / f"part-{n}.csv",
        )


def manifests(folder: Path, location: str, source: Path, policy: str | None = None) -> Path:
    meta = {"namespace": "demo"}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {**meta, "name": "events"},
            "spec": {
                "location": location,
                "partitioning": {"strategy": "date", "column": "ts", "granularity": "day"},
            },
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "events-v1"},
            "spec": {"tableRef": "events", "version": 1, "fields": list(EVENTS)},
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "IngestionJob",
            "metadata": {**meta, "name": "load"},
            "spec": {
                "tableRef": "events",
                "source": {"uri": f"file://{source}/*.csv", "format": "csv"},
                **({"onInvalidRecords": policy} if policy else {}),
            },
        },
    ]
    folder.mkdir(parents=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return folder


def race(folder: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """Start the processes together, all with one run id; their JSON summaries."""
    cmd = [sys.executable, "-m", "lakeop", "ingest", "-f", str(folder), "--run-id", "same"]
    procs = [
        subprocess.Popen(
            [*cmd, "--output", "json"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


def assert_one_result(summaries: list[dict[str, Any]], rejected: int = 0) -> None:
    keys = ("runId", "rowsRead", "rowsWritten", "rowsRejected", "filesWritten", "bytesWritten")
    results = {json.dumps([s[k] for k in (*keys, "partitions")]) for s in summaries}
    assert len(results) == 1, results  # all report the one commit
    first = summaries[0]
    assert (first["rowsRead"], first["rowsWritten"], first["rowsRejected"]) == (
        ROWS,
        ROWS - rejected,
        rejected,
    )
    assert first["error"] is None


def test_four_processes_with_one_run_id_commit_once(tmp_path: Path) -> None:
    make_source(tmp_path / "src")
    lake = tmp_path / "lake"
    folder = manifests(tmp_path / "manifests", f"file://{lake}", tmp_path / "src")
    assert_one_result(race(folder, {}))
    commits = CommitLog(open_storage(str(lake))).commits()
    assert [c.run_id for c in commits] == ["same"]
    assert [p.name for p in (lake / COMMITS_DIR).iterdir()] == [commits[0].name]
    count, distinct, total = duck(lake, "SELECT count(*), count(DISTINCT id), sum(id) FROM t")[0]
    assert (count, distinct, total) == (ROWS, ROWS, ROWS * (ROWS - 1) // 2)
    assert read_table(str(lake), parse_fields(list(EVENTS))).num_rows == ROWS
    assert not list(lake.rglob("*.staged"))  # the losers' files are gone


def test_four_processes_with_one_run_id_keep_the_winners_quarantine(tmp_path: Path) -> None:
    make_source(tmp_path / "src", invalid=True)
    lake = tmp_path / "lake"
    source = tmp_path / "src"
    folder = manifests(tmp_path / "manifests", f"file://{lake}", source, "quarantine")
    assert_one_result(race(folder, {}), rejected=len(INVALID))
    commits = CommitLog(open_storage(str(lake))).commits()
    assert [c.run_id for c in commits] == ["same"] and commits[0].rows_rejected == len(INVALID)
    count, distinct = duck(lake, "SELECT count(*), count(DISTINCT id) FROM t")[0]
    assert count == distinct == ROWS - len(INVALID)
    assert duck(lake, f"SELECT count(*) FROM t WHERE id % {INVALID_EVERY} = 5") == [(0,)]
    # the quarantine, read as JSON lines by DuckDB: each invalid source record exactly once
    records = duck_json(lake / "_rejected" / "same")
    assert sorted(r["data"]["id"] for r in records) == INVALID
    assert {(r["field"], r["data"]["amount"]) for r in records} == {("amount", "n/a")}
    where = {(r["source"], r["line"]) for r in records}
    assert len(where) == len(INVALID)
    assert not list(lake.rglob("*.staged"))


def duck_json(folder: Path) -> list[dict[str, Any]]:
    """The quarantined records under ``folder`` (any depth), as DuckDB reads JSON lines."""
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT source, line, field, data FROM read_json('{folder}/**/*.jsonl', "
        "format='newline_delimited', columns={source: 'VARCHAR', line: 'BIGINT', "
        "field: 'VARCHAR', data: 'STRUCT(id BIGINT, amount VARCHAR)'})"
    ).fetchall()
    return [{"source": s, "line": n, "field": f, "data": d} for s, n, f, d in rows]


@pytest.mark.s3
def test_four_processes_with_one_run_id_commit_once_on_minio(s3: S3Server, tmp_path: Path) -> None:
    fs = pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint_override=s3.endpoint.split("://")[1],
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir("zombies")
    make_source(tmp_path / "src")
    folder = manifests(tmp_path / "manifests", "s3://zombies/events", tmp_path / "src")
    env = s3.env()
    assert_one_result(race(folder, env))
    storage = open_storage("s3://zombies/events", env, "LAKEOP_STORAGE_")
    assert [c.run_id for c in CommitLog(storage).commits()] == ["same"]
    listed = fs.get_file_info(pafs.FileSelector("zombies/events/_lakeop/commits"))
    assert len(listed) == 1
    # an independent reader listing the bucket like a query engine does
    ids = ds.dataset(
        "zombies/events", filesystem=fs, format="parquet", partitioning="hive"
    ).to_table(columns=["id"])["id"]
    assert len(ids) == ROWS and pc.count_distinct(ids).as_py() == ROWS
    assert read_table("s3://zombies/events", parse_fields(list(EVENTS)), env).num_rows == ROWS
    staged = fs.get_file_info(
        pafs.FileSelector("zombies/events/_lakeop/staging", recursive=True, allow_not_found=True)
    )
    assert [i.path for i in staged if i.type == pafs.FileType.File] == []


@pytest.mark.s3
def test_four_processes_with_one_run_id_keep_the_winners_quarantine_on_minio(
    s3: S3Server, tmp_path: Path
) -> None:
    fs = pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint_override=s3.endpoint.split("://")[1],
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir("zombies-q")
    make_source(tmp_path / "src", invalid=True)
    location = "s3://zombies-q/events"
    folder = manifests(tmp_path / "manifests", location, tmp_path / "src", "quarantine")
    env = s3.env()
    assert_one_result(race(folder, env), rejected=len(INVALID))
    storage = open_storage(location, env, "LAKEOP_STORAGE_")
    (commit,) = CommitLog(storage).commits()
    assert commit.run_id == "same" and commit.rows_rejected == len(INVALID)
    ids = ds.dataset(
        "zombies-q/events", filesystem=fs, format="parquet", partitioning="hive"
    ).to_table(columns=["id"])["id"]
    assert len(ids) == pc.count_distinct(ids).as_py() == ROWS - len(INVALID)
    # the quarantine as listed and read from the bucket: each invalid record once
    listed = fs.get_file_info(pafs.FileSelector("zombies-q/events/_rejected/same", recursive=True))
    records = [
        json.loads(line)
        for info in listed
        if info.type == pafs.FileType.File
        for line in fs.open_input_stream(info.path).read().decode().splitlines()
    ]
    assert sorted(int(r["data"]["id"]) for r in records) == INVALID
