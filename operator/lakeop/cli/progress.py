"""Progress you can watch: a bar on a terminal, log lines elsewhere.

The engine reports a run's progress as records of the ``lakeop.engine.progress`` logger every
few seconds and once at the end, with the facts as extras (``rowsRead``, ``rowsPerSecond``,
``seconds`` and, for file sources, ``bytesDone``, ``bytesTotal``, ``percent``). Without a
terminal (Job pods, CI, a pipe) those records are the log lines themselves, percentage
included. On a terminal :class:`ProgressBar` draws them as one line rewritten in place::

    [##########..........]  50%  1.2 MB of 2.4 MB  120,000 rows  350,000 rows/s  ETA 3s
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

WIDTH = 20


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover (the loop returns)


def bar_line(facts: Mapping[str, Any]) -> str:
    """The bar for one progress record's facts (no total: rows and rate only)."""
    rows = int(facts.get("rowsRead", 0) or 0)
    rate = float(facts.get("rowsPerSecond", 0) or 0)
    seconds = float(facts.get("seconds", 0) or 0)
    total = int(facts.get("bytesTotal", 0) or 0)
    parts = []
    if total:
        done = int(facts.get("bytesDone", 0) or 0)
        fraction = min(done / total, 1.0)
        filled = round(fraction * WIDTH)
        parts.append(f"[{'#' * filled}{'.' * (WIDTH - filled)}] {fraction:4.0%}")
        parts.append(f"{human_bytes(done)} of {human_bytes(total)}")
    parts.append(f"{rows:,} rows")
    parts.append(f"{rate:,.0f} rows/s")
    if total and 0 < done < total and seconds > 0:
        eta = seconds * (total - done) / done
        parts.append(f"ETA {eta:.0f}s")
    return "  ".join(parts)


class ProgressBar(logging.Handler):
    """Draws the progress records on ``stream`` (a terminal) as one line rewritten in
    place; :meth:`close` ends the line."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.drawn = 0

    def emit(self, record: logging.LogRecord) -> None:
        line = bar_line(vars(record))
        self.stream.write("\r" + line.ljust(self.drawn))
        self.stream.flush()
        self.drawn = len(line)

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = 0
        super().close()


def progress_logger(stream: TextIO | None = None) -> logging.Logger | None:
    """A logger drawing a bar on ``stream`` (stderr) when it is a terminal; None otherwise,
    so that the engine's own log lines (with the percentage) are the progress."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        return None
    logger = logging.Logger("lakeop.engine.progress", logging.INFO)
    logger.addHandler(ProgressBar(stream))
    logger.propagate = False
    return logger


def finish(logger: logging.Logger | None) -> None:
    for handler in list(logger.handlers if logger else ()):
        handler.close()
