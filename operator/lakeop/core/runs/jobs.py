"""Build the batch/v1 Job of one ingestion run (build, then apply).

:func:`build_job` is pure: the operator renders the manifest here and sends it elsewhere
(:mod:`lakeop.kube`), so the exact Job — names, labels, hardening, secret references — is
pinned by golden YAML tests. The Job name is derived from the IngestionJob's uid and the run
number, so re-running an interrupted handler produces the same name and the API server's 409
tells the operator that the run already exists: restarts never start a run twice.

Secrets travel by reference only: the pod gets ``envFrom``/``secretKeyRef`` entries naming the
Secret, never a value, and the plan in ``LAKEOP_PLAN`` holds env var names, not credentials.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.constants import (
    ANNOTATION_RUN_ID,
    API_VERSION,
    LABEL_INGESTION_JOB,
    LABEL_MANAGED_BY,
    LABEL_RUN,
    LABEL_TABLE,
    LAKE_VOLUME,
    LOG_FORMAT_ENV,
    MANAGED_BY,
    PLAN_ENV,
    SCRATCH_DIR,
    SOURCE_ENV_PREFIX,
    SOURCE_SQL_URL_ENV,
    STORAGE_ENV_PREFIX,
    TERMINATION_LOG,
    Kind,
)
from lakeop.core.lake.iceberg import CATALOG_ENV as ICEBERG_CATALOG_ENV
from lakeop.core.runs.failure import retry_fields
from lakeop.core.spec.podtemplate import MAIN_CONTAINER, PodTemplate, merge_pod_template
from lakeop.core.spec.sources import SecretKeyRef

MAX_NAME = 63  # Job names end up in the pods' job-name label: at most 63 characters
RUN_ID_LEN = 8
NON_ROOT_UID = 65532
_NOT_LABEL = re.compile(r"[^a-z0-9-]")


@dataclass(frozen=True)
class JobParams:
    """Everything a run's Job depends on; defaults are the operator's."""

    namespace: str
    ingestion_job: str
    ingestion_job_uid: str
    run: int
    table: str
    plan_json: str
    image: str
    storage_secret: str | None = None
    source_secret: str | None = None
    sql_url_secret: SecretKeyRef | None = None
    #: an Iceberg table's catalog URL (``spec.iceberg.catalogSecretRef``), by reference only
    iceberg_catalog_secret: SecretKeyRef | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    default_resources: Mapping[str, Any] = field(default_factory=dict)
    backoff_limit: int = 3
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    priority_class_name: str | None = None
    service_account: str | None = None
    parallelism: int = 1  # > 1: an Indexed Job, one pod per share of the run (scale-out)
    pod_template: PodTemplate | None = None  # spec.podTemplate, merged over lakeop's pod
    lake_volume: Mapping[str, Any] | None = None  # LAKEOP_LAKE_VOLUME: a volume source
    lake_mount_path: str | None = None  # ... mounted here, where the operator has it too
    log_format: str | None = None  # the operator's LAKEOP_LOG_FORMAT, for the pod's logs
    #: LAKEOP_JOB_NODE_SELECTOR / LAKEOP_JOB_TOLERATIONS: the operator's placement of every
    #: Job pod, under the pod template's (which adds selector keys and appends tolerations)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()


def run_id(uid: str, run: int) -> str:
    """A short, stable id of run ``run`` of the IngestionJob with ``uid``."""
    return hashlib.sha256(f"{uid}:{run}".encode()).hexdigest()[:RUN_ID_LEN]


def job_name(ingestion_job: str, uid: str, run: int, parallelism: int = 1) -> str:
    """``<ij-name>-<run id>``, truncated to fit a label value and still a valid DNS label.

    An Indexed Job (``parallelism > 1``) gives its pods the hostname ``<job name>-<index>``,
    which must be a DNS label: at most 63 characters and no dots. For those the IngestionJob
    part is cut shorter and dots become dashes.
    """
    suffix = run_id(uid, run)
    if parallelism > 1:
        room = MAX_NAME - len(suffix) - 1 - len(f"-{parallelism - 1}")
        short = _NOT_LABEL.sub("-", ingestion_job.lower())[:room].strip("-")
        return f"{short}-{suffix}" if short else suffix
    stem = ingestion_job[: MAX_NAME - len(suffix) - 1].rstrip("-.")
    return f"{stem}-{suffix}"


def job_labels(ingestion_job: str, table: str, run: int) -> dict[str, str]:
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_INGESTION_JOB: ingestion_job,
        LABEL_TABLE: table,
        LABEL_RUN: str(run),
    }


def merge_resources(spec: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's requests/limits over the operator defaults, key by key."""
    merged: dict[str, Any] = {}
    for part in ("requests", "limits"):
        values = {**dict(defaults.get(part) or {}), **dict(spec.get(part) or {})}
        if values:
            merged[part] = values
    return merged


def _env(p: JobParams) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    env: list[dict[str, Any]] = [
        {"name": PLAN_ENV, "value": p.plan_json},
        {"name": "HOME", "value": SCRATCH_DIR},
        {"name": "TMPDIR", "value": SCRATCH_DIR},
    ]
    if p.log_format:
        env.append({"name": LOG_FORMAT_ENV, "value": p.log_format})
    if p.sql_url_secret is not None:
        ref = {"name": p.sql_url_secret.name, "key": p.sql_url_secret.key}
        env.append({"name": SOURCE_SQL_URL_ENV, "valueFrom": {"secretKeyRef": ref}})
    if p.iceberg_catalog_secret is not None:
        ref = {"name": p.iceberg_catalog_secret.name, "key": p.iceberg_catalog_secret.key}
        env.append({"name": ICEBERG_CATALOG_ENV, "valueFrom": {"secretKeyRef": ref}})
    env_from: list[dict[str, Any]] = []
    if p.storage_secret:
        env_from.append({"secretRef": {"name": p.storage_secret}, "prefix": STORAGE_ENV_PREFIX})
    if p.source_secret:
        env_from.append({"secretRef": {"name": p.source_secret}, "prefix": SOURCE_ENV_PREFIX})
    return env, env_from


def build_job(p: JobParams) -> dict[str, Any]:
    """The batch/v1 Job manifest of one run; owner reference to the IngestionJob included."""
    labels = job_labels(p.ingestion_job, p.table, p.run)
    env, env_from = _env(p)
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": p.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["lakeop", "ingest"],
        "args": [
            "--plan-env",
            PLAN_ENV,
            "--output",
            "json",
            "--termination-log",
            TERMINATION_LOG,
        ],
        "env": env,
        "resources": merge_resources(p.resources, p.default_resources),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH_DIR}],
    }
    if env_from:
        container["envFrom"] = env_from
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_UID,
            "runAsGroup": NON_ROOT_UID,
            "fsGroup": NON_ROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    if p.lake_volume and p.lake_mount_path:
        pod_spec["volumes"].append({"name": LAKE_VOLUME, **dict(p.lake_volume)})
        container["volumeMounts"].append({"name": LAKE_VOLUME, "mountPath": p.lake_mount_path})
    if p.service_account:
        pod_spec["serviceAccountName"] = p.service_account
    if p.priority_class_name:
        pod_spec["priorityClassName"] = p.priority_class_name
    if p.node_selector:
        pod_spec["nodeSelector"] = dict(p.node_selector)
    if p.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in p.tolerations]
    job_spec: dict[str, Any] = {
        "backoffLimit": p.backoff_limit,
        "completions": 1,
        "parallelism": 1,  # one writer per run: a run is one commit to the table
        "template": merge_pod_template(
            {"metadata": {"labels": dict(labels)}, "spec": pod_spec}, p.pod_template
        ),
    }
    # podFailurePolicy for every run (exit 2 = bad input: no retries; disruptions not counted);
    # N > 1 makes an Indexed Job: N pods, each writing one share of the one commit
    job_spec.update(retry_fields(p.parallelism, p.backoff_limit))
    if p.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = p.active_deadline_seconds
    if p.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = p.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(p.ingestion_job, p.ingestion_job_uid, p.run, p.parallelism),
            "namespace": p.namespace,
            "labels": labels,
            "annotations": {ANNOTATION_RUN_ID: run_id(p.ingestion_job_uid, p.run)},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": Kind.INGESTION_JOB.value,
                    "name": p.ingestion_job,
                    "uid": p.ingestion_job_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }
