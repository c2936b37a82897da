"""lakeop's records of expired Iceberg snapshots.

A run's record (its sources, watermark and counters) lives in its snapshot's summary
(:mod:`lakeop.engine.formats.iceberg_catalog`). Expiring a snapshot would drop the record
with it, and a file-source job would then take files it already ingested for new ones. So
the expiry (:mod:`lakeop.engine.iceberg_maintenance`) first writes the records of the
snapshots it expires to ``_lakeop/iceberg-records/<expiry run>.json`` under the location,
and :func:`with_archived` puts them back in front of the live snapshots' records.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from lakeop.engine.commits import Commit
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

ARCHIVE_DIR = "_lakeop/iceberg-records"


def archive(storage: Storage, name: str, commits: list[Commit]) -> None:
    """Keep ``commits`` (records of snapshots about to be expired) under ``name``."""
    if not commits:
        return
    body = json.dumps([c.to_dict() | {"seq": c.seq} for c in commits], default=str).encode()
    storage.write_bytes_atomic(f"{ARCHIVE_DIR}/{name}.json", body)


def archived(storage: Storage) -> list[Commit]:
    out: list[Commit] = []
    for entry in storage.list_files(ARCHIVE_DIR):
        if not entry.path.endswith(".json"):
            continue
        raw = storage.read_bytes(entry.path)
        if raw is None:
            continue
        try:
            for d in json.loads(raw):
                out.append(replace(Commit.from_dict(d), seq=int(d.get("seq") or 0)))
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable archived records %s", entry.path)
    return out


def with_archived(storage: Storage, live: list[Commit]) -> list[Commit]:
    """The archived records not among ``live`` (by run id), then ``live``, in commit order."""
    have = {c.run_id for c in live}
    old = [c for c in archived(storage) if c.run_id not in have]
    if not old:
        return live
    seen: set[str] = set()
    first = []
    for c in sorted(old, key=lambda c: (c.seq, c.committed_ms)):
        if c.run_id not in seen:
            seen.add(c.run_id)
            first.append(c)
    return first + live
