"""The status of a scaled-out run, from the run summaries its pods left behind.

Each pod of an Indexed Job writes the summary of *its share* as its termination message
(``lakeop ingest --termination-log``), with ``shard: {index, count, committed}``. The run's
totals are the sums over the shares' latest pods, and each share gets a line in
``status.lastRun.shards`` / ``status.currentRun.shards``:

* ``Done`` (with ``rowsWritten``): its latest pod succeeded;
* ``Failed``: its latest pod failed (Kubernetes retries it while ``backoffLimit`` allows);
* ``Running`` / ``Pending``: a pod is working on it, or none has started yet.

Pure: the handler lists the pods and passes in what it found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakeop.core.runs.summary import Failure, RunSummary

#: the annotation the Job controller puts on each pod of an Indexed Job
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
#: the run summary keeps at most this many partitions (it ends up in a status object)
MAX_PARTITIONS = 100


@dataclass(frozen=True)
class ShareAttempt:
    """The latest pod of one share: its phase and the summary it left (if any)."""

    index: int
    phase: str  # the pod's phase: Pending, Running, Succeeded, Failed
    summary: RunSummary | None = None


def share_state(attempt: ShareAttempt | None) -> dict[str, Any]:
    if attempt is None:
        return {"state": "Pending"}
    summary = attempt.summary or RunSummary()
    if attempt.phase == "Succeeded" and not summary.failed:
        return {"state": "Done", "rowsWritten": summary.rows_written or 0}
    if attempt.phase == "Failed" or summary.failed:
        return {"state": "Failed"}
    return {"state": "Running" if attempt.phase == "Running" else "Pending"}


def shard_lines(attempts: Mapping[int, ShareAttempt], count: int) -> list[dict[str, Any]]:
    """``status.*.shards``: one line per share, in index order."""
    return [{"index": i, **share_state(attempts.get(i))} for i in range(count)]


def combine(
    attempts: Mapping[int, ShareAttempt], count: int, *, failed_first: Sequence[int] = ()
) -> RunSummary | None:
    """One run summary for the whole run (None when no share left a summary).

    Counters are summed over the shares that are Done; the error is the first failed share's
    (``failed_first`` lets the caller say which failed share to report first).
    """
    summaries = {i: a.summary for i, a in attempts.items() if a.summary}
    if not summaries:
        return None
    lines = shard_lines(attempts, count)
    done = [summaries[line["index"]] for line in lines if line["state"] == "Done"]
    first = next(iter(summaries.values()))
    partitions = sorted({p for s in done for p in s.partitions or ()})
    starts = [s.start_time for s in summaries.values() if s.start_time]
    ends = [s.completion_time for s in done if s.completion_time]
    errors = [
        (i, s.error)
        for i, s in sorted(summaries.items(), key=lambda kv: (kv[0] not in failed_first, kv[0]))
        if s.error and share_state(attempts[i])["state"] == "Failed"
    ]
    error = None
    if errors:
        index, failure = errors[0]
        error = Failure(failure.reason or "Failed", f"share {index}: {failure.message}".strip())
    return RunSummary(
        run_id=first.run_id,
        table=first.table,
        schema_version=first.schema_version,
        rows_read=sum(s.rows_read or 0 for s in done),
        rows_written=sum(s.rows_written or 0 for s in done),
        rows_rejected=sum(s.rows_rejected or 0 for s in done),
        bytes_written=sum(s.bytes_written or 0 for s in done),
        files_written=sum(s.files_written or 0 for s in done),
        partitions=tuple(partitions[:MAX_PARTITIONS]),
        partitions_truncated=len(partitions) > MAX_PARTITIONS
        or any(s.partitions_truncated for s in done),
        seconds=max((s.seconds or 0.0 for s in done), default=0.0),
        start_time=min(starts) if starts else None,
        completion_time=max(ends) if ends else None,
        error=error,
        shards=tuple(lines),
    )
