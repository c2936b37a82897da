"""IngestionJob handlers: wait for the table, then start the run's batch/v1 Job exactly once.

Order matters for restarts: the run's identity (number, id, Job name) is written to
``status.currentRun`` *before* the Job is created, and the Job name is derived from it. An
operator killed at any point finds ``currentRun`` on resume and re-creates the same name, so
the API server answers 409 instead of a second run starting. Results are recorded by
:mod:`lakeop.handlers.runs`. Scheduling (``spec.schedule``) builds on :func:`start_run`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kopf

from lakeop.core.constants import (
    GROUP,
    INGESTION_JOBS,
    VERSION,
    ConditionType,
    EventType,
    JobPhase,
    Reason,
)
from lakeop.core.runs import status as st
from lakeop.core.runs.admission import check_ingestion_job
from lakeop.core.runs.jobs import JobParams, build_job, job_name, run_id
from lakeop.core.runs.mounts import check_lake_mount, pod_mount_paths, require_mounted
from lakeop.core.runs.plan import build_plan
from lakeop.core.runs.rerun import (
    CANCEL_ANNOTATION,
    RERUN_ANNOTATION,
    RERUN_TOKEN_STATUS,
    OneOffAction,
    one_off_decision,
)
from lakeop.core.spec.fields import ObjectKey
from lakeop.core.spec.resources import IngestionJobSpec, parse_table
from lakeop.core.spec.sources import SqlSourceSpec
from lakeop.errors import TerminalError
from lakeop.handlers._common import as_body, conditions, generation, kopf_errors, now
from lakeop.handlers.job_defaults import operator_job_params
from lakeop.handlers.run_gates import NotStartableError, queue_capacity, table_gate
from lakeop.handlers.runs import in_flight
from lakeop.handlers.table_storage import pod_catalog_secret
from lakeop.kube.client import JobRejectedError
from lakeop.memo import OperatorMemo
from lakeop.storage import real_location

WAIT_SECONDS = 5.0


@kopf.on.resume(GROUP, VERSION, INGESTION_JOBS)
@kopf.on.create(GROUP, VERSION, INGESTION_JOBS)
@kopf.on.update(GROUP, VERSION, INGESTION_JOBS, field="spec")
@kopf.on.update(GROUP, VERSION, INGESTION_JOBS, field=("metadata", "annotations", RERUN_ANNOTATION))
@kopf.on.update(
    GROUP, VERSION, INGESTION_JOBS, field=("metadata", "annotations", CANCEL_ANNOTATION)
)
async def reconcile(
    body: kopf.Body,
    memo: OperatorMemo,
    patch: kopf.Patch,
    name: str,
    namespace: str | None,
    **_: Any,
) -> None:
    kube = memo.kube
    namespace = namespace or "default"
    status = body.get("status") or {}
    gen, stamp = generation(body), now()
    current = status.get("currentRun")
    try:  # every rule of the webhook and lakeop validate (a time zone even without a schedule)
        with kopf_errors(memo, "IngestionJob"):
            spec = check_ingestion_job(body, lake_mount_path=memo.settings.lake_mount_path)
    except kopf.PermanentError as exc:
        if not current:  # a run in flight is recorded as usual; the next one is refused
            _refuse(body, patch, exc)
        raise
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    decision = one_off_decision(spec, annotations, status, run_active=bool(current))
    if decision.action is OneOffAction.CANCEL and current:  # one-off or scheduled alike
        with kopf_errors(memo, "IngestionJob"):
            for run in in_flight(body):  # with concurrencyPolicy: Allow, several
                await kube.delete_job(namespace, str(run.get("jobName")))
        return  # each run is recorded as Cancelled when its Job is gone (runs.py)
    if current:  # a run is in flight: make sure its Job exists, never start another
        try:
            with kopf_errors(memo, "IngestionJob"):
                if await kube.get_job(namespace, str(current.get("jobName"))) is None:
                    await start_run(body, spec, memo, number=int(current["number"]))
        except NotStartableError as wait:
            raise kopf.TemporaryError(str(wait), delay=WAIT_SECONDS) from None
        except kopf.PermanentError as exc:  # its Job refused: the run is un-recorded
            _refuse(body, patch, exc)
            raise
        return
    if spec.suspend:
        patch.status.update(
            st.job_waiting(
                conditions(body),
                generation=gen,
                now=stamp,
                phase=JobPhase.SUSPENDED,
                reason=Reason.SUSPENDED,
                message="spec.suspend is true",
            )
        )
        return
    if spec.schedule or decision.action is not OneOffAction.START:
        patch.status["observedGeneration"] = gen  # scheduled, or a one-off that already ran
        return
    token = {RERUN_TOKEN_STATUS: decision.rerun_token} if decision.rerun_token else {}
    try:
        with kopf_errors(memo, "IngestionJob"):
            number = int(status.get("runs") or 0) + 1
            await start_run(body, spec, memo, number=number, extra_status=token)
    except NotStartableError as wait:
        if status.get("phase") != wait.phase.value or _reason(body) != wait.reason:
            kopf.event(body, type=EventType.NORMAL.value, reason=wait.reason, message=str(wait))
        with kopf_errors(memo, "IngestionJob"):
            await kube.patch_status(
                INGESTION_JOBS,
                namespace,
                name,
                {
                    **st.job_waiting(
                        conditions(body),
                        generation=gen,
                        now=stamp,
                        phase=wait.phase,
                        reason=wait.reason,
                        message=str(wait),
                    ),
                    **wait.fields,
                },
            )
        raise kopf.TemporaryError(str(wait), delay=WAIT_SECONDS) from None
    except kopf.PermanentError as exc:
        _refuse(body, patch, exc)
        raise


def _refuse(body: kopf.Body, patch: kopf.Patch, exc: kopf.PermanentError) -> None:
    """Phase Failed with the refusal's reason (InvalidSpec, LocationRefused...), no Job."""
    reason = Reason.FAILED.value
    cause = exc.__cause__
    if isinstance(cause, TerminalError):
        reason = cause.reason
    patch.status.update(
        st.job_waiting(
            conditions(body),
            generation=generation(body),
            now=now(),
            phase=JobPhase.FAILED,
            reason=reason,
            message=str(cause or exc),
        )
    )
    kopf.event(body, type=EventType.WARNING.value, reason=reason, message=str(cause or exc))


def _reason(body: Mapping[str, Any]) -> str | None:
    for cond in conditions(body):
        if cond.get("type") == ConditionType.READY.value:
            return str(cond.get("reason"))
    return None


async def start_run(
    body: Mapping[str, Any],
    ij: IngestionJobSpec,
    memo: OperatorMemo,
    *,
    number: int,
    extra_status: Mapping[str, Any] | None = None,
) -> str:
    """Start run ``number`` of IngestionJob ``ij`` (or re-assert it after a restart); returns
    the Job name. ``body`` is the object's metadata and status (its spec is ``ij``)."""
    kube, settings = memo.kube, memo.settings
    meta = body.get("metadata") or {}
    namespace, name, uid = ij.namespace, ij.name, str(meta["uid"])
    status = body.get("status") or {}
    current_run = status.get("currentRun") or {}
    in_flight = current_run if current_run.get("number") == number else {}
    pinned = in_flight.get("schemaVersion")
    table, svspec = await table_gate(
        kube, namespace, ij.table_ref, pinned=pinned if isinstance(pinned, int) else None
    )
    if not in_flight:  # a run waiting for its schema holds no place in the queue
        created = meta.get("creationTimestamp")
        await queue_capacity(kube, settings, ij, created, memo.metrics, overlap=bool(current_run))
    tspec = parse_table(table)
    rid, jname = run_id(uid, number), job_name(name, uid, number, ij.parallelism)
    # refused here, before currentRun or any Job: a bad reference, a schema the table cannot
    # be partitioned by, a location outside LAKEOP_ALLOWED_LOCATIONS (links followed)
    plan = build_plan(
        tspec,
        svspec,
        ij,
        rid,
        settings.default_location,
        allowed=settings.allowed_locations,
        real_location=real_location,
    )
    if settings.require_mounts:  # a file:// path no Job pod volume covers: LocationNotMounted
        require_mounted(
            f"IngestionJob {namespace}/{name}",
            {
                "spec.source.uri": getattr(ij.source, "uri", None),
                "table location": plan.table.location,
            },
            pod_mount_paths(ij.pod_template, settings.lake_mount_path),
        )
    # a template mount where the lake volume goes: the API server would refuse the Job (422)
    check_lake_mount(
        ObjectKey("IngestionJob", namespace, name), ij.pod_template, settings.lake_mount_path
    )
    plan = dataclasses.replace(plan, claim_lease_seconds=settings.job_claim_lease_seconds)
    stamp = now()
    if not in_flight:
        current = {
            "number": number,
            "runId": rid,
            "jobName": jname,
            "schemaVersion": svspec.version,
            "startTime": stamp,
        }
        running = st.job_running(
            conditions(body),
            generation=generation(body),
            now=stamp,
            job_name=jname,
            message=f"run {number} ({rid}) starting",
        )
        await kube.patch_status(
            INGESTION_JOBS,
            namespace,
            name,
            {**running, **dict(extra_status or {}), "currentRun": current, "queuePosition": None},
        )
    sql = ij.source.url_secret_ref if isinstance(ij.source, SqlSourceSpec) else None
    defaults = operator_job_params(settings)
    if ij.ttl_seconds_after_finished is not None:
        defaults["ttl_seconds_after_finished"] = ij.ttl_seconds_after_finished
    manifest = build_job(
        JobParams(
            namespace=namespace,
            ingestion_job=name,
            ingestion_job_uid=uid,
            run=number,
            table=tspec.name,
            plan_json=plan.to_json(),
            storage_secret=tspec.storage_secret_ref,
            source_secret=getattr(ij.source, "secret_ref", None),
            sql_url_secret=sql,
            iceberg_catalog_secret=pod_catalog_secret(tspec, settings),
            resources=ij.resources,
            backoff_limit=ij.backoff_limit,
            active_deadline_seconds=ij.active_deadline_seconds,
            priority_class_name=ij.priority_class_name,
            parallelism=ij.parallelism,
            pod_template=ij.pod_template,
            **defaults,
        )
    )
    try:
        created, _job = await kube.create_job(manifest)
    except JobRejectedError:  # invalid as rendered: no retry can help; the run never started
        await kube.patch_status(
            INGESTION_JOBS,
            namespace,
            name,
            {k: status.get(k) for k in ("currentRun", "activeRuns", "jobName", "queuePosition")}
            if not in_flight
            else {"currentRun": None},
        )
        raise
    if created:
        kopf.event(
            as_body(body),
            type=EventType.NORMAL.value,
            reason=Reason.JOB_CREATED.value,
            message=f"run {number} ({rid}): created Job {jname}",
        )
        memo.metrics.run_started(namespace, tspec.name)
    return jname
