"""Log output for the operator and the ingestion pods: plain text or one JSON object per line.

Log pipelines (Loki, Elasticsearch, Cloud Logging) index JSON fields, so a question such as
"everything about analytics/user-events today" becomes a filter instead of a regex. The operator
and its Job pods write ONE shape (:class:`JsonFormatter`, on python-json-logger as kopf's own
JSON output is): ``time``, ``level``, ``logger``, ``message``, the object's
``namespace``/``name``/``kind`` when the record knows them, then any extra fields. kopf's
per-object loggers attach a ``k8s_ref`` (the handler's ``logger`` argument); any other code can
pass ``extra=object_extra(namespace, name, kind)``. ``static`` fields are added to every line.

``LAKEOP_LOG_FORMAT=json`` switches both on (:func:`log_format`): ``lakeop`` commands call
:func:`configure` before they run, the operator at start-up (after kopf set up its own logging:
it replaces every root handler, so lines are not printed twice), and the operator passes its
format to the Job pods it creates.

Without a configured handler (``lakeop ingest -f`` in a terminal, the engine called from
Python), :func:`engine_output` shows the engine's messages on stderr as they always read,
``lakeop: <message>``; once :func:`configure` routed the logs, it steps aside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter as _PjlJsonFormatter

from lakeop.core.constants import LOG_FORMAT_ENV

FORMAT_ENV_VAR = LOG_FORMAT_ENV
JSON, TEXT = "json", "text"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s %(message)s"
#: how the engine's messages read on a terminal (the format ``lakeop ingest -f`` always had)
HUMAN_FORMAT = "lakeop: %(message)s"
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


class JsonFormatter(_PjlJsonFormatter):
    """One JSON object per record: time, level, logger, message, object ref, extras; a
    traceback as ``exception``, a stack as ``stack``."""

    def __init__(self, static: Mapping[str, str] | None = None) -> None:
        super().__init__(
            "%(message)s",
            static_fields=dict(static or {}),
            reserved_attrs=sorted(_STANDARD),
            rename_fields={"exc_info": "exception", "stack_info": "stack"},
            json_default=str,
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        super().add_fields(log_data, record, message_dict)
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping):
            log_data.update({key: ref[key] for key in _REF_KEYS if ref.get(key)})


def log_format(environ: Mapping[str, str]) -> str:
    """``json`` when ``LAKEOP_LOG_FORMAT=json`` (case-insensitive), else ``text``."""
    return JSON if environ.get(FORMAT_ENV_VAR, "").strip().lower() == JSON else TEXT


def json_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``LAKEOP_LOG_FORMAT=json`` (case-insensitive) is set; the process
    environment, read now, when ``environ`` is None."""
    return log_format(os.environ if environ is None else environ) == JSON


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record arrives (as logging's own last
    resort does), so a redirected or captured stderr gets the lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


#: the handlers :func:`configure` installed
_CONFIGURED: weakref.WeakSet[logging.Handler] = weakref.WeakSet()


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
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(JsonFormatter(static) if json else logging.Formatter(TEXT_FORMAT))
    _CONFIGURED.add(handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def configured() -> bool:
    """Whether :func:`configure` routed the logs (its handler is on the root logger)."""
    return any(h in _CONFIGURED for h in logging.getLogger().handlers)


_ENGINE = logging.getLogger("lakeop")
_engine_lock = threading.Lock()
_engine_users = 0
_engine_handler: logging.Handler | None = None
_engine_level = logging.NOTSET


@contextlib.contextmanager
def engine_output() -> Iterator[None]:
    """While the block runs, lakeop's messages (INFO and up) are shown on stderr as
    ``lakeop: <message>``, unless :func:`configure` routed the logs already. Nests and
    overlaps across threads: the handler is attached once, removed with the last user."""
    global _engine_users, _engine_handler, _engine_level  # noqa: PLW0603
    with _engine_lock:
        _engine_users += 1
        if _engine_users == 1 and not configured():
            _engine_handler = _Stderr()
            _engine_handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
            _engine_level = _ENGINE.level
            if _ENGINE.getEffectiveLevel() > logging.INFO:
                _ENGINE.setLevel(logging.INFO)
            _ENGINE.addHandler(_engine_handler)
    try:
        yield
    finally:
        with _engine_lock:
            _engine_users -= 1
            if _engine_users == 0 and _engine_handler is not None:
                _ENGINE.removeHandler(_engine_handler)
                _ENGINE.setLevel(_engine_level)
                _engine_handler = None


def stream_logger(name: str, stream: TextIO) -> logging.Logger:
    """A logger of its own writing ``lakeop: <message>`` lines to ``stream`` only (e.g. the
    progress lines a caller asked for on a stream of its choosing)."""
    logger = logging.Logger(name, logging.INFO)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
    logger.addHandler(handler)
    logger.propagate = False
    return logger
