"""The engine logs through ``logging``: human lines on a terminal, JSON lines in pods.

A pod runs ``lakeop ingest --plan-env`` with ``LAKEOP_LOG_FORMAT=json`` (the operator passes
its format on): every stderr line is then one JSON object of the operator's shape, the
engine's messages and progress lines included. Without it the lines read as they always did.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import csv_source, plan, write_csv

from lakeop.engine import records
from lakeop.engine import run as engine_run
from lakeop.logging_setup import configure, engine_output

HEADER = "id,user,ts,amount,country"


def rows(start: int, count: int) -> list[str]:
    return [f"{i},u{i % 7},2026-03-01 10:00:00,{i}.5,DE" for i in range(start, start + count)]


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def ingest(plan_json: str, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "LAKEOP_PLAN"]
    full = {k: v for k, v in os.environ.items() if k != "LAKEOP_LOG_FORMAT"}
    full |= {"LAKEOP_PLAN": plan_json, **env}
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=120, check=False)


def test_a_pod_in_json_mode_logs_only_json_lines(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in" / "a.csv", HEADER, rows(0, 20))
    lake = tmp_path / "lake"
    first = ingest(plan(lake, csv_source(src), run_id="r1").to_json(), LAKEOP_LOG_FORMAT="json")
    assert first.returncode == 0, first.stderr
    assert "20 rows written" in first.stdout  # the summary stays on stdout
    again = ingest(plan(lake, csv_source(src), run_id="r2").to_json(), LAKEOP_LOG_FORMAT="json")
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in again.stderr.splitlines()]  # nothing but JSON
    (nothing,) = [e for e in lines if e["message"] == "nothing new since the last commit"]
    assert nothing["level"] == "INFO" and nothing["logger"] == "lakeop.engine.run"
    assert str(nothing["time"]).endswith("+00:00")


def test_a_terminal_run_reads_as_before(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in" / "a.csv", HEADER, rows(0, 20))
    lake = tmp_path / "lake"
    assert ingest(plan(lake, csv_source(src), run_id="r1").to_json()).returncode == 0
    again = ingest(plan(lake, csv_source(src), run_id="r2").to_json())
    assert again.returncode == 0, again.stderr
    assert "lakeop: nothing new since the last commit\n" in again.stderr
    assert "{" not in again.stderr


@pytest.mark.usefixtures("restore_root")
def test_progress_lines_as_json_carry_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "PROGRESS_EVERY_S", 0.0)
    stream = io.StringIO()
    configure(json=True, stream=stream)
    src = write_csv(tmp_path / "a.csv", HEADER, rows(0, 30))
    engine_run.run_plan(plan(tmp_path / "lake", csv_source(src)), dict(os.environ))
    progress = [
        e
        for e in map(json.loads, stream.getvalue().splitlines())
        if e["logger"] == "lakeop.engine.progress"
    ]
    assert progress, stream.getvalue()
    last = progress[-1]
    assert last["rowsRead"] == 30 and last["rowsRejected"] == 0
    assert last["message"].startswith("30 rows read, 0 rejected, ")


@pytest.mark.usefixtures("restore_root")
def test_engine_output_steps_aside_once_logging_is_configured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("lakeop.engine.test")
    with engine_output(), engine_output():  # nested: one handler
        log.info("shown once")
    log.warning("not shown: no handler outside the block")
    assert capsys.readouterr().err == "lakeop: shown once\n"
    stream = io.StringIO()
    configure(json=True, stream=stream)
    with engine_output():
        log.info("as JSON only")
    assert capsys.readouterr().err == ""
    assert json.loads(stream.getvalue())["message"] == "as JSON only"
