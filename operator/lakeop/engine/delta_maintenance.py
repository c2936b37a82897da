"""Maintenance of a ``format: delta`` table, through delta-rs.

- **Compaction**: the partitions are picked by the same rule as for parquet
  (:func:`lakeop.core.lake.maintenance.plan_compaction`: at least ``minInputFiles`` files
  under 75% of the target) and rewritten by delta-rs ``optimize.compact``: when they are all
  the partitions delta-rs would rewrite anyway (two or more files under the target), by one
  call, so **one Delta commit** removes the small files of all of them and adds the
  rewritten ones (``dataChange: false``); else one call (and commit) per partition, with
  that partition as its filter. delta-rs checks the commit against commits
  that landed meanwhile: appends go through, a commit that removed one of its inputs (an
  overwrite) makes it fail, and nothing is resurrected. Files keep the table's Delta schema
  (a Delta table evolves as a whole, so there are no files of older versions to upgrade).
  delta-rs does *not* refuse an OPTIMIZE whose inputs a concurrent OPTIMIZE already
  rewrote (both commits land, each rewrite live: every row twice), so compactions of one
  table take its compaction lock (:mod:`lakeop.engine.table_lock`) and run one at a time.
- **Expiry**: ``VACUUM`` with ``retention.snapshots`` (files no version inside the retention
  references, by delta-rs's rule), never under ``MIN_VACUUM_HOURS``: a run writes its Delta
  files in place before its commit names them, and a vacuum shorter than a run would delete
  them. A *full* vacuum: besides the files removed from the table, the files no version
  names (a killed attempt's, a losing racer's that could not remove its own) once older
  than the retention. Quarantined records expire as for parquet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakeop.core.lake.inputs import LeaseTerms
from lakeop.core.lake.maintenance import LiveFile, PartitionRewrite, plan_compaction
from lakeop.engine.compaction import CompactionPolicy, CompactionResult
from lakeop.engine.expiry import ExpiryResult, expire_rejected
from lakeop.engine.formats.delta import DeltaFormat, _values
from lakeop.engine.notes import say as _say
from lakeop.engine.table_lock import TableLock
from lakeop.errors import CommitConflictError, LakeopError
from lakeop.storage import Storage

#: how long a compaction waits for another one that holds the table (renewing its lease)
LOCK_WAIT_S = 3600.0
#: the shortest VACUUM retention lakeop runs (a run writes in place for up to this long)
MIN_VACUUM_HOURS = 6


def compact_delta(
    storage: Storage,
    policy: CompactionPolicy,
    run_id: str,
    lock_terms: LeaseTerms,
    *,
    clock: Callable[[], float] = time.time,
    progress: TextIO | None = None,
) -> CompactionResult:
    """Compact the table under its compaction lock (:class:`TableLock`): delta-rs raises no
    conflict between two OPTIMIZEs of the same files, so two at once would keep both
    rewrites live. The lock is checked before each OPTIMIZE commit."""
    with TableLock(
        storage, "compaction", run_id, lock_terms, wait_s=LOCK_WAIT_S, progress=progress
    ) as lock:
        return _compact(storage, policy, run_id, lock=lock, clock=clock, progress=progress)


def _compact(
    storage: Storage,
    policy: CompactionPolicy,
    run_id: str,
    *,
    lock: TableLock,
    clock: Callable[[], float],
    progress: TextIO | None,
) -> CompactionResult:
    t0 = clock()
    fmt = DeltaFormat(storage)
    table = fmt._require()
    live = fmt.live_files()
    files = [LiveFile(p, f.partition, f.rows, f.bytes, 0) for p, f in live.items()]
    rewrites = plan_compaction(files, policy.target_file_size_bytes, policy.min_input_files, 0)
    result = CompactionResult(run_id)
    if not rewrites:
        _say(progress, "lakeop compact: no partition needs compaction")
    if rewrites and _all_candidates(files, rewrites, policy.target_file_size_bytes):
        # delta-rs would rewrite no other partition: one optimize, one commit for them all
        _say(
            progress,
            f"lakeop compact: [1/1] {len(rewrites)} partitions: "
            f"{sum(len(rw.inputs) for rw in rewrites)} files, "
            f"{sum(rw.bytes for rw in rewrites)} bytes",
        )
        lock.check()
        metrics = _optimize(table, storage, None, policy, "all partitions")
        result.partitions = [rw.partition for rw in rewrites]
        result.files_before = int(metrics.get("numFilesRemoved", 0))
        result.files_after = int(metrics.get("numFilesAdded", 0))
        result.bytes_before = sum(rw.bytes for rw in rewrites)
        result.rows = sum(rw.rows for rw in rewrites)
        table.update_incremental()
        rewrites = []
    for i, rw in enumerate(rewrites, 1):
        _say(
            progress,
            f"lakeop compact: [{i}/{len(rewrites)}] {rw.partition or '(unpartitioned)'}: "
            f"{len(rw.inputs)} files, {rw.bytes} bytes",
        )
        filters = [(k, "=", v) for k, v in _values(rw.partition).items() if v is not None]
        lock.check()
        metrics = _optimize(table, storage, filters or None, policy, rw.partition)
        result.partitions.append(rw.partition)
        result.files_before += int(metrics.get("numFilesRemoved", 0))
        result.files_after += int(metrics.get("numFilesAdded", 0))
        result.bytes_before += rw.bytes
        result.rows += rw.rows
        table.update_incremental()
    done = set(result.partitions)
    after = DeltaFormat(storage).live_files().values()
    result.bytes_after = sum(f.bytes for f in after if f.partition in done)
    result.seq = table.version() if done else 0
    result.attempts = 1
    result.seconds = clock() - t0
    return result


def _all_candidates(
    files: list[LiveFile], rewrites: list[PartitionRewrite], target_bytes: int
) -> bool:
    """Whether the planned partitions are all those in which delta-rs's own rule (two or
    more files under the target size) would rewrite anything."""
    under: dict[str, int] = {}
    for f in files:
        if f.bytes < target_bytes:
            under[f.partition] = under.get(f.partition, 0) + 1
    wanted = {p for p, n in under.items() if n >= 2}
    return wanted <= {rw.partition for rw in rewrites}


def _optimize(
    table: DeltaTable,
    storage: Storage,
    filters: list[tuple[str, str, Any]] | None,
    policy: CompactionPolicy,
    what: str,
) -> dict[str, Any]:
    try:
        return dict(
            table.optimize.compact(
                partition_filters=filters, target_size=policy.target_file_size_bytes
            )
        )
    except DeltaError as e:
        raise CommitConflictError(f"delta table {storage.url}: compaction of {what}: {e}") from e


def expire_delta(
    storage: Storage,
    snapshot_retention_s: float,
    rejected_retention_s: float,
    *,
    clock: Callable[[], float] = time.time,
    progress: TextIO | None = None,
) -> ExpiryResult:
    t0 = clock()
    table = DeltaFormat(storage)._require()
    hours = max(MIN_VACUUM_HOURS, int(snapshot_retention_s // 3600))
    result = ExpiryResult()
    try:
        sizes = {e.path: e.size for e in storage.list_files("")}
        deleted = table.vacuum(
            retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True
        )
    except DeltaError as e:
        raise LakeopError(f"delta table {storage.url}: vacuum: {e}") from e
    _say(progress, f"lakeop expire: vacuum (retention {hours} h): {len(deleted)} files")
    result.files_deleted = len(deleted)
    result.bytes_freed = sum(sizes.get(_relative(storage, p), 0) for p in deleted)
    expire_rejected(storage, int(t0 * 1000), rejected_retention_s, result, progress)
    result.seconds = clock() - t0
    return result


def _relative(storage: Storage, path: str) -> str:
    for root in (storage.root, storage.url):
        if root and path.startswith(root.rstrip("/") + "/"):
            return path[len(root.rstrip("/")) + 1 :]
    return path
