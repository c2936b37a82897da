"""Expiry of a ``format: parquet`` table: retired files, old quarantined records, the log.

Files a commit removed (an overwrite's replaced files, a compaction's inputs) are moved to
``_lakeop/retired/<commit>/`` when the commit is published; a reader pinned to an older
snapshot (:func:`snapshot_files`) still reads them there. Once that commit is older than
``retention.snapshots`` no snapshot inside the retention references them
(:func:`lakeop.core.lake.maintenance.expired_removals`) and the directory is deleted. Files
the live table references are never under ``retired/``, and are checked again anyway.
``_rejected/<run>/`` directories whose newest record is older than
``retention.rejectedRecords`` are deleted, except those of runs still staging. Finally the
log is checkpointed, so readers start from one object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from lakeop.core.lake.maintenance import Removal, expired_rejected, expired_removals
from lakeop.engine.commitlog import REJECTED_DIR, STAGING_DIR, CommitLog
from lakeop.engine.commits import Commit, live_files
from lakeop.engine.notes import say as _say
from lakeop.engine.publish import RETIRED_DIR, recover, retired_dir, retired_path
from lakeop.errors import LakeopError
from lakeop.storage import Storage


@dataclass
class ExpiryResult:
    files_deleted: int = 0
    bytes_freed: int = 0
    commits_expired: list[int] = field(default_factory=list)
    rejected_runs: list[str] = field(default_factory=list)
    checkpointed: bool = False
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "filesDeleted": self.files_deleted,
            "bytesFreed": self.bytes_freed,
            "commitsExpired": len(self.commits_expired),
            "rejectedRunsDeleted": len(self.rejected_runs),
            "checkpointed": self.checkpointed,
            "seconds": round(self.seconds, 3),
        }


def expire(
    storage: Storage,
    snapshot_retention_s: float,
    rejected_retention_s: float,
    *,
    run_id: str = "lakeop-expiry",
    clock: Callable[[], float] = time.time,
    progress: TextIO | None = None,
) -> ExpiryResult:
    t0 = clock()
    now_ms = int(t0 * 1000)
    result = ExpiryResult()
    log = CommitLog(storage)
    recover(storage, log, run_id, now_ms)  # a publish still moving files finishes first
    commits = log.commits()
    live = live_files(commits)
    by_dir = {retired_dir(c): c for c in commits if c.removed}
    present = set(storage.list_dirs(RETIRED_DIR))
    removals = [
        Removal(c.seq, c.committed_ms, tuple(c.removed))
        for d, c in by_dir.items()
        if d.rsplit("/", 1)[-1] in present
    ]
    expired = {r.seq for r in expired_removals(removals, now_ms, snapshot_retention_s)}
    for c in by_dir.values():
        if c.seq not in expired:
            continue
        _say(progress, f"lakeop expire: commit {c.seq}: {len(c.removed)} retired files")
        _delete_retired(storage, c, live, result)
        result.commits_expired.append(c.seq)
    expire_rejected(storage, now_ms, rejected_retention_s, result, progress)
    try:
        result.checkpointed = log.checkpoint()
    except (LakeopError, OSError) as e:
        _say(progress, f"lakeop expire: could not checkpoint the log: {e}")
    result.seconds = clock() - t0
    return result


def _delete_retired(
    storage: Storage, c: Commit, live: dict[str, Any], result: ExpiryResult
) -> None:
    listed = {e.path: e.size for e in storage.list_files(retired_dir(c))}
    for path in c.removed:
        if path in live:  # never: removed paths are not reused; a fence all the same
            continue
        where = retired_path(c, path)
        if where in listed:
            storage.delete(where)
            result.files_deleted += 1
            result.bytes_freed += listed[where]
    storage.delete_dir(retired_dir(c))


def expire_rejected(
    storage: Storage,
    now_ms: int,
    retention_s: float,
    result: ExpiryResult,
    progress: TextIO | None,
) -> None:
    runs = storage.list_dirs(REJECTED_DIR)
    if not runs:
        return
    newest: dict[str, int] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for run in runs:
        entries = storage.list_files(f"{REJECTED_DIR}/{run}")
        stamps = [e.mtime_ns // 1_000_000 for e in entries if e.mtime_ns is not None]
        newest[run] = max(stamps, default=now_ms)  # undatable: treated as new
        sizes[run] = (len(entries), sum(e.size for e in entries))
    in_flight = set(storage.list_dirs(STAGING_DIR))
    for run in expired_rejected(newest, in_flight, now_ms, retention_s):
        _say(progress, f"lakeop expire: quarantined records of run {run}")
        storage.delete_dir(f"{REJECTED_DIR}/{run}")
        result.rejected_runs.append(run)
        result.files_deleted += sizes[run][0]
        result.bytes_freed += sizes[run][1]


def snapshot_files(storage: Storage, seq: int) -> list[str]:
    """The data files of snapshot ``seq`` (the table as of commit ``seq``), each where it is
    now: in place, or under ``retired/`` if a later commit removed it. A pinned reader
    (DuckDB over this list, :func:`lakeop.engine.reader.read_table` with ``snapshot``) reads
    them until expiry deletes them."""
    commits = CommitLog(storage).commits()
    upto = [c for c in commits if c.seq <= seq]
    if not upto or upto[-1].seq != seq:
        raise LakeopError(f"no commit {seq} in the log of {storage.url}")
    remover: dict[str, Commit] = {}
    for c in commits:
        if c.seq > seq:
            for p in c.removed:
                remover.setdefault(p, c)
    out = []
    for path in sorted(live_files(upto)):
        later = remover.get(path)
        moved = later is not None and not storage.exists(path)
        out.append(retired_path(later, path) if moved and later is not None else path)
    return out
