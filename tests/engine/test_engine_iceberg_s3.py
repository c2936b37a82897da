"""``format: iceberg`` on the suite's MinIO with the PostgreSQL catalog: every partition
strategy read back row by row by DuckDB's ``iceberg_scan`` (httpfs) and pyiceberg."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pyarrow.fs as pafs
import pytest
from engine_services import S3Server
from enginekit import plan, run
from pyiceberg.catalog.sql import SqlCatalog
from test_engine_delta import COLUMNS, STRATEGIES, fmt, spec_id
from test_engine_iceberg import check_placement, check_rows
from test_engine_strategies import make_rows

from lakeop.core.lake.iceberg import CATALOG_NAME
from lakeop.core.spec.sources import SourceSpec

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
    fs.create_dir("icesrc")
    fs.create_dir("icelake")
    rows = make_rows(seed=21)
    body = (
        ",".join(COLUMNS)
        + "\n"
        + "".join(",".join(fmt(r[k]) for k in COLUMNS) + "\n" for r in rows)
    )
    with fs.open_output_stream("icesrc/events.csv") as out:
        out.write(body.encode())
    return rows


@pytest.mark.parametrize("spec", STRATEGIES, ids=spec_id)
def test_every_strategy_on_s3_with_the_postgres_catalog(
    s3: S3Server, landed: list[dict[str, Any]], spec: dict[str, Any] | None, postgres_url: str
) -> None:
    location = f"s3://icelake/{spec_id(spec)}"
    env = {
        **os.environ,
        **s3.env("LAKEOP_STORAGE_"),
        **s3.env("LAKEOP_SOURCE_"),
        # the URL a Job pod gets from the Table's secret (here without the driver name)
        "LAKEOP_ICEBERG_CATALOG_URI": postgres_url.replace(
            "postgresql+psycopg://", "postgresql://"
        ),
    }
    src = SourceSpec("s3://icesrc/events.csv", "csv")
    p = plan(location, src, partitioning=spec, table_format="iceberg", run_id=f"s3-{spec_id(spec)}")
    p = dataclasses.replace(p, table=dataclasses.replace(p.table, iceberg=("s3", spec_id(spec))))
    result = run(p, env)
    assert result.error is None and result.rows_written == len(landed)
    again = run(p, env)
    assert again.already_committed
    props = {
        "s3.endpoint": s3.endpoint,
        "s3.access-key-id": s3.access_key,
        "s3.secret-access-key": s3.secret_key,
        "s3.region": "us-east-1",
    }
    cat = SqlCatalog(CATALOG_NAME, uri=postgres_url, **props)
    try:
        tbl = cat.load_table(("s3", spec_id(spec)))
    finally:
        cat.engine.dispose()
    assert tbl.metadata_location.startswith(location + "/metadata/")
    assert len(tbl.metadata.snapshots) == 1
    assert check_placement(tbl, spec) == result.files_written
    duck_s3 = {
        "key": s3.access_key,
        "secret": s3.secret_key,
        "endpoint": s3.endpoint.split("://")[1],
    }
    check_rows(tbl, landed, spec, s3=duck_s3)
