"""Reading single Delta commits, so that a run-id lookup and the snapshot's time never read
the whole history.

A run's application transaction (``txn``, app id ``lakeop-run-<run id>``) is part of every
snapshot (delta-rs keeps it through checkpoints), and its ``version`` is the Delta version
the run expected to commit as: the version it read plus one. delta-rs retries a commit over
concurrent commits that do not conflict, so the run's commit is that version or a later
one (at most ``max_commit_retries`` later). The lookup reads the commit files from there
on until the one with the run's record: a few files, however long the history is. (Tables
written before this rule carry version 1 and are found by the same forward scan.)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace
from typing import Any

from deltalake import DeltaTable

from lakeop.engine.commits import Commit
from lakeop.engine.formats.base import Snapshot
from lakeop.errors import TransientError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

#: the commitInfo key holding the run's lakeop record
METADATA_KEY = "lakeop"
APP_PREFIX = "lakeop-run-"
LOG_DIR = "_delta_log"


def app_id(run_id: str) -> str:
    """The application-transaction id of a run."""
    return f"{APP_PREFIX}{run_id}"


def commit_info(storage: Storage, version: int) -> dict[str, Any] | None:
    """The ``commitInfo`` of Delta version ``version`` (one log file), None if absent."""
    raw = storage.read_bytes(f"{LOG_DIR}/{version:020d}.json")
    if raw is None:
        return None
    for line in raw.decode().splitlines():
        if '"commitInfo"' not in line:
            continue
        action = json.loads(line)
        if isinstance(action, dict) and isinstance(action.get("commitInfo"), dict):
            return dict(action["commitInfo"])
    return {}


def record_of(info: dict[str, Any], version: int) -> Commit | None:
    """The lakeop record a commit's ``commitInfo`` carries (None: not a lakeop run)."""
    raw = info.get(METADATA_KEY)
    if not isinstance(raw, str):
        return None
    try:
        commit = Commit.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        logger.warning("delta version %s: unreadable lakeop record", version)
        return None
    return replace(commit, seq=version)


def find_run(storage: Storage, table: DeltaTable, run_id: str) -> Commit | None:
    """The commit of ``run_id`` in ``table``'s snapshot: its ``txn`` says whether and from
    which version on; the commit files from there say which (see the module's text)."""
    expected = table.transaction_version(app_id(run_id))
    if expected is None:
        return None
    last = table.version()
    for version in range(max(int(expected), 0), last + 1):
        info = commit_info(storage, version)
        commit = None if info is None else record_of(info, version)
        if commit is not None and commit.run_id == run_id:
            return commit
    raise TransientError(f"run {run_id}: its Delta transaction exists but its record is missing")


def records(table: DeltaTable) -> list[Commit]:
    """The lakeop records of every commit, oldest first (the claims read every run's
    sources): the whole history, unlike :func:`find_run`."""
    out = []
    for entry in reversed(table.history()):
        commit = record_of(entry, int(entry.get("version", 0)))
        if commit is not None:
            out.append(commit)
    return out


def snapshot_of(storage: Storage, table: DeltaTable) -> Snapshot:
    """The current version and its commit time (the version's own commit file)."""
    version = table.version()
    info = commit_info(storage, version) or {}
    ms = int(info.get("timestamp") or 0)
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Snapshot(str(version), when)
