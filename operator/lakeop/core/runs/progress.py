"""A run's progress as its pod's log shows it, for ``status.currentRun.progress``.

The engine logs a progress record every few seconds (:mod:`lakeop.engine.records`): as JSON
(``LAKEOP_LOG_FORMAT=json``) its facts are fields of the line, as text they are in its
message (``1,200,000 rows read, 0 rejected, 350,000 rows/s, 42% (...)``). Job pods hold no
API credentials, so the operator reads the tail of the running pod's log and keeps the
last such line: ``percent`` (file sources only: bytes read of the total), ``rowsRead``,
``rowsPerSecond``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TEXT = re.compile(
    r"(?P<rows>[\d,]+) rows read, [\d,]+ rejected, (?P<rate>[\d,]+) rows/s(?:, (?P<pct>\d+)%)?"
)


def _int(value: Any) -> int | None:
    """A JSON integer (the engine writes its counts as integers), else None: a float, even
    ``Infinity`` or ``NaN`` that json accepts, is no count."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _from_json(line: str) -> dict[str, int] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    rows, rate = _int(record.get("rowsRead")), _int(record.get("rowsPerSecond"))
    if rows is None or rate is None:
        return None
    out = {"rowsRead": rows, "rowsPerSecond": rate}
    percent = _int(record.get("percent"))
    if percent is not None:
        out = {"percent": max(0, min(100, percent)), **out}
    return out


def _from_text(line: str) -> dict[str, int] | None:
    m = _TEXT.search(line)
    if m is None:
        return None
    out = {
        "rowsRead": int(m["rows"].replace(",", "")),
        "rowsPerSecond": int(m["rate"].replace(",", "")),
    }
    if m["pct"] is not None:
        out = {"percent": min(100, int(m["pct"])), **out}
    return out


def progress_of(log: str) -> dict[str, int] | None:
    """The facts of the last progress line in ``log`` (a pod's log tail), None if none."""
    for raw in reversed(log.splitlines()):
        line = raw.strip()
        found = _from_json(line) if line.startswith("{") else _from_text(line)
        if found is not None:
            return found
    return None
