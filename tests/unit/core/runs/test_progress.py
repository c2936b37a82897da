"""A run's progress from its pod's log tail: the engine's own progress records (formatted
as a pod logs them, JSON or text) give ``percent``, ``rowsRead`` and ``rowsPerSecond``."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest

from lakeop.core.runs.progress import progress_of
from lakeop.engine.records import Counters, Pipeline
from lakeop.logging_setup import TEXT_FORMAT, JsonFormatter


def engine_line(formatter: logging.Formatter, sizes: dict[str, int], done: int) -> str:
    """One progress record of the engine's, as the pod's log handler writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.Logger("lakeop.engine.progress", logging.INFO)
    logger.addHandler(handler)
    counters = Counters()
    counters.rows_read, counters.rows_rejected = 1_200_000, 3
    fake = SimpleNamespace(progress=logger, counters=counters, sizes=sizes)
    Pipeline._report(fake, 4.0, done)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize(
    "formatter", [JsonFormatter(), logging.Formatter(TEXT_FORMAT)], ids=["json", "text"]
)
def test_the_engines_own_lines_read_back(formatter: logging.Formatter) -> None:
    line = engine_line(formatter, {"a.csv": 1000, "b.csv": 1000}, 850)
    assert progress_of("starting\n" + line) == {
        "percent": 42,
        "rowsRead": 1_200_000,
        "rowsPerSecond": 300_000,
    }
    sql = engine_line(formatter, {}, 0)  # a SQL source: no total, no percentage
    assert progress_of(sql) == {"rowsRead": 1_200_000, "rowsPerSecond": 300_000}


def test_the_last_progress_line_wins() -> None:
    log = (
        "lakeop: 10 rows read, 0 rejected, 5 rows/s, 1% (10 of 1,000 bytes)\n"
        '{"message": "x", "rowsRead": 500, "rowsPerSecond": 50, "percent": 50}\n'
        "lakeop: committing\n"
    )
    assert progress_of(log) == {"percent": 50, "rowsRead": 500, "rowsPerSecond": 50}


@pytest.mark.parametrize(
    "log",
    [
        "",
        "lakeop: reading s3://b/x.csv\n",
        '{"message": "no facts"}\n',
        '{"rowsRead": "many", "rowsPerSecond": 1}\n',
        '{"rowsRead": true, "rowsPerSecond": 1}\n',
        '{"rowsRead": Infinity, "rowsPerSecond": 1}\n',
        '{"rowsRead": NaN, "rowsPerSecond": 1}\n',
        "[1, 2]\n",
        "{not json\n",
        "\udcff\x00 rows read\n",
    ],
)
def test_no_progress_line_is_no_progress(log: str) -> None:
    assert progress_of(log) is None


def test_a_percentage_is_kept_within_bounds() -> None:
    log = '{"rowsRead": 5, "rowsPerSecond": 1, "percent": 250}\n'
    assert progress_of(log) == {"percent": 100, "rowsRead": 5, "rowsPerSecond": 1}
