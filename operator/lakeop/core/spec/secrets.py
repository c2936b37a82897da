"""A Secret's ``data`` (base64) and ``stringData`` decoded to text, with errors that name the
Secret and the key but never the value.

``lakeop ingest -f`` reads Secrets from manifests and the operator reads them from the API;
both decode here, so a value that is not base64 or not UTF-8 text is refused the same way:
as bad input, before anything is claimed, rather than as a traceback.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from lakeop.errors import InvalidSpecError


def decode_secret_data(
    namespace: str, name: str, data: Any, string_data: Any = None
) -> dict[str, str]:
    """``data`` decoded, then ``stringData`` over it (as the API server merges them)."""
    where = f"Secret {namespace}/{name}"
    out: dict[str, str] = {}
    for field, raw in (("data", data), ("stringData", string_data)):
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            raise InvalidSpecError(f"{where}: {field}: must be a mapping of key -> value")
        for key, value in raw.items():
            if field == "stringData" and isinstance(value, int | float) and isinstance(key, str):
                value = str(value)  # noqa: PLW2901  (YAML reads `port: 5432` as a number)
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidSpecError(
                    f"{where}: {field}.{key}: must be a string (value not shown)"
                )
            out[key] = value if field == "stringData" else _decode(where, key, value)
    return out


def _decode(where: str, key: str, value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidSpecError(
            f"{where}: data.{key}: not valid base64 (value not shown); put plain text under "
            "stringData instead"
        ) from e
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidSpecError(
            f"{where}: data.{key}: decodes to bytes that are not UTF-8 text (value not shown)"
        ) from e
