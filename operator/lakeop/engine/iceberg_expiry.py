"""Expiry of a ``format: iceberg`` table: old snapshots, then the files none still names.

1. **Snapshots.** A snapshot stays readable for ``retention.snapshots`` after it stopped
   being current (the same rule as a parquet table's replaced files,
   :func:`lakeop.core.lake.maintenance.expired_removals`): it is expired once the snapshot
   that followed it is older than the retention; the current snapshot (and any branch or
   tag head) never is. The lakeop records of the expired snapshots are archived first
   (:mod:`lakeop.engine.formats.iceberg_archive`), so runs keep seeing what earlier runs
   ingested. The removal is one metadata commit (pyiceberg's ``expire_snapshots``), retried
   on a lost race.
2. **Orphans.** Then every file under the location that no remaining snapshot reaches (its
   live data files, its manifests, its manifest list, the current and logged metadata files)
   and older than the retention is deleted, never younger than ``MIN_ORPHAN_HOURS``: a run
   writes its data files in place before its snapshot names them, and a compaction its
   outputs. lakeop's own ``_lakeop/`` (catalog, claims, staging) is never touched.
3. ``_rejected/<run>/`` directories past ``retention.rejectedRecords``, as for parquet.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import TextIO

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from sqlalchemy.exc import OperationalError

from lakeop.engine.commitlog import REJECTED_DIR
from lakeop.engine.expiry import ExpiryResult, expire_rejected
from lakeop.engine.formats.iceberg import COMMIT_ATTEMPTS, IcebergFormat
from lakeop.engine.formats.iceberg_archive import archive
from lakeop.engine.formats.iceberg_catalog import record_of
from lakeop.engine.notes import say as _say
from lakeop.errors import TransientError

logger = logging.getLogger(__name__)

#: the youngest unreferenced file lakeop deletes (a run writes in place for up to this long)
MIN_ORPHAN_HOURS = 6
#: lakeop's own files and the quarantined records: never orphans of the Iceberg table
NOT_TABLE_FILES = ("_lakeop/", f"{REJECTED_DIR}/")


def expired_snapshot_ids(table: Table, cutoff_ms: int) -> list[int]:
    """Snapshots that stopped being current before ``cutoff_ms`` (not a ref's head)."""
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    snaps = sorted(table.metadata.snapshots, key=lambda s: (s.sequence_number or 0, s.timestamp_ms))
    out = []
    for s, successor in itertools.pairwise(snaps):
        if s.snapshot_id not in protected and successor.timestamp_ms < cutoff_ms:
            out.append(s.snapshot_id)
    return out


def referenced(table: Table) -> set[str]:
    """Every file a remaining snapshot or the metadata reaches (full paths)."""
    out = {str(table.metadata_location)}
    out |= {e.metadata_file for e in table.metadata.metadata_log}
    for s in table.metadata.snapshots:
        out.add(s.manifest_list)
        for m in s.manifests(table.io):
            out.add(m.manifest_path)
            for e in m.fetch_manifest_entry(table.io, discard_deleted=True):
                out.add(str(e.data_file.file_path))
    for st in table.metadata.statistics:
        out.add(st.statistics_path)
    return out


def expire_iceberg(
    fmt: IcebergFormat,
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
    table = _expire_snapshots(fmt, now_ms - int(snapshot_retention_s * 1000), run_id, result)
    if result.commits_expired:
        _say(progress, f"lakeop expire: {len(result.commits_expired)} snapshots expired")
    orphan_s = max(snapshot_retention_s, MIN_ORPHAN_HOURS * 3600)
    _delete_orphans(fmt, table, now_ms - int(orphan_s * 1000), result, progress)
    expire_rejected(fmt.storage, now_ms, rejected_retention_s, result, progress)
    result.seconds = clock() - t0
    return result


def _expire_snapshots(
    fmt: IcebergFormat, cutoff_ms: int, run_id: str, result: ExpiryResult
) -> Table:
    for attempt in range(COMMIT_ATTEMPTS):
        table = fmt._no_library_retry(fmt._require())
        ids = expired_snapshot_ids(table, cutoff_ms)
        if not ids:
            return table
        by_id = {s.snapshot_id: s for s in table.metadata.snapshots}
        records = [r for r in (record_of(by_id[i]) for i in ids) if r is not None]
        archive(fmt.storage, f"{run_id}-{min(ids)}-{len(ids)}", records)
        try:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
        except (CommitFailedException, OperationalError) as e:
            logger.info("iceberg expiry %s lost a race (%s); reloading", run_id, e)
            time.sleep(random.uniform(0.01, 0.05 * min(attempt + 1, 10)))
            continue
        result.commits_expired = [int(r.seq) for r in records]
        return fmt._require()
    raise TransientError(f"iceberg expiry {run_id}: still losing races after {COMMIT_ATTEMPTS}")


def _delete_orphans(
    fmt: IcebergFormat,
    table: Table,
    cutoff_ms: int,
    result: ExpiryResult,
    progress: TextIO | None,
) -> None:
    storage = fmt.storage
    keep = {_relative(fmt.location, p) for p in referenced(table)}
    orphans = []
    for e in storage.list_files(""):
        if e.path in keep or e.path.startswith(NOT_TABLE_FILES):
            continue
        if e.mtime_ns is None or e.mtime_ns // 1_000_000 >= cutoff_ms:
            continue  # undatable or young: maybe a run's file its snapshot will name
        orphans.append(e)
    if not orphans:
        return
    # the table again: a snapshot committed since the listing may name one of them
    fresh = fmt._require()
    if fresh.metadata_location != table.metadata_location:
        keep |= {_relative(fmt.location, p) for p in referenced(fresh)}
    for e in orphans:
        if e.path in keep:
            continue
        storage.delete(e.path)
        result.files_deleted += 1
        result.bytes_freed += e.size
    _say(
        progress,
        f"lakeop expire: {result.files_deleted} unreferenced files older than "
        f"{dt.datetime.fromtimestamp(cutoff_ms / 1000, dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
    )


def _relative(location: str, path: str) -> str:
    for root in {location, location.replace("file://", "file:", 1)}:
        if path.startswith(root.rstrip("/") + "/"):
            return path[len(root.rstrip("/")) + 1 :]
    return path


__all__ = ["MIN_ORPHAN_HOURS", "expire_iceberg", "expired_snapshot_ids", "referenced"]
