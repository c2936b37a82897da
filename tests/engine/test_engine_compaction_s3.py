"""Compaction, a pinned reader and expiry on MinIO: the same swap through copy + delete."""

from __future__ import annotations

import os
from collections import Counter

import pyarrow.parquet as pq
import pytest
from engine_services import S3Server
from enginekit import EVENTS, plan, run
from test_engine_compaction import COLUMNS
from test_engine_s3 import DAY, client, put_csv

from lakeop.core.schema.parse import parse_fields
from lakeop.core.spec.sources import SourceSpec
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import live_files
from lakeop.engine.compaction import CompactionPolicy, compact
from lakeop.engine.expiry import expire, snapshot_files
from lakeop.storage import open_storage

pytestmark = pytest.mark.s3


def test_compaction_and_expiry_on_minio(s3: S3Server) -> None:
    fs = client(s3)
    fs.create_dir("landing")
    fs.create_dir("lake")
    env = {**os.environ, **s3.env("LAKEOP_STORAGE_"), **s3.env("LAKEOP_SOURCE_")}
    for i in range(6):
        put_csv(fs, f"landing/c{i}/a.csv", i * 50, 50, 1 + i % 2)
        src = SourceSpec(f"s3://landing/c{i}/*.csv", "csv")
        result = run(plan("s3://lake/cmp", src, partitioning=DAY, run_id=f"c{i}", job=f"c{i}"), env)
        assert result.error is None, result.error
    storage = open_storage("s3://lake/cmp", env, "LAKEOP_STORAGE_")

    def read(paths: list[str]) -> Counter[tuple[object, ...]]:
        out: Counter[tuple[object, ...]] = Counter()
        for p in paths:
            with storage.open_input(p) as f:
                t = pq.read_table(f).select(COLUMNS.split(", "))
                out.update(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True))
        return out

    before = read(sorted(live_files(CommitLog(storage).commits())))
    assert sum(before.values()) == 300
    res = compact(
        storage, parse_fields(list(EVENTS)), 1, CompactionPolicy(1 << 20, 3), "cmp", progress=None
    )
    assert (res.files_before, res.files_after) == (6, 2)
    live = sorted(live_files(CommitLog(storage).commits()))
    assert read(live) == before
    pinned = snapshot_files(storage, 6)
    assert all(p.startswith("_lakeop/retired/") for p in pinned) and read(pinned) == before
    assert expire(storage, 3600, 3600, progress=None).files_deleted == 0
    gone = expire(storage, 0, 3600, progress=None)
    assert gone.files_deleted == 6
    assert not any(storage.exists(p) for p in pinned)
    assert read(live) == before
