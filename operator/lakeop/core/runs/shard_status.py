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

from lakeop.core.lake.sharding import TOTAL_KEYS

#: the annotation the Job controller puts on each pod of an Indexed Job
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
#: the run summary keeps at most this many partitions (it ends up in a status object)
MAX_PARTITIONS = 100


@dataclass(frozen=True)
class ShareAttempt:
    """The latest pod of one share: its phase and the summary it left (if any)."""

    index: int
    phase: str  # the pod's phase: Pending, Running, Succeeded, Failed
    summary: Mapping[str, Any] | None = None


def share_state(attempt: ShareAttempt | None) -> dict[str, Any]:
    if attempt is None:
        return {"state": "Pending"}
    summary = attempt.summary or {}
    if attempt.phase == "Succeeded" and not summary.get("error"):
        return {"state": "Done", "rowsWritten": int(summary.get("rowsWritten") or 0)}
    if attempt.phase == "Failed" or summary.get("error"):
        return {"state": "Failed"}
    return {"state": "Running" if attempt.phase == "Running" else "Pending"}


def shard_lines(attempts: Mapping[int, ShareAttempt], count: int) -> list[dict[str, Any]]:
    """``status.*.shards``: one line per share, in index order."""
    return [{"index": i, **share_state(attempts.get(i))} for i in range(count)]


def combine(
    attempts: Mapping[int, ShareAttempt], count: int, *, failed_first: Sequence[int] = ()
) -> dict[str, Any] | None:
    """One run summary for the whole run (None when no share left a summary).

    Counters are summed over the shares that are Done; the error is the first failed share's
    (``failed_first`` lets the caller say which failed share to report first).
    """
    summaries = {i: a.summary for i, a in attempts.items() if a.summary}
    if not summaries:
        return None
    lines = shard_lines(attempts, count)
    done = [summaries[line["index"]] for line in lines if line["state"] == "Done"]
    out: dict[str, Any] = dict.fromkeys(TOTAL_KEYS, 0)
    for summary in done:
        for key in TOTAL_KEYS:
            out[key] += int(summary.get(key) or 0)
    first = next(iter(summaries.values()))
    for key in ("runId", "table", "schemaVersion"):
        if key in first:
            out[key] = first[key]
    partitions = sorted({p for s in done for p in s.get("partitions") or []})
    out["partitions"] = partitions[:MAX_PARTITIONS]
    out["partitionsTruncated"] = len(partitions) > MAX_PARTITIONS or any(
        s.get("partitionsTruncated") for s in done
    )
    starts = [str(s["startTime"]) for s in summaries.values() if s.get("startTime")]
    ends = [str(s["completionTime"]) for s in done if s.get("completionTime")]
    if starts:
        out["startTime"] = min(starts)
    if ends:
        out["completionTime"] = max(ends)
    out["seconds"] = max((float(s.get("seconds") or 0.0) for s in done), default=0.0)
    errors = [
        (i, s["error"])
        for i, s in sorted(summaries.items(), key=lambda kv: (kv[0] not in failed_first, kv[0]))
        if s.get("error") and share_state(attempts[i])["state"] == "Failed"
    ]
    out["error"] = None
    if errors:
        index, error = errors[0]
        out["error"] = {
            "reason": str(error.get("reason") or "Failed"),
            "message": f"share {index}: {error.get('message') or ''}".strip(),
        }
    out["shards"] = lines
    return out
