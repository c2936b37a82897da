"""``format: delta`` on the suite's MinIO: every partition strategy written through delta-rs's
S3 client (conditional puts) and read back row by row by DuckDB and delta-rs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
from engine_services import S3Server
from enginekit import plan, run
from test_engine_delta import COLUMNS, STRATEGIES, check_rows, fmt, key_columns, spec_id
from test_engine_strategies import make_rows

from lakeop.core.spec.sources import SourceSpec
from lakeop.engine.formats import open_format
from lakeop.storage import object_store_options, open_storage

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def landed(s3: S3Server) -> list[dict[str, Any]]:
    fs = pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint_override=s3.endpoint.split("://")[1],
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir("deltasrc")
    fs.create_dir("deltalake")
    rows = make_rows(seed=5)
    body = (
        ",".join(COLUMNS)
        + "\n"
        + "".join(",".join(fmt(r[k]) for k in COLUMNS) + "\n" for r in rows)
    )
    with fs.open_output_stream("deltasrc/events.csv") as out:
        out.write(body.encode())
    return rows


@pytest.mark.parametrize(
    "spec", STRATEGIES, ids=lambda s: s and s.get("granularity", s["strategy"])
)
def test_every_strategy_on_s3(
    s3: S3Server, landed: list[dict[str, Any]], spec: dict[str, Any] | None, tmp_path: Path
) -> None:
    location = f"s3://deltalake/{spec_id(spec)}"
    env = {**os.environ, **s3.env("LAKEOP_STORAGE_"), **s3.env("LAKEOP_SOURCE_")}
    src = SourceSpec("s3://deltasrc/events.csv", "csv")
    result = run(plan(location, src, partitioning=spec, table_format="delta", run_id="s3d"), env)
    assert result.error is None and result.rows_written == len(landed)
    again = run(plan(location, src, partitioning=spec, table_format="delta", run_id="s3d"), env)
    assert again.already_committed
    options = object_store_options(env, "LAKEOP_STORAGE_")
    creds = {"key": s3.access_key, "secret": s3.secret_key, "endpoint": s3.endpoint.split("://")[1]}
    check_rows(location, landed, spec, s3=creds, options=options)
    fmt_ = open_format(open_storage(location, env, "LAKEOP_STORAGE_"), "delta")
    assert fmt_.totals()["rows"] == len(landed)
    snapshot = fmt_.snapshot()
    assert snapshot is not None and snapshot.id == "1"
    assert len(key_columns(spec)) == len(fmt_._require().metadata().partition_columns)
