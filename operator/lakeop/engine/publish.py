"""Publishing committed files into the partition directories, and cleaning up leftovers.

Publishing is idempotent roll-forward: it moves whatever staged files of a committed run are
still staged, deletes the files an overwrite replaced and the quarantined records of the
run's other attempts, and finally removes the run's staging directory. The staging directory
existing for a committed run is how a later run knows the publish was interrupted. Staging
directories without a commit belong to runs that died (or are still running): other runs
remove one once its marker is older than the staleness limit; the run's own retry leaves it
(another attempt of the run may still be writing there), and the run's publish removes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Protocol

from lakeop.engine.commitlog import STAGING_DIR
from lakeop.engine.commits import Commit
from lakeop.engine.write import remove_rejected
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

STALE_MS = 6 * 3600 * 1000
STAGED_SUFFIX = ".staged"
RETIRED_DIR = "_lakeop/retired"
RETIRED_SUFFIX = ".retired"


def staged_path(run_id: str, final: str) -> str:
    return f"{STAGING_DIR}/{run_id}/{final}{STAGED_SUFFIX}"


def retired_dir(commit: Commit) -> str:
    """Where the files ``commit`` removed wait for expiry (``lakeop expire``)."""
    return f"{RETIRED_DIR}/{commit.name.removesuffix('.json')}"


def retired_path(commit: Commit, path: str) -> str:
    """A removed file's name until expiry: under ``_lakeop/`` and not ``*.parquet``, so
    neither DuckDB's glob nor pyarrow's dataset discovery reads it."""
    return f"{retired_dir(commit)}/{path}{RETIRED_SUFFIX}"


def marker_path(run_id: str) -> str:
    return f"{STAGING_DIR}/{run_id}.started"


def write_marker(storage: Storage, run_id: str, now_ms: int) -> None:
    body = json.dumps({"runId": run_id, "startedMs": now_ms}).encode()
    storage.write_bytes(marker_path(run_id), body)


def publish(storage: Storage, commit: Commit) -> None:
    staged = {e.path for e in storage.list_files(f"{STAGING_DIR}/{commit.run_id}")}
    for f in commit.files:
        src = staged_path(commit.run_id, f.path)
        if src in staged:
            try:
                storage.move(src, f.path)
            except FileNotFoundError:  # another pod of a scaled-out run published it
                if not storage.exists(f.path):
                    raise
    for path in commit.removed:  # moved aside: readers pinned to older snapshots find them
        if not storage.exists(path):
            continue  # retired already (a concurrent or earlier publisher)
        with contextlib.suppress(FileNotFoundError):  # a concurrent publisher moved it
            storage.move(path, retired_path(commit, path))
    if commit.quarantine is not None:  # other attempts' quarantined records are not the run's
        remove_rejected(storage, commit.run_id, keep=commit.quarantine)
    mine = {staged_path(commit.run_id, f.path) for f in commit.files}
    if any(p.endswith(STAGED_SUFFIX) and p not in mine for p in staged):
        logger.info(
            "recovery: removed uncommitted files of run %s (another attempt of the run)",
            commit.run_id,
        )
    storage.delete_dir(f"{STAGING_DIR}/{commit.run_id}")
    storage.delete(marker_path(commit.run_id))


class _Log(Protocol):
    def commits(self) -> list[Commit]: ...


def recover(
    storage: Storage,
    log: _Log,
    current_run: str,
    now_ms: int,
    finish: Callable[[Storage, Commit], None] | None = None,
) -> list[str]:
    """Finish interrupted publishes and drop dead runs' staging; returns what it did.

    The current run's own staging directory is never removed here: other processes with
    the same run id may be writing into it (the other shares of a scaled-out run, a zombie
    pod overlapping its retry). Each attempt names its files apart, and drops only its own
    on failure; publishing the run's commit removes the whole directory. ``finish``: how a
    committed run is published (default :func:`publish`; a format that writes in place
    passes its own).
    """
    finish = finish or publish
    actions: list[str] = []
    runs = storage.list_dirs(STAGING_DIR)
    if not runs:
        return actions
    committed = {c.run_id: c for c in log.commits()}
    for run in runs:
        if run in committed:
            finish(storage, committed[run])
            actions.append(f"published interrupted commit of run {run}")
        elif run == current_run:
            continue  # an earlier attempt's files, or a live one's: publish drops them
        elif run == current_run or _stale(storage, run, now_ms):
            storage.delete_dir(f"{STAGING_DIR}/{run}")
            storage.delete(marker_path(run))
            remove_rejected(storage, run)
            actions.append(f"removed uncommitted files of run {run}")
    for a in actions:
        logger.info("recovery: %s", a)
    return actions


def _stale(storage: Storage, run: str, now_ms: int) -> bool:
    data = storage.read_bytes(marker_path(run))
    if data is None:
        return True
    try:
        started = int(json.loads(data)["startedMs"])
    except (ValueError, KeyError, TypeError):
        return True
    return now_ms - started > STALE_MS
