"""How a watermark (the incremental column's highest value) is stored in lake metadata.

Commits, claims and share manifests record SQL watermarks and interval bounds as JSON. A
datetime, date or decimal would not survive JSON as itself, so it is written as
``{"type": ..., "value": ...}`` and read back as the same Python value; numbers and strings
stay as they are. This belongs to the commit layer (it is the format of the lake's metadata),
not to the SQL reader that produces the values, so reading a table's log never imports a
source reader.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any


def encode_watermark(value: Any) -> Any:
    """A JSON-able form of a watermark value, decodable by :func:`decode_watermark`."""
    if isinstance(value, dt.datetime | dt.date):
        return {"type": type(value).__name__, "value": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"type": "decimal", "value": str(value)}
    return value


def decode_watermark(value: Any) -> Any:
    """The Python value :func:`encode_watermark` wrote (anything else unchanged)."""
    if isinstance(value, dict):
        kind, text = value.get("type"), value.get("value")
        if kind == "datetime":
            return dt.datetime.fromisoformat(str(text))
        if kind == "date":
            return dt.date.fromisoformat(str(text))
        if kind == "decimal":
            return decimal.Decimal(str(text))
    return value
