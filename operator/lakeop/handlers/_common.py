"""Helpers every handler module shares: the clock, error translation, body accessors.

lakeop's exception tree knows nothing of kopf; :func:`kopf_errors` is the one place where a
:class:`~lakeop.errors.TerminalError` becomes ``kopf.PermanentError`` (never retried, so a
bad manifest cannot make a handler spin) and a :class:`~lakeop.errors.TransientError`
becomes ``kopf.TemporaryError`` with the error's own delay.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from lakeop.core.constants import API_VERSION
from lakeop.core.timestamps import format_time
from lakeop.errors import TerminalError, TransientError
from lakeop.memo import OperatorMemo


def now() -> str:
    return format_time(datetime.now(UTC))


@contextmanager
def kopf_errors(memo: OperatorMemo | None = None, kind: str = "") -> Iterator[None]:
    """Translate lakeop errors into kopf's retry semantics (and count them by kind)."""
    try:
        yield
    except (TerminalError, TransientError) as exc:
        if memo is not None and kind:
            memo.metrics.reconcile_error(kind)
        if isinstance(exc, TransientError):
            raise kopf.TemporaryError(f"{exc.reason}: {exc}", delay=exc.delay) from exc
        raise kopf.PermanentError(f"{exc.reason}: {exc}") from exc


def generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 1)


def conditions(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = body.get("status") or {}
    return list(status.get("conditions") or [])


def as_body(obj: Mapping[str, Any]) -> kopf.Body:
    """An object read from the API as a kopf Body, e.g. to post an Event on it."""
    return obj if isinstance(obj, kopf.Body) else kopf.Body(cast(kopf.RawBody, dict(obj)))


def ref(kind: str, namespace: str, name: str, uid: str | None = None) -> dict[str, Any]:
    """A minimal body kopf.event() accepts for an object other than the handled one."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta}
