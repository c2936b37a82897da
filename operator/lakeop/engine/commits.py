"""A commit record of the table's log (:class:`Commit`, its :class:`DataFile` entries, their
JSON form) and what a list of commits says: the live files, the sources a job took, its
watermark, the table's totals. Reading and writing the log is :mod:`lakeop.engine.commitlog`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.engine.watermarks import decode_watermark

SEQ_DIGITS = 20
LOG_FORMAT = 1


@dataclass(frozen=True)
class DataFile:
    path: str  # final path relative to the table location
    partition: str  # "k=v/k=v" ("" when unpartitioned)
    rows: int
    bytes: int


@dataclass
class Commit:
    run_id: str
    job: str
    committed_at: str  # ISO-8601 UTC
    committed_ms: int
    schema_version: int
    mode: str
    files: list[DataFile]
    removed: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    watermark: Any = None
    rows_read: int = 0
    rows_rejected: int = 0
    extra_columns: list[str] = field(default_factory=list)
    # a scaled-out run: each share's counters ({"index", "rowsWritten", ...})
    shards: list[dict[str, Any]] = field(default_factory=list)
    # the attempt tags whose quarantined records are the run's (``_rejected/<run>/
    # rejected<tag>-<n>.jsonl``; a scaled-out run: one per share); None: the run kept none
    quarantine: list[str] | None = None
    # a compaction: each file it wrote -> the files it rewrote into it (their removal is in
    # ``removed``); an overwrite committed later follows it (core.lake.maintenance)
    replaces: dict[str, list[str]] = field(default_factory=dict)
    seq: int = 0  # position in the numbered log; 0: a commit of the older, time-named log

    @property
    def name(self) -> str:
        if self.seq:
            return seq_name(self.seq)
        return f"{self.committed_ms:013d}-{self.run_id}.json"

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def partition_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            out[f.partition] = out.get(f.partition, 0) + f.rows
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        """The stored fields (``dataclasses.asdict`` without its deep copies: checkpoints
        serialise thousands of commits)."""
        return {
            "run_id": self.run_id,
            "job": self.job,
            "committed_at": self.committed_at,
            "committed_ms": self.committed_ms,
            "schema_version": self.schema_version,
            "mode": self.mode,
            "files": [
                {"path": f.path, "partition": f.partition, "rows": f.rows, "bytes": f.bytes}
                for f in self.files
            ],
            "removed": list(self.removed),
            "sources": list(self.sources),
            "watermark": self.watermark,
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "extra_columns": list(self.extra_columns),
            "shards": list(self.shards),
            "quarantine": None if self.quarantine is None else list(self.quarantine),
            "seq": self.seq,
            **(
                {"replaces": {k: list(v) for k, v in self.replaces.items()}}
                if self.replaces
                else {}
            ),
        }

    def to_json(self) -> str:
        d = self.to_dict()
        d["format"] = LOG_FORMAT
        d["rows"] = self.rows
        d["bytes"] = self.bytes
        d["partitions"] = self.partition_counts()
        return json.dumps(d, indent=1, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Commit:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Commit:
        return cls(
            run_id=d["run_id"],
            job=d.get("job", ""),
            committed_at=d["committed_at"],
            committed_ms=int(d["committed_ms"]),
            schema_version=int(d["schema_version"]),
            mode=d.get("mode", "append"),
            files=[DataFile(**f) for f in d["files"]],
            removed=list(d.get("removed", [])),
            sources=list(d.get("sources", [])),
            watermark=d.get("watermark"),
            rows_read=int(d.get("rows_read", 0)),
            rows_rejected=int(d.get("rows_rejected", 0)),
            extra_columns=list(d.get("extra_columns", [])),
            shards=list(d.get("shards", [])),
            quarantine=None if d.get("quarantine") is None else list(d["quarantine"]),
            seq=int(d.get("seq", 0)),
            replaces={str(k): list(v) for k, v in (d.get("replaces") or {}).items()},
        )


def seq_name(seq: int) -> str:
    return f"{seq:0{SEQ_DIGITS}d}.json"


def live_files(commits: list[Commit]) -> dict[str, DataFile]:
    live: dict[str, DataFile] = {}
    for c in commits:
        for path in c.removed:
            live.pop(path, None)
        for f in c.files:
            live[f.path] = f
    return live


def taken_sources(commits: list[Commit], job: str) -> set[tuple[str, int, str]]:
    """Identities (uri, size, version) of source files that earlier commits of ``job`` took."""
    out: set[tuple[str, int, str]] = set()
    for c in commits:
        if c.job == job:
            out.update((s["uri"], int(s["size"]), str(s["version"])) for s in c.sources)
    return out


def last_watermark(commits: list[Commit], job: str) -> Any:
    """The highest watermark any commit of ``job`` recorded (encoded), None if none: runs of
    one job may commit out of order when several are in flight."""
    marks = [c.watermark for c in commits if c.job == job and c.watermark is not None]
    if not marks:
        return None
    return max(marks, key=decode_watermark)


def totals(commits: list[Commit], small_below: float | None = None) -> dict[str, Any]:
    """``small_below``: also count the live files under that many bytes (``smallFiles``:
    75% of the table's compaction target)."""
    live = live_files(commits)
    out: dict[str, Any] = {
        "rows": sum(f.rows for f in live.values()),
        "files": len(live),
        "bytes": sum(f.bytes for f in live.values()),
        "partitions": len({f.partition for f in live.values()}),
        "lastCommitTime": commits[-1].committed_at if commits else None,
    }
    if small_below is not None:
        out["smallFiles"] = sum(1 for f in live.values() if f.bytes < small_below)
    return out
