"""Timestamps as Kubernetes writes them, formatted and parsed in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from lakeop.core.timestamps import format_epoch, format_time, parse_time


def test_format_is_utc_whole_seconds_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 3, 1, 12, 0, 5, 999_999, tzinfo=plus_two)) == (
        "2026-03-01T10:00:05Z"
    )
    assert format_time(datetime(2026, 3, 1)) == "2026-03-01T00:00:00Z"  # naive: UTC
    assert format_epoch(0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T10:00:05Z", datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)),
        ("2026-03-01T12:00:05+02:00", datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)),
        ("2026-03-01T10:00:05", datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)),
        ("", None),
        ("yesterday", None),
        (None, None),
        (17, None),
    ],
)
def test_parse(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_round_trip() -> None:
    moment = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert parse_time(format_time(moment)) == moment
