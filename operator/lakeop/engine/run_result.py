"""What an ingestion run reports: its :class:`RunResult`, filled from a commit or a share's
manifest, and the summary of a committed run read back from the table's commit log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.runs.summary import Failure, RunSummary, ShareReport
from lakeop.core.timestamps import format_epoch
from lakeop.engine import shards
from lakeop.engine.commits import Commit
from lakeop.engine.formats import detect
from lakeop.storage import open_storage

SUMMARY_LIMIT = 4096


SUMMARY_LIMIT = 4096


@dataclass
class RunResult:
    run_id: str
    table: str
    schema_version: int
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    bytes_written: int = 0
    files_written: int = 0
    partitions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    start_time: str = ""
    completion_time: str = ""
    error: Failure | None = None
    extra_columns: list[str] = field(default_factory=list)
    already_committed: bool = False
    shard: ShareReport | None = None  # a share of a scaled-out run

    def summary(self) -> RunSummary:
        """What the pod reports (every key set: the operator reads what it needs)."""
        return RunSummary(
            run_id=self.run_id,
            table=self.table,
            schema_version=self.schema_version,
            rows_read=self.rows_read,
            rows_written=self.rows_written,
            rows_rejected=self.rows_rejected,
            bytes_written=self.bytes_written,
            files_written=self.files_written,
            partitions=tuple(self.partitions),
            partitions_truncated=False,
            seconds=round(self.seconds, 3),
            start_time=self.start_time,
            completion_time=self.completion_time,
            error=self.error,
            ignored_columns=tuple(self.extra_columns),
            shard=self.shard,
        )


def committed_summary(  # noqa: PLR0917
    location: str,
    storage_env: Mapping[str, str],
    prefix: str,
    run_id: str,
    table: str,
    table_format: str | None = None,
) -> RunSummary | None:
    """The summary of run ``run_id`` read from its commit; None when the run has no commit.

    For the operator, when a run's pods ended without a summary that says so (a pod killed
    after the commit point, a failure while publishing): a committed run succeeded, with the
    commit's rows, whatever happened after its commit point."""
    storage = open_storage(location, storage_env, prefix)
    storage.table_format = table_format  # None: told from the table's files
    commit = detect(storage).find(run_id)
    if commit is None:
        return None
    result = RunResult(run_id=run_id, table=table, schema_version=commit.schema_version)
    fill(result, commit)
    result.already_committed = True
    result.completion_time = commit.committed_at
    return result.summary()


def fill(result: RunResult, commit: Commit, share: shards.Share | None = None) -> None:
    if share is not None:  # report the share's part, so that the operator's sum is the run's
        mine = [s for s in commit.shards if int(s.get("index", -1)) == share.index]
        tag = f"part-{share.run_id}{share.tag}-"
        parts = sorted({f.partition for f in commit.files if tag in f.path})
        manifest = {"totals": mine[0] if mine else {}, "partitions": parts}
        fill_share(result, manifest, share, committed=True)
        return
    result.rows_read = commit.rows_read
    result.rows_written = commit.rows
    result.rows_rejected = commit.rows_rejected
    result.bytes_written = commit.bytes
    result.files_written = len(commit.files)
    result.partitions = sorted(commit.partition_counts())
    result.extra_columns = list(commit.extra_columns)


def fill_share(
    result: RunResult, manifest: Mapping[str, Any], share: shards.Share, *, committed: bool
) -> None:
    totals = manifest.get("totals") or {}
    result.rows_read = int(totals.get("rowsRead", 0))
    result.rows_written = int(totals.get("rowsWritten", 0))
    result.rows_rejected = int(totals.get("rowsRejected", 0))
    result.bytes_written = int(totals.get("bytesWritten", 0))
    result.files_written = int(totals.get("filesWritten", 0))
    result.partitions = list(manifest.get("partitions") or [])
    result.extra_columns = list(manifest.get("extraColumns") or [])
    result.shard = ShareReport(share.index, share.count, committed)


def finish(result: RunResult, clock: Callable[[], float], t0: float) -> RunResult:
    t1 = clock()
    result.seconds = t1 - t0
    result.completion_time = format_epoch(t1)
    return result
