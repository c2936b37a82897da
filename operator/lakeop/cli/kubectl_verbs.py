"""What each ``kubectl lakeop`` verb does against the API server (:mod:`lakeop.cli.kubectl`)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from lakeop.cli.kubectl import no_objects, render
from lakeop.cli.options import counted
from lakeop.cli.tables import table_of_cluster
from lakeop.core.constants import (
    ANNOTATION_CANCEL,
    ANNOTATION_RERUN,
    GROUP,
    LABEL_INGESTION_JOB,
    LABEL_RUN,
    VERSION,
)
from lakeop.errors import InvalidSpecError
from lakeop.kube.client import MERGE_PATCH, Kube

KINDS = (
    ("tables", "Table"),
    ("schemaversions", "SchemaVersion"),
    ("ingestionjobs", "IngestionJob"),
)


async def connect(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[client.ApiClient, str]:
    """A client for ``--context`` of ``--kubeconfig`` (else ``KUBECONFIG``), and the namespace:
    ``--namespace``, else the context's, else ``default``."""
    path = args.kubeconfig or env.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    path = path.split(os.pathsep)[0]
    contexts, active = config.list_kube_config_contexts(config_file=path)
    chosen = active
    if args.context:
        chosen = next((c for c in contexts if c.get("name") == args.context), None)
        if chosen is None:
            names = [c.get("name") for c in contexts]
            raise InvalidSpecError(f"context {args.context!r} not in {path} (has {names})")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=path, context=args.context, client_configuration=cfg)
    namespace = args.namespace or (chosen or {}).get("context", {}).get("namespace") or "default"
    return client.ApiClient(configuration=cfg), namespace


async def dispatch(args: argparse.Namespace, env: dict[str, str]) -> int:
    api, namespace = await connect(args, env)
    kube = Kube(api)
    try:
        if args.verb == "status":
            return await status(kube, namespace)
        if args.verb == "runs":
            return await runs(kube, namespace, args.job)
        if args.verb == "logs":
            return await logs(kube, client.CoreV1Api(api), namespace, args.job, args.run)
        if args.verb in ("history", "query"):
            return await table_verb(kube, namespace, args, env)
        return await steer(kube, client.CustomObjectsApi(api), namespace, args.verb, args.job)
    finally:
        await kube.close()


def _ready(body: Mapping[str, Any]) -> tuple[str, str, str]:
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status", "")), str(c.get("reason", "")), str(c.get("message", ""))
    return "", "", ""


async def status(kube: Kube, namespace: str) -> int:
    rows = []
    for plural, kind in KINDS:
        for body in await kube.list_objects(plural, namespace):
            st = body.get("status") or {}
            ready, reason, message = _ready(body)
            phase = st.get("phase") or ("Ready" if ready == "True" else "")
            rows.append([f"{kind}/{body['metadata']['name']}", phase, ready, reason, message[:80]])
    if not rows:
        sys.stdout.write(no_objects(namespace))
        return 0
    sys.stdout.write(render(rows, ["NAME", "PHASE", "READY", "REASON", "MESSAGE"]))
    return 0


async def _job_object(kube: Kube, namespace: str, job: str) -> dict[str, Any]:
    body = await kube.get_object("ingestionjobs", namespace, job)
    if body is None:
        raise InvalidSpecError(f"IngestionJob {namespace}/{job}: not found")
    return body


async def _kept_jobs(kube: Kube, namespace: str, job: str) -> list[dict[str, Any]]:
    jobs = await kube.list_jobs(f"{LABEL_INGESTION_JOB}={job}")
    jobs = [j for j in jobs if j["metadata"].get("namespace") == namespace]
    return sorted(jobs, key=lambda j: str(j["metadata"].get("creationTimestamp", "")))


def _outcome(job: Mapping[str, Any]) -> str:
    st = job.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("type") in ("Complete", "SuccessCriteriaMet") and c.get("status") == "True":
            return "Succeeded"
        if c.get("type") == "Failed" and c.get("status") == "True":
            return f"Failed ({c.get('reason', '')})"
    return "Running" if st.get("active") else "Pending"


async def runs(kube: Kube, namespace: str, job: str) -> int:
    body = await _job_object(kube, namespace, job)
    st = body.get("status") or {}
    print(
        f"IngestionJob {namespace}/{job}: phase {st.get('phase', '?')}, "
        f"{counted(int(st.get('runs', 0) or 0), 'run')} ({st.get('succeededRuns', 0)} succeeded, "
        f"{st.get('failedRuns', 0)} failed)"
    )
    for label, run in [("current run", st.get("currentRun")), ("last run", st.get("lastRun"))]:
        if isinstance(run, Mapping) and run:
            error = run.get("error") or {}
            outcome = f"failed: {error.get('reason')}" if error else "ok"
            progress = run.get("progress") or {}
            extra = f", {progress.get('percent')}% done" if progress.get("percent") else ""
            print(
                f"{label}: {run.get('runId', run.get('jobName', ''))} started "
                f"{run.get('startTime', '?')}, {run.get('rowsWritten', 0) or 0:,} rows written"
                f"{extra}" + ("" if label == "current run" else f", {outcome}")
            )
    rows = []
    for i, j in enumerate(await _kept_jobs(kube, namespace, job), start=1):
        meta, jst = j["metadata"], j.get("status") or {}
        rows.append(
            [
                i,
                meta["name"],
                (meta.get("labels") or {}).get(LABEL_RUN, ""),
                _outcome(j),
                jst.get("startTime", ""),
                jst.get("completionTime", ""),
            ]
        )
    if rows:
        sys.stdout.write(render(rows, ["RUN", "JOB", "RUN ID", "OUTCOME", "STARTED", "COMPLETED"]))
    else:
        print("no kept Jobs")
    return 0


async def steer(kube: Kube, custom: Any, namespace: str, verb: str, job: str) -> int:
    """rerun, suspend, resume, cancel: one merge patch of the IngestionJob."""
    await _job_object(kube, namespace, job)
    patch: dict[str, Any]
    if verb == "rerun":
        token = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        patch = {"metadata": {"annotations": {ANNOTATION_RERUN: token}}}
    elif verb == "suspend":
        patch = {"spec": {"suspend": True}}
    elif verb == "resume":
        patch = {"spec": {"suspend": False}, "metadata": {"annotations": {ANNOTATION_CANCEL: None}}}
    else:  # cancel: the operator stops a run only when the job is suspended too
        patch = {
            "spec": {"suspend": True},
            "metadata": {"annotations": {ANNOTATION_CANCEL: "true"}},
        }
    try:
        await custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "ingestionjobs", job, patch, _content_type=MERGE_PATCH
        )
    except ApiException as exc:
        raise InvalidSpecError(f"IngestionJob {namespace}/{job}: {exc.reason}") from exc
    done = {"rerun": "re-run requested", "suspend": "suspended", "resume": "resumed"}
    print(f"ingestionjob.{GROUP}/{job} {done.get(verb, 'cancelled')}")
    return 0


async def logs(kube: Kube, core: Any, namespace: str, job: str, run: int | None) -> int:
    await _job_object(kube, namespace, job)
    kept = await _kept_jobs(kube, namespace, job)
    if not kept:
        raise InvalidSpecError(f"IngestionJob {namespace}/{job}: no kept Jobs")
    if run is not None and not 1 <= run <= len(kept):
        raise InvalidSpecError(f"--run {run}: the kept runs are 1..{len(kept)}")
    target = kept[(run or len(kept)) - 1]["metadata"]["name"]
    pods = await kube.list_pods(namespace, f"job-name={target}")
    for pod in sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", ""))):
        name = pod["metadata"]["name"]
        if len(pods) > 1:
            print(f"==> pod {name} <==")
        sys.stdout.write(await _raw_log(core, namespace, name))
    return 0


async def _raw_log(core: Any, namespace: str, name: str) -> str:
    """The pod's log as written (the generated client would parse a JSON line into a dict)."""
    try:
        resp = await core.read_namespaced_pod_log(name, namespace, _preload_content=False)
        return str(await resp.text())
    except ApiException as exc:
        if exc.status in (400, 404):  # not started yet, or gone
            return ""
        raise InvalidSpecError(f"log of pod {namespace}/{name}: {exc.reason}") from exc


async def table_verb(
    kube: Kube, namespace: str, args: argparse.Namespace, env: dict[str, str]
) -> int:
    """``lakeop history`` / ``lakeop query`` on the cluster's Table."""
    from lakeop.cli import history, query  # noqa: PLC0415

    ref = await table_of_cluster(namespace, args.table, env, kube)
    if args.verb == "history":
        return history.show(ref, args.output)
    return query.show(ref, args.sql, args.output)
