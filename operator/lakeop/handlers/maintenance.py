"""Table maintenance: start each run's batch/v1 Job exactly once, and record how it ended.

A run is due on ``spec.maintenance.compaction.schedule`` or when the annotation
``lakeop.io/compact`` carries a new token; the decision is the pure
:func:`~lakeop.core.runs.maintenance_runs.maintenance_tick`. A timer (every table with a
schedule, a run in flight or the annotation) and an update of the annotation apply it, under a
per-Table lock: the trigger and ``status.maintenance.currentRun`` are written first, then the
Job (named by a run id derived from the trigger) is created, so a restart re-creates the same
name and the API server's 409 stops a second run. The Job is an ingestion Job's
(:func:`~lakeop.core.runs.maintenance.build_maintenance_job`: the same hardened pod, retries,
podFailurePolicy, the operator's image and defaults, ``spec.maintenance.podTemplate`` merged
over it); its pod runs ``lakeop compact --plan-env`` (compaction, then expiry) and reports its
summary in the termination message. A Job event (or the timer, after a restart) records the
result: ``status.maintenance`` through the one Table status writer, the Events ``Compacted``,
``Expired``, ``MaintenanceFailed``, the metrics, and the history limits (3 succeeded, 1 failed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from lakeop.core.constants import (
    GROUP,
    LABEL_MAINTENANCE,
    LABEL_TABLE,
    TABLES,
    VERSION,
    EventType,
    Reason,
    SchemaPhase,
)
from lakeop.core.runs import maintenance_runs as mr
from lakeop.core.runs.admission import check_table
from lakeop.core.runs.failure import Failure, FailureReason, classify_failure
from lakeop.core.runs.jobs import JobParams
from lakeop.core.runs.maintenance import (
    ANNOTATION_COMPACT,
    Action,
    MaintenancePlan,
    build_maintenance_job,
)
from lakeop.core.runs.mounts import LocationNotMountedError, pod_mount_paths, require_mounted
from lakeop.core.runs.schedule import runs_to_prune
from lakeop.core.runs.status import TableFacts
from lakeop.core.runs.summary import RunSummary
from lakeop.core.spec.resources import TableSpec
from lakeop.errors import InvalidSpecError, LakeopError
from lakeop.handlers import _lake, pod_reports
from lakeop.handlers._common import as_body, kopf_errors, now
from lakeop.handlers.history import finished_runs
from lakeop.handlers.indexes import schema_peers
from lakeop.handlers.job_defaults import operator_job_params
from lakeop.handlers.table_status import write_table_status
from lakeop.handlers.table_storage import pod_catalog_secret, storage_env
from lakeop.kube.client import job_outcome
from lakeop.memo import OperatorMemo

TICK_SECONDS = 5.0
#: a run's Job missing this soon after the run started may just not be created yet
START_GRACE_SECONDS = 30.0


class _RefusedError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _wanted(spec: Any, status: Any, annotations: Any, **_: Any) -> bool:
    """Tables the timer looks at: a schedule, a run in flight, or a compact token."""
    compaction = ((spec or {}).get("maintenance") or {}).get("compaction") or {}
    current = ((status or {}).get("maintenance") or {}).get(mr.CURRENT_RUN)
    return bool(compaction.get("schedule") or current or mr.compact_token(annotations))


@kopf.timer(GROUP, VERSION, TABLES, interval=TICK_SECONDS, initial_delay=1.0, when=_wanted)
async def tick(memo: OperatorMemo, name: str, namespace: str | None, **_: Any) -> None:
    with kopf_errors(memo, "Table"):
        await maintain(memo, namespace or "default", name)


@kopf.on.update(GROUP, VERSION, TABLES, field=("metadata", "annotations", ANNOTATION_COMPACT))
async def on_demand(memo: OperatorMemo, name: str, namespace: str | None, **_: Any) -> None:
    with kopf_errors(memo, "Table"):
        await maintain(memo, namespace or "default", name)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_MAINTENANCE: kopf.PRESENT})
async def job_event(
    body: kopf.Body, memo: OperatorMemo, namespace: str | None, type: str | None, **_: Any
) -> None:
    succeeded, _msg = job_outcome(body)
    if succeeded is None and type != "DELETED":
        return
    labels = (body.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_TABLE):
        with kopf_errors(memo, "Table"):
            await maintain(memo, namespace or "default", str(labels[LABEL_TABLE]))


async def maintain(memo: OperatorMemo, namespace: str, name: str) -> None:
    """Record the Table's run in flight if its Job ended, else start a run that is due."""
    async with memo.run_lock(namespace, f"Table:{name}"):  # ':' is in no object name
        table = await memo.kube.get_object(TABLES, namespace, name)
        if table is None:
            return
        status = (table.get("status") or {}).get("maintenance") or {}
        current = status.get(mr.CURRENT_RUN)
        if current:
            await _follow(memo, table, current)
            return
        await _maybe_start(memo, table, status)


async def _maybe_start(memo: OperatorMemo, table: dict[str, Any], status: dict[str, Any]) -> None:
    meta, stamp = table["metadata"], now()
    if not (table.get("status") or {}).get("location"):
        return  # not prepared yet (or refused): what is due waits for it
    try:
        spec = check_table(table)
        decision = mr.maintenance_tick(
            spec.maintenance,
            status,
            meta.get("annotations"),
            table_uid=str(meta["uid"]),
            created=str(meta.get("creationTimestamp") or ""),
            now=datetime.now(UTC),
        )
    except InvalidSpecError as exc:
        fields = {mr.NEXT_COMPACTION_TIME: None}
        await _refuse(memo, table, status, fields, Failure(exc.reason, str(exc)))
        return
    if not decision.start or decision.run_id is None:
        if decision.status:
            await write_table_status(memo.kube, table, TableFacts(maintenance=decision.status))
        return
    try:
        manifest = await _manifest(memo, table, spec, decision.run_id)
    except _RefusedError as refused:  # the trigger is used up; the next one tries again
        await _refuse(memo, table, status, decision.status, refused.failure)
        return
    current = {
        "runId": decision.run_id,
        "jobName": manifest["metadata"]["name"],
        "trigger": decision.trigger,
        "startTime": stamp,
    }
    facts = TableFacts(maintenance={**decision.status, mr.CURRENT_RUN: current})
    await write_table_status(memo.kube, table, facts)  # before the Job: a restart re-creates it
    if decision.event is not None:
        kind, reason, message = decision.event
        kopf.event(as_body(table), type=kind, reason=reason, message=message)
    await _create(memo, table, manifest, current)


async def _create(
    memo: OperatorMemo, table: dict[str, Any], manifest: dict[str, Any], current: dict[str, Any]
) -> None:
    created, _job = await memo.kube.create_job(manifest)
    if created:
        kopf.event(
            as_body(table),
            type=EventType.NORMAL.value,
            reason=Reason.JOB_CREATED.value,
            message=f"maintenance run {current['runId']} ({current['trigger']}): "
            f"created Job {current['jobName']}",
        )
        memo.metrics.maintenance_started(table["metadata"]["namespace"], table["metadata"]["name"])


async def _refuse(
    memo: OperatorMemo,
    table: dict[str, Any],
    status: dict[str, Any],
    fields: dict[str, Any],
    failure: Failure,
) -> None:
    update = mr.refusal_recorded(status, fields, failure, now=now())
    if update is None:
        return  # said already
    await write_table_status(memo.kube, table, TableFacts(maintenance=update))
    kopf.event(
        as_body(table),
        type=EventType.WARNING.value,
        reason=Reason.MAINTENANCE_FAILED.value,
        message=f"{failure.reason}: {failure.message}",
    )


async def _manifest(
    memo: OperatorMemo, table: dict[str, Any], spec: TableSpec, run_id: str
) -> dict[str, Any]:
    """The run's Job, or :class:`_RefusedError` with why it cannot run (no Accepted schema, a
    location no Job pod volume covers, no location: the table was refused since)."""
    settings, ns, name = memo.settings, spec.namespace, spec.name
    location = (table.get("status") or {}).get("location")
    if not location:
        raise _RefusedError(
            Failure(Reason.TABLE_NOT_READY.value, f"Table {ns}/{name} is not ready")
        )
    accepted = [
        p for p in await schema_peers(memo.kube, ns, name) if p.phase == SchemaPhase.ACCEPTED
    ]
    if not accepted:
        raise _RefusedError(
            Failure(Reason.NO_ACCEPTED_SCHEMA.value, f"Table {ns}/{name} has no Accepted schema")
        )
    schema = max(accepted, key=lambda p: p.version)
    m = spec.maintenance
    if settings.require_mounts:
        try:
            require_mounted(
                f"Table {ns}/{name} maintenance",
                {"table location": str(location)},
                pod_mount_paths(m.pod_template, settings.lake_mount_path),
            )
        except LocationNotMountedError as exc:
            raise _RefusedError(Failure(exc.reason, str(exc))) from exc
    plan = MaintenancePlan(
        namespace=ns,
        table=name,
        action=Action.COMPACT,
        run_id=run_id,
        location=str(location),
        format=spec.format,
        compression=spec.compression,
        schema_version=schema.version,
        schema_fields=tuple(dict(f) for f in schema.fields),
        target_file_size_bytes=m.target_file_size_bytes,
        min_input_files=m.min_input_files,
        snapshot_retention_s=m.snapshot_retention_s,
        rejected_retention_s=m.rejected_retention_s,
        then_expire=True,
    )
    params = JobParams(
        namespace=ns,
        ingestion_job=name,
        ingestion_job_uid=str(table["metadata"]["uid"]),
        run=0,
        table=name,
        plan_json="",
        storage_secret=spec.storage_secret_ref,
        iceberg_catalog_secret=pod_catalog_secret(spec, settings),
        pod_template=m.pod_template,
        **operator_job_params(settings),
    )
    return build_maintenance_job(plan, params)


async def _follow(memo: OperatorMemo, table: dict[str, Any], current: dict[str, Any]) -> None:
    """Record the run in flight once its Job has ended (re-create a Job a restart lost)."""
    kube, ns = memo.kube, str(table["metadata"]["namespace"])
    job = await kube.get_job(ns, str(current.get("jobName")))
    report: mr.MaintenanceReport | None = None
    if job is None:
        if mr.age_seconds(current, datetime.now(UTC)) < START_GRACE_SECONDS:
            await _recreate(memo, table, current)
            return
        failure: Failure | None = Failure(
            FailureReason.FAILED, f"Job {current.get('jobName')} disappeared before it ended"
        )
    else:
        succeeded, _message = job_outcome(job)
        if succeeded is None:
            return
        selector = f"job-name={current.get('jobName')}"
        report, oom = await pod_reports.last_report(
            kube, ns, selector, mr.MaintenanceReport.from_text
        )
        failure = None
        if not succeeded or (report is not None and report.failed):
            error = report.error if report is not None else Failure.from_dict(oom)
            failure = classify_failure(
                (job.get("status") or {}).get("conditions"), RunSummary(error=error)
            )
    await _record(memo, table, current, report, failure)


async def _recreate(memo: OperatorMemo, table: dict[str, Any], current: dict[str, Any]) -> None:
    try:
        spec = check_table(table)
        manifest = await _manifest(memo, table, spec, str(current["runId"]))
    except (LakeopError, _RefusedError):
        return  # recorded as gone once the grace is over
    if manifest["metadata"]["name"] == current.get("jobName"):
        await _create(memo, table, manifest, current)


async def _record(
    memo: OperatorMemo,
    table: dict[str, Any],
    current: dict[str, Any],
    report: mr.MaintenanceReport | None,
    failure: Failure | None,
) -> None:
    kube, meta = memo.kube, table["metadata"]
    ns, name = str(meta["namespace"]), str(meta["name"])
    stamp = now()
    update = mr.run_recorded(current, report, failure, now=stamp)
    totals = None
    try:  # compaction changed the files: smallFiles, files and bytes now
        spec = check_table(table)
        location = (table.get("status") or {}).get("location")
        if location:
            env = await storage_env(kube, spec, memo.settings)
            target = spec.maintenance.target_file_size_bytes
            totals = await _lake.totals(str(location), env, spec.format, target)
    except LakeopError:
        totals = None  # the refresh timer brings them later
    await write_table_status(kube, table, TableFacts(totals=totals, maintenance=update))
    body = as_body(table)
    c = report.compaction if report else None
    e = report.expiry if report else None
    if c is not None:
        kopf.event(
            body,
            type=EventType.NORMAL.value,
            reason=Reason.COMPACTED.value,
            message=f"run {current.get('runId')}: {c.partitions} partition(s), {c.files_before} "
            f"files ({c.bytes_before} bytes) -> {c.files_after} files ({c.bytes_after} bytes)",
        )
    if e is not None:
        kopf.event(
            body,
            type=EventType.NORMAL.value,
            reason=Reason.EXPIRED.value,
            message=f"run {current.get('runId')}: {e.files_deleted} file(s) deleted, "
            f"{e.bytes_freed} bytes freed",
        )
    if failure is not None:
        kopf.event(
            body,
            type=EventType.WARNING.value,
            reason=Reason.MAINTENANCE_FAILED.value,
            message=f"run {current.get('runId')}: {failure.reason}: {failure.message}",
        )
    memo.metrics.maintenance_finished(
        ns,
        name,
        succeeded=failure is None,
        seconds=report.seconds if report else 0.0,
        files_compacted=c.files_before if c else 0,
        bytes_compacted=c.bytes_before if c else 0,
        files_expired=e.files_deleted if e else 0,
        bytes_freed=e.bytes_freed if e else 0,
    )
    await prune(memo, ns, name, str(meta["uid"]))


async def prune(memo: OperatorMemo, namespace: str, table: str, uid: str) -> list[str]:
    """Delete the Table's finished maintenance Jobs beyond the ingestion runs' default history
    limits (3 succeeded, 1 failed), oldest first; returns their names."""
    jobs = await memo.kube.list_jobs(
        f"{LABEL_MAINTENANCE}={Action.COMPACT.value},{LABEL_TABLE}={table}"
    )
    doomed = runs_to_prune(finished_runs(jobs, namespace, uid))
    for job in doomed:
        await memo.kube.delete_job(namespace, job)
    return doomed
