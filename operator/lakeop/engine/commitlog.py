"""The commit log under ``<location>/_lakeop/commits/``: what the table is made of.

One JSON object per committed run, named ``<commit time in ms, 13 digits>-<run id>.json``.
Writing that single object is the commit point (see docs/commit-protocol.md): before it the
run's files are invisible staged objects; after it they are part of the table, and
publishing them into the partition directories is roll-forward work any later run finishes.
Names are unique per run id, so concurrent runs never conflict, and a retried run finds its
own commit and does not write again. The live file set is ``added - removed`` folded over
the commits in name order; overwrite commits list exactly the files they replace.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lakeop.sources.sql import decode_watermark
from lakeop.storage import Storage, open_storage, retrying

COMMITS_DIR = "_lakeop/commits"
STAGING_DIR = "_lakeop/staging"
REJECTED_DIR = "_rejected"
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

    @property
    def name(self) -> str:
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

    def to_json(self) -> str:
        d = asdict(self)
        d["format"] = LOG_FORMAT
        d["rows"] = self.rows
        d["bytes"] = self.bytes
        d["partitions"] = self.partition_counts()
        return json.dumps(d, indent=1, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Commit:
        d = json.loads(text)
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
        )


class CommitLog:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def names(self) -> list[str]:
        entries = retrying(lambda: self.storage.list_files(COMMITS_DIR, recursive=False))
        names = [e.path.rsplit("/", 1)[-1] for e in entries]
        return sorted(n for n in names if n.endswith(".json") and not n.startswith("."))

    def commits(self) -> list[Commit]:
        out = []
        for name in self.names():
            data = retrying(functools.partial(self.storage.read_bytes, f"{COMMITS_DIR}/{name}"))
            if data is not None:
                out.append(Commit.from_json(data.decode()))
        return out

    def find(self, run_id: str) -> Commit | None:
        suffix = f"-{run_id}.json"
        for name in self.names():
            if name.endswith(suffix) and name[:13].isdigit():
                data = retrying(functools.partial(self.storage.read_bytes, f"{COMMITS_DIR}/{name}"))
                if data is not None:
                    return Commit.from_json(data.decode())
        return None

    def write(self, commit: Commit) -> None:
        """The commit point: one object appears whole (atomic PUT / rename)."""
        body = commit.to_json().encode()
        retrying(lambda: self.storage.write_bytes_atomic(f"{COMMITS_DIR}/{commit.name}", body))


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


def totals(commits: list[Commit]) -> dict[str, Any]:
    live = live_files(commits)
    return {
        "rows": sum(f.rows for f in live.values()),
        "files": len(live),
        "bytes": sum(f.bytes for f in live.values()),
        "partitions": len({f.partition for f in live.values()}),
        "lastCommitTime": commits[-1].committed_at if commits else None,
    }


def table_totals(
    location: str, storage_env: Mapping[str, str] | None = None, prefix: str = "LAKEOP_STORAGE_"
) -> dict[str, Any]:
    """Committed totals for the operator: rows, files, bytes, partitions, lastCommitTime."""
    return totals(CommitLog(open_storage(location, storage_env, prefix)).commits())
