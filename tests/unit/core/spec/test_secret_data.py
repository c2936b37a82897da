"""Secret values decoded once for ``lakeop ingest -f`` and the operator; errors name the
Secret and the key, never the value."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from lakeop.core.spec.secrets import decode_secret_data
from lakeop.errors import InvalidSpecError


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_data_then_string_data_over_it() -> None:
    data = {"A": b64(b"one"), "B": b64("zwei ü".encode())}
    assert decode_secret_data("ns", "s", data, {"B": "two", "PORT": 5432}) == {
        "A": "one",
        "B": "two",
        "PORT": "5432",
    }
    assert decode_secret_data("ns", "s", None) == {}


@pytest.mark.parametrize(
    ("data", "string_data", "message"),
    [
        ({"KEY": "hunter2!!"}, None, "Secret ns/s: data.KEY: not valid base64 (value not shown)"),
        ({"KEY": b64(b"\xffhunter2")}, None, "data.KEY: decodes to bytes that are not UTF-8"),
        ({"KEY": 12}, None, "Secret ns/s: data.KEY: must be a string"),
        (["hunter2"], None, "Secret ns/s: data: must be a mapping"),
        (None, {"KEY": ["hunter2"]}, "Secret ns/s: stringData.KEY: must be a string"),
    ],
)
def test_refusals_name_secret_and_key_but_not_the_value(
    data: Any, string_data: Any, message: str
) -> None:
    with pytest.raises(InvalidSpecError) as e:
        decode_secret_data("ns", "s", data, string_data)
    assert message in str(e.value) and "hunter2" not in str(e.value)
