"""The end of an ingestion run: its commit, its publishing and a failed attempt's cleanup.

:func:`lakeop.engine.run.run_plan` writes the claimed input to staging; this module builds
the run's commit from what was written (one pod's, or the shares' manifests once every share
of a scaled-out run is complete), takes the commit point, publishes, and removes the
leftovers of an attempt that did not commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from lakeop.arrow import to_arrow_schema
from lakeop.core.lake.inputs import Claim
from lakeop.core.lake.partitioning import column_problem
from lakeop.core.runs.plan import RunPlan
from lakeop.core.timestamps import format_epoch
from lakeop.engine import claimlog, leases, shards
from lakeop.engine.commitlog import STAGING_DIR
from lakeop.engine.commits import Commit, DataFile, live_files
from lakeop.engine.formats import TableFormat
from lakeop.engine.partition import Partitioner, make_partitioner
from lakeop.engine.records import Pipeline
from lakeop.engine.run_result import RunResult, fill, fill_share
from lakeop.engine.watermarks import encode_watermark
from lakeop.engine.write import remove_rejected
from lakeop.errors import InvalidSpecError, LakeopError, TerminalError
from lakeop.sources.files import SourceFile
from lakeop.storage import Storage

logger = logging.getLogger(__name__)


def commit_once(  # noqa: PLR0917
    storage: Storage,
    log: TableFormat,
    commit: Commit,
    schema: pa.Schema,
    tag: str,
    result: RunResult,
    heartbeat: leases.Heartbeat,
) -> None:
    """The commit point, then publishing; ``result`` is the run's one commit, this
    attempt's or that of a process with the same run id that committed first."""
    try:
        winner, created = log.commit(commit, schema)
    except Exception:
        if not log.staged:  # written in place: drop them unless a commit names them
            drop_unnamed(storage, log, commit)
        raise
    if not created:  # this attempt's files are not part of the table: drop them
        discard(storage, commit.run_id, None, tag)
        if not log.staged:  # written in place (Delta): the winner's files have other names
            remove_files(storage, [f.path for f in commit.files])
        result.already_committed = True
    roll_forward(log, winner)
    heartbeat.compact(storage, commit.job, log.commits())
    fill(result, winner)


def drop_unnamed(storage: Storage, log: TableFormat, commit: Commit) -> None:
    """After a failed commit: remove this attempt's in-place files if the run's commit (if
    any) does not name them. When the table cannot be read, keep them (``VACUUM``)."""
    try:
        winner = log.find(commit.run_id)
    except (LakeopError, OSError) as e:
        logger.warning("run %s: its files stay for VACUUM (%s)", commit.run_id, e)
        return
    mine = {f.path for f in commit.files}
    if winner is None or not mine & {f.path for f in winner.files}:
        remove_files(storage, sorted(mine))


def remove_files(storage: Storage, paths: list[str]) -> None:
    """Remove an attempt's files that no commit names (failures: left for ``VACUUM``)."""
    for path in paths:
        try:
            storage.delete(path)
        except (LakeopError, OSError) as e:
            logger.warning("could not remove the unused file %s: %s", path, e)


def roll_forward(log: TableFormat, commit: Commit) -> None:
    """Publish a committed run. The run is committed whatever happens here: a failure is
    reported, and the run's retry or the next run on the table finishes the publishing."""
    try:
        log.publish(commit)
    except (LakeopError, OSError) as e:
        logger.warning(
            "run %s is committed (%s), but publishing its files was interrupted: %s; "
            "the next run on the table finishes it",
            commit.run_id,
            commit.name,
            e,
        )


def table_partitioner(plan: RunPlan, target: pa.Schema) -> Partitioner:
    """The table's partitioner, once its column is known to suit the strategy."""
    spec = plan.table.partitioning
    column = plan.schema.get(spec.column or "")
    problem = column_problem(spec, column.type.name if column is not None else None)
    if problem is not None:
        raise InvalidSpecError(f"partitioning.column {spec.column!r}: {problem}")
    return make_partitioner(
        spec,
        target.field(column.name).type if column is not None else None,
        iceberg=plan.table.format == "iceberg",
    )


def table_schema(plan: RunPlan) -> pa.Schema:
    """The written files' columns plus the partition columns (the table's full schema)."""
    target = to_arrow_schema(plan.schema)
    return pa.schema([*target, *table_partitioner(plan, target).keys])


def new_commit(  # noqa: PLR0917
    plan: RunPlan,
    commits: list[Commit],
    files: list[DataFile],
    now: float,
    pipeline: Pipeline,
    sources: list[SourceFile],
    claim: Claim,
) -> Commit:
    touched = {f.partition for f in files}
    removed: list[str] = []
    if plan.mode == "overwrite-partitions":
        removed = sorted(p for p, f in live_files(commits).items() if f.partition in touched)
    c = pipeline.counters
    return Commit(
        run_id=plan.run_id,
        job=plan.job,
        committed_at=format_epoch(now),
        committed_ms=int(now * 1000),
        schema_version=plan.schema_version,
        mode=plan.mode,
        files=files,
        removed=removed,
        sources=[s.to_dict() for s in sources],
        watermark=_watermark(claim),
        rows_read=c.rows_read,
        rows_rejected=c.rows_rejected,
        extra_columns=sorted(c.extra_columns),
    )


def _watermark(claim: Claim) -> Any:
    """The commit's watermark: the highest upper bound of the claimed intervals (encoded)."""
    if claim.sql is None or claim.sql.column is None:
        return None
    return encode_watermark(claim.sql.upper)


def holds_rows(claim: Claim) -> bool:
    """Whether a run that read nothing must still commit: its claim holds incremental
    intervals, which only a commit (or a release) settles."""
    return claim.sql is not None and claim.sql.column is not None and not claim.empty


def check_not_released(storage: Storage, plan: RunPlan, claim: Claim, tag: str) -> None:
    """Refuse to commit inputs that were given up: a later run may be reading them."""
    if claimlog.is_released(storage, plan.job, claim):
        discard(storage, plan.run_id, None, tag)
        raise TerminalError(
            f"run {plan.run_id}: its claim {claimlog.claim_path(plan.job, claim.seq)} was "
            "released (the run was given up), so it does not commit",
            reason="ClaimReleased",
        )


def share_manifest(
    attempt: int,
    files: list[DataFile],
    pipeline: Pipeline,
    sources: list[SourceFile],
    claim: Claim,
) -> dict[str, Any]:
    c = pipeline.counters
    return {
        "basis": claimlog.basis(claim),
        "claim": claim.seq,
        "attempt": attempt,
        "files": [asdict(f) for f in files],
        "sources": [s.to_dict() for s in sources],
        "watermark": _watermark(claim),
        "rowsRead": c.rows_read,
        "rowsRejected": c.rows_rejected,
        "extraColumns": sorted(c.extra_columns),
        "totals": shards.totals_of(files, c.rows_read, c.rows_rejected),
        "partitions": sorted({f.partition for f in files}),
    }


def complete_share(  # noqa: PLR0917
    plan: RunPlan,
    storage: Storage,
    log: TableFormat,
    claim: Claim,
    manifest: Mapping[str, Any],
    share: shards.Share,
    tag: str,
    result: RunResult,
    heartbeat: leases.Heartbeat,
) -> None:
    """After a share's manifest: commit the run if all shares are complete, and report. If
    the run committed without this attempt (another pod of the same share, overlapping it),
    its files are dropped and the commit's part of the share is reported."""
    winner = log.find(plan.run_id)
    if winner is not None:
        if not _attempt_committed(winner, tag):
            discard(storage, plan.run_id, share, tag)
        roll_forward(log, winner)
        fill(result, winner, share)
        return
    committed = commit_shares(plan, storage, log, claim, heartbeat)
    fill_share(result, manifest, share, committed=committed)


def _attempt_committed(commit: Commit, tag: str) -> bool:
    """Whether the attempt tagged ``tag`` is part of ``commit`` (its files or its records)."""
    if tag in (commit.quarantine or ()):
        return True
    return any(f"part-{commit.run_id}{tag}-" in f.path for f in commit.files)


def commit_shares(
    plan: RunPlan,
    storage: Storage,
    log: TableFormat,
    claim: Claim,
    heartbeat: leases.Heartbeat | None = None,
) -> bool:
    """Commit a scaled-out run if all its shares are complete; True if it is committed.
    ``heartbeat``: the share's hold on the claim's lease (None: it holds none)."""
    heartbeat = heartbeat or leases.Heartbeat(leases.lease_terms({}))
    manifests = shards.read_manifests(storage, plan.run_id)
    state = shards.readiness(manifests, plan.parallelism)
    if not state.ready:
        return False
    chosen = [manifests[r.manifest] for _, r in sorted(state.chosen.items())]
    anything = any(m.get("sources") or m.get("files") or m.get("rowsRead") for m in chosen)
    if not anything and not holds_rows(claim):
        discard(storage, plan.run_id, None, None)  # nothing new anywhere: no commit, as one pod
        heartbeat.compact(storage, plan.job, log.commits())
        return False
    commit = shards.build_commit(
        run_id=plan.run_id,
        job=plan.job,
        schema_version=plan.schema_version,
        mode=plan.mode,
        chosen=chosen,
        commits=log.commits(),
        iso=format_epoch,
    )
    if log.find(plan.run_id) is None:
        heartbeat.check(plan.run_id)
        check_not_released(storage, plan, claim, "")
    # the commit point: shares finishing together race for one exclusive create
    winner, _ = log.commit(commit, table_schema(plan))
    roll_forward(log, winner)
    heartbeat.compact(storage, plan.job, log.commits())
    return True


def discard(storage: Storage, run_id: str, share: shards.Share | None, tag: str | None) -> None:
    """Remove a failed attempt's leftovers: its staged files and quarantined records (``tag``
    in their names: never another attempt's, which may be writing or may have committed;
    ``tag`` None or "": the whole run's), and the run's staging directory and marker once no
    other file is left in it (never for a share: the other shares write there)."""
    try:
        staging = f"{STAGING_DIR}/{run_id}"
        mine = f"part-{run_id}{tag}-" if tag is not None else ""
        left = False
        for entry in storage.list_files(staging):
            if entry.path.rsplit("/", 1)[-1].startswith(mine):
                storage.delete(entry.path)
            else:
                left = True
        remove_rejected(storage, run_id, only=tag or None)
        if share is None and not left:
            storage.delete_dir(staging)
            storage.delete(f"{STAGING_DIR}/{run_id}.started")
    except (LakeopError, OSError) as e:  # the next run's recovery removes it
        logger.warning("could not remove staged files of %s: %s", run_id, e)
