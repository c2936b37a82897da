"""The run summary: what a run's pod reports and the operator records, the way back.

The plan goes out to the pod typed (:class:`~lakeop.core.runs.plan.RunPlan`); this is its
counterpart coming back. The engine builds a :class:`RunSummary` when a run (or one share of
a scaled-out run) ends, ``lakeop ingest`` writes it as one JSON line (stdout, the termination
message ``/dev/termination-log``), and the operator reads it from the pod's termination
message, or the last JSON line of its log, with :meth:`RunSummary.from_text`. The operator
also sums the shares of a scaled-out run into one (:mod:`lakeop.core.runs.shard_status`) and
reads a committed run's from its commit.

The JSON keys are a wire format between pods and operators of different versions: camelCase,
as in ``status.lastRun``, and unchanged since the first release. A field is ``None`` when the
summary did not carry its key, and :meth:`RunSummary.to_dict` leaves such keys out, so what an
older pod left out stays out of ``status.lastRun`` (``error`` alone is always written, ``null``
when the run succeeded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Failure:
    """Why a run failed: a CamelCase reason and a message (``error`` in the summary)."""

    reason: str  # a FailureReason value, or the pod's own CamelCase reason
    message: str

    def to_dict(self) -> dict[str, str]:
        """The ``error`` object of ``status.lastRun`` and of the run summary."""
        return {"reason": self.reason, "message": self.message}

    @classmethod
    def from_dict(cls, raw: object) -> Failure | None:
        """An ``error`` object as a pod wrote it; None when it is not one (null, a string)."""
        if not isinstance(raw, Mapping):
            return None
        return cls(str(raw.get("reason") or ""), str(raw.get("message") or ""))


@dataclass(frozen=True)
class ShareReport:
    """``shard``: which share of a scaled-out run a summary covers, and whether the run's
    commit (made by the last share to finish) already holds it."""

    index: int
    count: int
    committed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "committed": self.committed}


#: (attribute, JSON key) of the plain fields, in the order the engine writes them
_KEYS = (
    ("run_id", "runId"),
    ("table", "table"),
    ("schema_version", "schemaVersion"),
    ("rows_read", "rowsRead"),
    ("rows_written", "rowsWritten"),
    ("rows_rejected", "rowsRejected"),
    ("bytes_written", "bytesWritten"),
    ("files_written", "filesWritten"),
    ("partitions", "partitions"),
    ("partitions_truncated", "partitionsTruncated"),
    ("seconds", "seconds"),
    ("start_time", "startTime"),
    ("completion_time", "completionTime"),
)
_INTS = frozenset(
    {"schemaVersion", "rowsRead", "rowsWritten", "rowsRejected", "bytesWritten", "filesWritten"}
)


@dataclass(frozen=True)
class RunSummary:
    """One run's (or one share's) outcome; None: the summary did not say."""

    run_id: str | None = None
    table: str | None = None
    schema_version: int | None = None
    rows_read: int | None = None
    rows_written: int | None = None
    rows_rejected: int | None = None
    bytes_written: int | None = None
    files_written: int | None = None
    partitions: tuple[str, ...] | None = None
    partitions_truncated: bool | None = None
    seconds: float | None = None
    start_time: str | None = None
    completion_time: str | None = None
    error: Failure | None = None
    #: source columns the schema does not know, left out of the table
    ignored_columns: tuple[str, ...] | None = None
    #: a share's summary (``lakeop ingest`` in a pod of an Indexed Job)
    shard: ShareReport | None = None
    #: the operator's sum of a scaled-out run: one line per share (``status.lastRun.shards``)
    shards: tuple[dict[str, Any], ...] | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def with_error(self, error: Failure | None) -> RunSummary:
        return replace(self, error=error)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, key in _KEYS:
            value = getattr(self, attr)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        out["error"] = None if self.error is None else self.error.to_dict()
        if self.ignored_columns is not None:
            out["ignoredColumns"] = list(self.ignored_columns)
        if self.shard is not None:
            out["shard"] = self.shard.to_dict()
        if self.shards is not None:
            out["shards"] = [dict(line) for line in self.shards]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunSummary:
        """A summary as a pod of any version wrote it; keys of the wrong type count as absent
        (a summary is a report, not an order: a bad field must not stop recording the run)."""
        values: dict[str, Any] = {}
        for attr, key in _KEYS:
            values[attr] = _value(key, raw.get(key))
        shard = raw.get("shard")
        if isinstance(shard, Mapping) and _is_int(shard.get("index")):
            values["shard"] = ShareReport(
                int(shard["index"]), int(shard.get("count") or 0), bool(shard.get("committed"))
            )
        ignored = raw.get("ignoredColumns")
        if isinstance(ignored, list):
            values["ignored_columns"] = tuple(str(c) for c in ignored)
        shards = raw.get("shards")
        if isinstance(shards, list):
            values["shards"] = tuple(dict(s) for s in shards if isinstance(s, Mapping))
        return cls(error=Failure.from_dict(raw.get("error")), **values)

    @classmethod
    def from_text(cls, text: str | None, *, key: str = "runId") -> RunSummary | None:
        """The summary in a termination message or a log: its last JSON line that is an
        object with ``key`` (else the whole text as one object); None when there is none.

        ``key="error"`` also finds what ``lakeop ingest`` writes when it cannot even build
        the plan (an ``error`` and nothing else)."""
        if not text:
            return None
        for raw in reversed(text.strip().splitlines()):
            line = raw.strip()
            if line.startswith("{") and (found := _object(line, key)) is not None:
                return cls.from_dict(found)
        found = _object(text, key)
        return None if found is None else cls.from_dict(found)


def _object(text: str, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and key in data else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _value(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in _INTS:
        return int(value) if _is_int(value) else None
    if key == "seconds":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if number else None
    if key == "partitionsTruncated":
        return value if isinstance(value, bool) else None
    if key == "partitions":
        return tuple(str(p) for p in value) if isinstance(value, list) else None
    return value if isinstance(value, str) else None
