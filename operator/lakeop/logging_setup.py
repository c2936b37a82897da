"""Log output for the operator and the ingestion pods: plain text or one JSON object per line.

Log pipelines (Loki, Elasticsearch, Cloud Logging) index JSON fields, so a question such as
"everything about analytics/user-events today" becomes a filter instead of a regex. Each line
carries the object's ``namespace``/``name``/``kind`` when the record knows them: kopf's
per-object loggers attach a ``k8s_ref`` (the handler's ``logger`` argument), and any other
code can pass ``extra=object_extra(namespace, name, kind)``. ``static`` fields (e.g. the
IngestionJob a Job pod runs for) are added to every line.

Call :func:`configure` once at start-up, after kopf has set up its own logging: it replaces
every root handler, so lines are not printed twice.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

FORMAT_ENV_VAR = "LAKEOP_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s %(message)s"
_REF_KEYS = ("namespace", "name", "kind")
# LogRecord attributes that are not user "extra" fields.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "k8s_ref", "k8s_skip", "settings", "taskName"}
)


def object_extra(
    namespace: str | None, name: str | None, kind: str | None = None
) -> dict[str, Any]:
    """``extra=`` for a log call about one object, in the shape kopf's loggers use."""
    return {"k8s_ref": {"namespace": namespace, "name": name, "kind": kind}}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, object ref, extras."""

    def __init__(self, static: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(self.static)
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping):
            entry.update({key: ref[key] for key in _REF_KEYS if ref.get(key)})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return jsonlib.dumps(entry, default=str, ensure_ascii=False)


def json_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``LAKEOP_LOG_FORMAT=json`` (case-insensitive) is set."""
    env = os.environ if environ is None else environ
    return env.get(FORMAT_ENV_VAR, "").strip().lower() == "json"


def configure(
    json: bool,
    *,
    level: int | str = logging.INFO,
    static: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every log record to ``stream`` (stderr) as JSON lines or plain text.

    Returns the installed handler (tests attach their own stream through ``stream``).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(static) if json else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
