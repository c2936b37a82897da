"""What the operator itself does to a table's storage: create it, describe it, total it, delete it.

Runs write data; the operator only prepares a location (a local directory or an S3 prefix),
writes the table descriptor ``_lakeop/table.json`` there, reads committed totals through the
engine's commit log, releases the input claims of runs that ended without committing, and
removes everything under ``deletionPolicy: Delete``. Storage calls
block (pyarrow filesystems), so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from lakeop.core.constants import DESCRIPTOR_FILE, META_DIR, STORAGE_ENV_PREFIX
from lakeop.core.lake.maintenance import SMALL_SHARE
from lakeop.core.runs.plan import PlanTable
from lakeop.core.runs.summary import RunSummary
from lakeop.engine.claims import release
from lakeop.engine.formats import detect, table_status
from lakeop.engine.formats.ensure import ensure_table
from lakeop.engine.run_result import committed_summary
from lakeop.storage import open_storage


def _prepare(location: str, storage_env: Mapping[str, str], descriptor: Mapping[str, Any]) -> None:
    storage = open_storage(location, storage_env, STORAGE_ENV_PREFIX)
    storage.make_dirs(META_DIR)
    body = json.dumps(dict(descriptor), indent=2, sort_keys=True).encode()
    if storage.read_bytes(f"{META_DIR}/{DESCRIPTOR_FILE}") != body:
        storage.write_bytes_atomic(f"{META_DIR}/{DESCRIPTOR_FILE}", body)


def _delete(location: str, storage_env: Mapping[str, str]) -> bool:
    """The table format removes its table (a Delta table: data files and ``_delta_log``)."""
    return detect(open_storage(location, storage_env, STORAGE_ENV_PREFIX)).delete()


async def prepare_location(
    location: str, storage_env: Mapping[str, str], descriptor: Mapping[str, Any]
) -> None:
    """Create the location and (re)write its descriptor when it changed; idempotent."""
    await asyncio.to_thread(_prepare, location, storage_env, descriptor)


async def delete_location(location: str, storage_env: Mapping[str, str]) -> bool:
    """Remove the table's data and metadata; False when nothing was there."""
    return await asyncio.to_thread(_delete, location, storage_env)


async def totals(
    location: str,
    storage_env: Mapping[str, str],
    table_format: str | None = None,
    target_file_bytes: int | None = None,
    table: PlanTable | None = None,
) -> dict[str, Any]:
    """Committed totals (rows, files, bytes, partitions, lastCommitTime) and the current
    ``snapshot``, from the table format's log (``table_format`` None: told from the files);
    with the table's compaction target also ``smallFiles`` (under 75% of it)."""
    small = None if target_file_bytes is None else SMALL_SHARE * target_file_bytes
    return dict(
        await asyncio.to_thread(
            lambda: table_status(
                location, storage_env, STORAGE_ENV_PREFIX, table_format, small, table=table
            )
        )
    )


async def ensure(
    table: PlanTable, fields: Sequence[Mapping[str, Any]], storage_env: Mapping[str, str]
) -> None:
    """Create (or evolve) the table for an Accepted schema before any run (format: iceberg)."""
    await asyncio.to_thread(ensure_table, table, fields, storage_env, STORAGE_ENV_PREFIX)


async def release_claims(
    location: str, storage_env: Mapping[str, str], job: str, run_id: str
) -> bool:
    """Free the inputs run ``run_id`` of IngestionJob ``job`` claimed (it ended uncommitted)."""
    return await asyncio.to_thread(release, location, storage_env, STORAGE_ENV_PREFIX, job, run_id)


async def commit_of(
    location: str, storage_env: Mapping[str, str], run_id: str, table: str
) -> RunSummary | None:
    """The summary of run ``run_id`` from its commit, None if it never committed."""
    return await asyncio.to_thread(
        committed_summary, location, storage_env, STORAGE_ENV_PREFIX, run_id, table
    )
