"""Orphan data files of an Iceberg table: files a killed or losing attempt wrote in place and
no snapshot names.

lakeop writes an Iceberg run's files at their final names (``part-<run id>-<attempt>-N``)
before the snapshot that names them, so an attempt killed before its commit leaves files no
reader ever sees. A same-run attempt that loses the commit race drops its own files at once;
what a killed attempt left is swept by the next run's recovery, once it is certain no
commit can still name it:

- no snapshot of the table (current or older: files an overwrite replaced stay for time
  travel) references the file;
- it is not the current run's (its other attempts may still commit it);
- no live run claims it: a run's start marker (``_lakeop/staging/<run>.started``, written
  before its first file and removed only after its commit) is younger than
  :data:`~lakeop.engine.publish.STALE_MS`;
- the file itself is older than that too (a run whose marker is gone has committed, or died).

The order of the reads makes the sweep safe against a commit running beside it: files are
listed first, then the markers, and the snapshots last, so a run that commits in between
either is in the snapshots read or still had its marker when the markers were read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from pyiceberg.table import Table

from lakeop.core.constants import META_DIR
from lakeop.engine.commitlog import STAGING_DIR
from lakeop.engine.publish import STALE_MS, marker_path
from lakeop.storage import FileEntry, Storage

logger = logging.getLogger(__name__)

MARKER_SUFFIX = ".started"


def referenced(table: Table, location: str) -> set[str]:
    """Every data file any snapshot of ``table`` reads, relative to ``location``."""
    seen_manifests: set[str] = set()
    out: set[str] = set()
    for snap in table.metadata.snapshots:
        for m in snap.manifests(table.io):
            if m.manifest_path in seen_manifests:
                continue
            seen_manifests.add(m.manifest_path)
            for e in m.fetch_manifest_entry(table.io, discard_deleted=True):
                path = str(e.data_file.file_path)
                out.add(path[len(location) + 1 :] if path.startswith(location + "/") else path)
    return out


def orphans(
    files: Iterable[FileEntry],
    live_runs: Iterable[str],
    named: set[str],
    current_run: str,
    now_ms: int,
) -> list[str]:
    """The data files among ``files`` that no snapshot names (``named``), no live run
    (``live_runs``, the current one included) can still commit, older than STALE_MS."""
    prefixes = tuple(f"part-{r}-" for r in {*live_runs, current_run})
    out = []
    for f in files:
        name = f.path.rsplit("/", 1)[-1]
        if not name.endswith(".parquet") or f.path.startswith((f"{META_DIR}/", "metadata/")):
            continue
        if f.path in named or name.startswith(prefixes):
            continue
        if f.mtime_ns is None or now_ms - f.mtime_ns // 1_000_000 <= STALE_MS:
            continue
        out.append(f.path)
    return sorted(out)


def sweep(
    storage: Storage,
    load: Callable[[], Table | None],
    location: str,
    current_run: str,
    now_ms: int,
) -> list[str]:
    """Delete the table's orphan data files (and dead runs' start markers); what it did.
    ``load``: returns the table, freshly loaded from its catalog (None: no table yet)."""
    files = storage.list_files("")
    markers = [
        f for f in files if f.path.startswith(f"{STAGING_DIR}/") and f.path.endswith(MARKER_SUFFIX)
    ]
    live: list[str] = []
    dead: list[str] = []
    for m in markers:
        run = m.path[len(STAGING_DIR) + 1 : -len(MARKER_SUFFIX)]
        fresh = m.mtime_ns is not None and now_ms - m.mtime_ns // 1_000_000 <= STALE_MS
        (live if fresh or run == current_run else dead).append(run)
    table = load()
    if table is None:
        return []
    gone = orphans(files, live, referenced(table, location), current_run, now_ms)
    actions = []
    for path in gone:
        try:
            storage.delete(path)
            actions.append(f"removed orphan data file {path}")
        except OSError as e:
            logger.info("could not remove orphan %s: %s", path, e)
    for run in dead:
        storage.delete(marker_path(run))
    for a in actions:
        logger.info("recovery: %s", a)
    return actions
