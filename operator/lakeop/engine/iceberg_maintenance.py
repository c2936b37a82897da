"""Compaction of a ``format: iceberg`` table: one replace snapshot per compaction.

pyiceberg has no ``rewrite_data_files``; this is lakeop's. The partitions are picked by the
rule of every format (:func:`lakeop.core.lake.maintenance.plan_compaction`: at least
``minInputFiles`` files under 75% of the target; in a partition it rewrites, files of older
schema versions are taken too). Each partition's inputs are streamed (the reader and the
rolling writer of :mod:`lakeop.engine.compaction`: never a whole partition in memory) into
files of about the target size, under the table's **current** Iceberg schema (columns by
name, with their field ids; columns added since an input was written read as null), written
at their final names in the partition's directory: no snapshot names them yet, so no reader
sees them.

The swap is **one snapshot** (an Iceberg overwrite that deletes exactly the input data
files and adds the new ones, ``lakeop.mode=compact`` in its record), committed with the
catalog's optimistic check (the metadata it read is still current). Before each attempt the
table is reloaded and every input must still be live: if an overwrite removed one
meanwhile, the compaction plans again from the table as it is now (``ATTEMPTS`` times, then
:class:`~lakeop.errors.CommitConflictError`), so it never brings back a removed row; appends
that landed in between are kept (only the inputs are deleted). A process killed before the
commit leaves unreferenced files, which expiry deletes as orphans; one killed after it left
the new snapshot, which a retry with the same run id finds and reports.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import _pyarrow_schema_ensure_small_types, schema_to_pyarrow
from pyiceberg.manifest import DataFile as IcebergDataFile
from pyiceberg.table import Table
from sqlalchemy.exc import OperationalError

from lakeop.core.lake.maintenance import LiveFile, PartitionRewrite, plan_compaction
from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.compaction import (
    COMPACTION_JOB,
    COMPACTION_MODE,
    CompactionPolicy,
    CompactionResult,
    _Roller,
    each_partition,
)
from lakeop.engine.compaction_reads import read_inputs
from lakeop.engine.formats.iceberg import COMMIT_ATTEMPTS, IcebergFormat
from lakeop.engine.formats.iceberg_catalog import PREFIX, record_of
from lakeop.engine.notes import say as _say
from lakeop.errors import CommitConflictError, TransientError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

#: plans made when an overwrite removed inputs between planning and the commit point
ATTEMPTS = 3


@dataclass(frozen=True)
class _Live:
    """A live data file: lakeop's view of it and the Iceberg entry a commit deletes."""

    file: LiveFile
    entry: IcebergDataFile


def live_entries(fmt: IcebergFormat, table: Table) -> dict[str, _Live]:
    """The current snapshot's data files by relative path, each with the schema version of
    the run whose snapshot added it (from that snapshot's lakeop record)."""
    snap = table.current_snapshot()
    if snap is None:
        return {}
    versions: dict[int, int] = {}
    for s in table.metadata.snapshots:
        record = record_of(s)
        versions[s.snapshot_id] = record.schema_version if record is not None else 0
    out: dict[str, _Live] = {}
    for m in snap.manifests(table.io):
        for e in m.fetch_manifest_entry(table.io, discard_deleted=True):
            f = fmt._data_file(e.data_file)
            version = versions.get(e.snapshot_id or 0, 0)
            live = LiveFile(f.path, f.partition, f.rows, f.bytes, version)
            out[f.path] = _Live(live, e.data_file)
    return out


def file_schema(table: Table) -> pa.Schema:
    """The table's current schema as its data files carry it (field ids, small types)."""
    return _pyarrow_schema_ensure_small_types(schema_to_pyarrow(table.schema()))


def compact_iceberg(
    fmt: IcebergFormat,
    schema_version: int,
    policy: CompactionPolicy,
    run_id: str,
    *,
    compression: str = "snappy",
    clock: Callable[[], float] = time.time,
    progress: TextIO | None = None,
) -> CompactionResult:
    t0 = clock()
    fmt.recover(run_id, int(t0 * 1000))  # a run's publish left unfinished completes first
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = _attempt(fmt, schema_version, policy, run_id, compression, clock, progress)
        except CommitConflictError as e:
            if attempt == ATTEMPTS:
                raise
            _say(progress, f"lakeop compact: {e}; planning again")
            continue
        result.attempts = attempt
        result.seconds = clock() - t0
        return result
    raise AssertionError("unreachable")


def _attempt(  # noqa: PLR0917
    fmt: IcebergFormat,
    schema_version: int,
    policy: CompactionPolicy,
    run_id: str,
    compression: str,
    clock: Callable[[], float],
    progress: TextIO | None,
) -> CompactionResult:
    result = CompactionResult(run_id)
    table = fmt._no_library_retry(fmt._require())
    previous = fmt._find(table, run_id)
    if previous is not None:  # a retry of a compaction that committed: report it
        return _filled(result, previous, {})
    live = live_entries(fmt, table)
    rewrites = plan_compaction(
        [x.file for x in live.values()],
        policy.target_file_size_bytes,
        policy.min_input_files,
        schema_version,
    )
    if not rewrites:
        _say(progress, "lakeop compact: no partition needs compaction")
        return result
    target = file_schema(table)
    tag = secrets.token_hex(3)  # a same-run racer never writes over this attempt's files
    written: list[DataFile] = []
    replaces: dict[str, list[str]] = {}
    rollers: list[_Roller] = []
    try:

        def work(rw: PartitionRewrite) -> list[tuple[DataFile, list[str]]]:
            out = _Roller(
                fmt.storage,
                f"{run_id}-{tag}",
                rw.partition,
                policy.target_file_size_bytes,
                compression,
                staged=False,
            )
            rollers.append(out)
            return _rewrite(fmt.storage, rw, target, out)

        for f, sources in (x for part in each_partition(rewrites, work, progress) for x in part):
            written.append(f)
            replaces[f.path] = sources
        now = clock()
        record = Commit(
            run_id=run_id,
            job=COMPACTION_JOB,
            committed_at=_iso(now),
            committed_ms=int(now * 1000),
            schema_version=schema_version,
            mode=COMPACTION_MODE,
            files=[],
            replaces=replaces,
        )
        inputs = sorted(f.path for rw in rewrites for f in rw.inputs)
        entry = _commit(fmt, table, record, inputs, written)
    except BaseException:
        _drop(fmt.storage, written, rollers)
        raise
    if not {f.path for f in entry.files} & {f.path for f in written}:
        _drop(fmt.storage, written, rollers)  # a process with this run id committed first
    return _filled(result, entry, {p: x.file.bytes for p, x in live.items()})


def _rewrite(
    storage: Storage, rw: PartitionRewrite, target: pa.Schema, out: _Roller
) -> list[tuple[DataFile, list[str]]]:
    try:
        for f, tables in read_inputs(storage, rw.inputs, {}):
            for t in tables:
                out.write(_conform(t, target), f.path)
        return out.close()
    except BaseException:
        out.abort()
        raise


def _conform(t: pa.Table, target: pa.Schema) -> pa.Table:
    """``t`` under the current schema: columns by name, in its order, missing ones null."""
    if t.schema.equals(target, check_metadata=True):
        return t
    cols = []
    for field in target:
        if field.name in t.schema.names:
            cols.append(t.column(field.name).cast(field.type))
        else:
            cols.append(pa.nulls(t.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=target)


def _commit(
    fmt: IcebergFormat,
    table: Table,
    record: Commit,
    inputs: list[str],
    written: list[DataFile],
) -> Commit:
    """The replace snapshot, retried on a lost race while every input is still live."""
    files = fmt._iceberg_files(table, written)
    props = {
        PREFIX + "run-id": record.run_id,
        PREFIX + "job": record.job,
        PREFIX + "schema-version": str(record.schema_version),
        PREFIX + "record": json.dumps(record.to_dict(), default=str, sort_keys=True),
    }
    for attempt in range(COMMIT_ATTEMPTS):
        if attempt:
            table = fmt._no_library_retry(fmt._require())
            found = fmt._find(table, record.run_id)
            if found is not None:  # a process with this run id committed first
                return found
        live = live_entries(fmt, table)
        gone = [p for p in inputs if p not in live]
        if gone:
            raise CommitConflictError(
                f"{len(gone)} input file(s) of compaction {record.run_id} were removed since "
                f"it started (an overwrite), e.g. {gone[0]}"
            )
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties=props).overwrite() as op:
            for p in inputs:
                op.delete_data_file(live[p].entry)
            for f in files:
                op.append_data_file(f)
        try:
            tx.commit_transaction()
        except (CommitFailedException, OperationalError) as e:
            logger.info("iceberg compaction %s lost a race (%s); reloading", record.run_id, e)
            time.sleep(random.uniform(0.01, 0.05 * min(attempt + 1, 10)))
            continue
        mine = fmt.find(record.run_id)
        if mine is None:
            raise TransientError(f"iceberg compaction {record.run_id}: not found after its commit")
        return replace_removed(mine, inputs)
    raise TransientError(
        f"iceberg compaction {record.run_id}: still losing races after {COMMIT_ATTEMPTS} attempts"
    )


def replace_removed(c: Commit, inputs: list[str]) -> Commit:
    c.removed = list(inputs)
    return c


def _filled(result: CompactionResult, c: Commit, sizes: dict[str, int]) -> CompactionResult:
    sources = sorted({s for srcs in c.replaces.values() for s in srcs})
    result.partitions = sorted({f.partition for f in c.files})
    result.files_before = len(c.removed or sources)
    result.files_after = len(c.files)
    result.bytes_before = sum(sizes.get(p, 0) for p in c.removed or sources)
    result.bytes_after = c.bytes
    result.rows = c.rows
    result.seq = c.seq
    return result


def _drop(storage: Storage, written: list[DataFile], rollers: list[_Roller]) -> None:
    """This attempt's files, none of which a snapshot names (its tag is in their names)."""
    paths = {f.path for f in written} | {f.path for r in rollers for f, _ in r.done}
    paths |= {r.path for r in rollers if r.path}
    for p in sorted(paths):
        try:
            storage.delete(p)
        except (OSError, TransientError) as e:
            logger.info("could not remove %s: %s", p, e)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


__all__ = ["compact_iceberg", "file_schema", "live_entries"]
