"""Watermarks survive the lake's JSON metadata as the same Python values."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pytest

from lakeop.engine.watermarks import decode_watermark, encode_watermark


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        2.5,
        "2026-01-01",
        dt.date(2026, 3, 1),
        dt.datetime(2026, 3, 1, 12, 30, 15, 123456),
        dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC),
        decimal.Decimal("12345678901234567890.000000001"),
    ],
)
def test_round_trip_through_json(value: Any) -> None:
    back = decode_watermark(json.loads(json.dumps(encode_watermark(value))))
    assert back == value and type(back) is type(value)


def test_encoded_forms_are_tagged() -> None:
    assert encode_watermark(dt.date(2026, 3, 1)) == {"type": "date", "value": "2026-03-01"}
    assert encode_watermark(decimal.Decimal("1.50")) == {"type": "decimal", "value": "1.50"}
    assert decode_watermark({"type": "unknown", "value": "x"}) == {"type": "unknown", "value": "x"}
