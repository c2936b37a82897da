"""``lakeop ingest``: manifests (-f), plans (--plan-env), summaries, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from enginekit import csv_source, duck, plan, write_csv

from lakeop.cli import main
from lakeop.cli.ingest import bounded_summary
from lakeop.core.runs.summary import RunSummary

HEADER = "id,user,ts,amount,country"


def manifests(tmp_path: Path, source: dict[str, Any], extra: list[dict[str, Any]] = ()) -> Path:
    meta = {"namespace": "demo"}
    docs = [
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "Table",
            "metadata": {**meta, "name": "events"},
            "spec": {
                "location": f"file://{tmp_path}/lake/events",
                "partitioning": {
                    "strategy": "list",
                    "column": "country",
                    "values": {"eu": ["DE", "FR"]},
                    "default": "row",
                },
            },
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
                    {"name": "country", "type": "string"},
                ],
            },
        },
        # v2 adds a required field without default: not BACKWARD compatible, so skipped
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {**meta, "name": "events-v2"},
            "spec": {
                "tableRef": "events",
                "version": 2,
                "fields": [
                    {"name": "id", "type": "long", "nullable": False},
                    {"name": "country", "type": "string"},
                    {"name": "must", "type": "string", "nullable": False},
                ],
            },
        },
        {
            "apiVersion": "lakeop.io/v1alpha1",
            "kind": "IngestionJob",
            "metadata": {**meta, "name": "load"},
            "spec": {"tableRef": "events", "source": source},
        },
        *extra,
    ]
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return folder


def test_ingest_from_folder_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(
        tmp_path / "in" / "a.csv",
        HEADER,
        ["1,u,2026-01-01,1,DE", "2,u,2026-01-01,1,US", "3,u,2026-01-01,1,FR"],
    )
    folder = manifests(tmp_path, {"uri": f"file://{src}", "format": "csv"})
    log = tmp_path / "termination"
    assert (
        main(["ingest", "-f", str(folder), "--output", "json", "--termination-log", str(log)]) == 0
    )
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["schemaVersion"] == 1 and "skipping SchemaVersion events-v2" in err
    assert summary["rowsWritten"] == 3 and summary["error"] is None
    assert summary["partitions"] == ["country_group=eu", "country_group=row"]
    assert summary["ignoredColumns"] == ["amount", "ts", "user"]
    assert set(summary) >= {
        "runId",
        "table",
        "rowsRead",
        "rowsRejected",
        "bytesWritten",
        "filesWritten",
        "partitionsTruncated",
        "seconds",
        "startTime",
        "completionTime",
    }
    assert json.loads(log.read_text()) == summary
    assert duck(tmp_path / "lake" / "events", "SELECT count(*) FROM t")[0][0] == 3


def test_sql_url_from_secret_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER, country TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 'DE'), (2, 'JP')"))
    engine.dispose()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "demo"},
        "stringData": {"url": url},
    }
    source = {
        "sql": {
            "urlSecretRef": {"name": "db", "key": "url"},
            "query": "SELECT * FROM t",
            "incrementalColumn": "id",
        }
    }
    folder = manifests(tmp_path, source, [secret])
    env_before = os.environ.get("LAKEOP_SOURCE_SQL_URL")
    assert main(["ingest", "-f", str(folder)]) == 0
    assert "2 rows written" in capsys.readouterr().out
    assert os.environ.get("LAKEOP_SOURCE_SQL_URL") == env_before  # not leaked


def test_exit_codes_in_a_real_process(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    bad = write_csv(tmp_path / "bad.csv", HEADER, ["x,u,2026-01-01,1,DE"])
    p = plan(lake, csv_source(bad))
    log = tmp_path / "termination"
    cmd = [
        sys.executable,
        "-m",
        "lakeop",
        "ingest",
        "--plan-env",
        "PLAN",
        "--output",
        "json",
        "--termination-log",
        str(log),
    ]
    done = subprocess.run(
        cmd, env={**os.environ, "PLAN": p.to_json()}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["error"]["reason"] == "InvalidRecords"
    assert "field 'id'" in summary["error"]["message"]
    assert json.loads(log.read_text())["error"]["reason"] == "InvalidRecords"

    done = subprocess.run(
        cmd, env={**os.environ, "PLAN": "{not json"}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "run plan: not valid JSON" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "lakeop", "ingest", "-f", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "no such file or directory" in done.stderr


def test_bad_manifest_names_object_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = manifests(tmp_path, {"uri": "ftp://x/y.csv", "format": "csv"})
    assert main(["ingest", "-f", str(folder)]) == 2
    assert "IngestionJob demo/load: spec.source.uri: scheme must be one of" in (
        capsys.readouterr().err
    )


def test_summary_stays_under_4096_bytes() -> None:
    summary = {
        "runId": "r",
        "partitions": [f"year=2026/month=1/day={i}" for i in range(900)],
        "partitionsTruncated": False,
        "error": None,
    }
    text = bounded_summary(RunSummary.from_dict(summary))
    assert len(text.encode()) < 4096
    out = json.loads(text)
    assert out["partitionsTruncated"] is True and 0 < len(out["partitions"]) < 900
