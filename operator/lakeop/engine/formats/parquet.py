"""``format: parquet``: Hive-style directories and lakeop's own commit log.

The commit point is the exclusive create of the next numbered commit object
(:mod:`lakeop.engine.commitlog`); files are staged under ``_lakeop/staging`` and published
into the partition directories after it (:mod:`lakeop.engine.publish`), because readers of
this format list directories. The protocol is ``docs/commit-protocol.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa

from lakeop.core.lake.maintenance import LineageConflict, resolve_removed
from lakeop.engine import publish as publishing
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import Commit, DataFile, live_files, totals
from lakeop.engine.formats.base import Snapshot
from lakeop.errors import CommitConflictError
from lakeop.storage import Storage


def follow_compactions(commits: list[Commit], entry: Commit) -> Commit:
    """An overwrite's ``removed`` at its commit point: files a compaction rewrote since the
    overwrite read the log are replaced through the compaction's outputs, so the rows it
    overwrote never come back (:func:`lakeop.core.lake.maintenance.resolve_removed`)."""
    live = live_files(commits)
    replaces: dict[str, list[str]] = {}
    for c in commits:
        replaces.update(c.replaces)
    try:
        removed = resolve_removed(entry.removed, live, replaces)
    except LineageConflict as e:
        raise CommitConflictError(f"run {entry.run_id}: {e}; retry the run") from e
    return replace(entry, removed=removed)


class ParquetFormat:
    name = "parquet"
    staged = True

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.log = CommitLog(storage)

    def ensure(self, schema: pa.Schema, partition_columns: Sequence[str]) -> None:
        """Nothing to create: the directory and the log appear with the first commit, and
        files keep the schema they were written with (readers project them)."""

    def file_schema(self, schema: pa.Schema) -> pa.Schema | None:
        return None

    def commits(self) -> list[Commit]:
        return self.log.commits()

    def find(self, run_id: str) -> Commit | None:
        return self.log.find(run_id)

    def commit(self, commit: Commit, schema: pa.Schema) -> tuple[Commit, bool]:
        return self.log.commit(commit, prepare=follow_compactions if commit.removed else None)

    def publish(self, commit: Commit) -> None:
        publishing.publish(self.storage, commit)

    def recover(self, current_run: str, now_ms: int) -> list[str]:
        return publishing.recover(self.storage, self.log, current_run, now_ms)

    def live_files(self) -> dict[str, DataFile]:
        return live_files(self.log.commits())

    def totals(self) -> dict[str, Any]:
        return totals(self.log.commits())

    def snapshot(self) -> Snapshot | None:
        commits = self.log.commits()
        if not commits:
            return None
        last = commits[-1]
        return Snapshot(str(last.seq or last.name), last.committed_at)

    def status(self, small_below: float | None) -> dict[str, Any]:
        """The operator's totals, ``snapshot`` and (with ``small_below``) ``smallFiles``,
        folded from the log once per new commit (:meth:`CommitLog.summary`): a refresh of
        an unchanged table reads two small objects, however long its history."""

        def make(commits: list[Commit]) -> dict[str, Any]:
            out = totals(commits, small_below)
            if commits:
                last = commits[-1]
                out["snapshot"] = Snapshot(str(last.seq or last.name), last.committed_at)
            return out

        return dict(self.log.summary(("status", small_below), make))

    def delete(self) -> bool:
        if not self.storage.list_files(""):
            return False
        self.storage.delete_dir("")
        return True
