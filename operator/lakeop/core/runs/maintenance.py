"""A maintenance run's plan and its batch/v1 Job (build, then apply).

The operator runs ``lakeop compact`` / ``lakeop expire`` in a Job owned by the Table, with
the plan in ``LAKEOP_PLAN`` (like an ingestion run): the table's resolved location, its
current schema (compaction rewrites under it) and the policy of ``spec.maintenance``. The
Job is an ingestion Job's (:func:`lakeop.core.runs.jobs.build_job`: the same hardened pod,
podFailurePolicy, secrets by reference, history and deadlines) with the maintenance
command, the Table as owner and a name fixed by the run id, so a re-run handler hits 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from lakeop.core.constants import (
    ANNOTATION_COMPACT,
    API_VERSION,
    LABEL_MAINTENANCE,
    PLAN_ENV,
    TERMINATION_LOG,
    Kind,
)
from lakeop.core.runs.jobs import MAX_NAME, JobParams, build_job
from lakeop.errors import InvalidSpecError

__all__ = [
    "ANNOTATION_COMPACT",
    "LABEL_MAINTENANCE",
    "Action",
    "MaintenancePlan",
    "build_maintenance_job",
    "maintenance_job_name",
    "maintenance_run_id",
]


class Action(StrEnum):
    COMPACT = "compact"
    EXPIRE = "expire"


@dataclass(frozen=True)
class MaintenancePlan:
    namespace: str
    table: str
    action: Action
    run_id: str
    location: str
    format: str
    compression: str
    schema_version: int
    schema_fields: tuple[dict[str, Any], ...]
    target_file_size_bytes: int
    min_input_files: int
    snapshot_retention_s: float
    rejected_retention_s: float
    #: compaction only: expire after it (per the retention) in the same run, as the
    #: operator's maintenance Jobs do; the summary then carries ``expiry`` too
    then_expire: bool = False

    def to_json(self) -> str:
        d = {
            "namespace": self.namespace,
            "table": self.table,
            "action": self.action.value,
            "runId": self.run_id,
            "location": self.location,
            "format": self.format,
            "compression": self.compression,
            "schemaVersion": self.schema_version,
            "schemaFields": list(self.schema_fields),
            "targetFileSizeBytes": self.target_file_size_bytes,
            "minInputFiles": self.min_input_files,
            "snapshotRetentionSeconds": self.snapshot_retention_s,
            "rejectedRetentionSeconds": self.rejected_retention_s,
        }
        if self.then_expire:
            d["thenExpire"] = True
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MaintenancePlan:
        try:
            d = json.loads(text)
            return cls(
                namespace=str(d["namespace"]),
                table=str(d["table"]),
                action=Action(d["action"]),
                run_id=str(d["runId"]),
                location=str(d["location"]),
                format=str(d.get("format", "parquet")),
                compression=str(d.get("compression", "snappy")),
                schema_version=int(d["schemaVersion"]),
                schema_fields=tuple(d["schemaFields"]),
                target_file_size_bytes=int(d["targetFileSizeBytes"]),
                min_input_files=int(d["minInputFiles"]),
                snapshot_retention_s=float(d["snapshotRetentionSeconds"]),
                rejected_retention_s=float(d["rejectedRetentionSeconds"]),
                then_expire=bool(d.get("thenExpire", False)),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidSpecError(f"maintenance plan: {e}") from e


def maintenance_run_id(table_uid: str, action: Action, token: str) -> str:
    """A stable id per (table, action, token): a scheduled slot's time or the annotation's
    token. The same token twice is the same run (a retried handler never starts two)."""
    digest = hashlib.sha256(f"{table_uid}:{action.value}:{token}".encode()).hexdigest()[:8]
    return f"{action.value}-{digest}"


def maintenance_job_name(table: str, run_id: str) -> str:
    stem = table[: MAX_NAME - len(run_id) - 1].rstrip("-.")
    return f"{stem}-{run_id}"


def build_maintenance_job(plan: MaintenancePlan, params: JobParams) -> dict[str, Any]:
    """The Job of one maintenance run; ``params`` as for an ingestion run (image, storage
    Secret, resources, deadlines, pod template), with the Table in place of the
    IngestionJob (``ingestion_job``: the Table's name, ``ingestion_job_uid``: its uid)."""
    job = build_job(
        replace(params, plan_json=plan.to_json(), source_secret=None, sql_url_secret=None)
    )
    meta = job["metadata"]
    meta["name"] = maintenance_job_name(plan.table, plan.run_id)
    labels = {k: v for k, v in meta["labels"].items() if k != "lakeop.io/ingestionjob"}
    labels[LABEL_MAINTENANCE] = plan.action.value
    meta["labels"] = labels
    meta["annotations"] = {"lakeop.io/run-id": plan.run_id}
    meta["ownerReferences"] = [
        {
            "apiVersion": API_VERSION,
            "kind": Kind.TABLE.value,
            "name": plan.table,
            "uid": params.ingestion_job_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    template = job["spec"]["template"]
    template["metadata"]["labels"] = {
        **{
            k: v for k, v in template["metadata"]["labels"].items() if k != "lakeop.io/ingestionjob"
        },
        LABEL_MAINTENANCE: plan.action.value,
    }
    (container,) = [c for c in template["spec"]["containers"] if c["name"] == "ingest"]
    container["command"] = ["lakeop", plan.action.value]
    container["args"] = [
        "--plan-env",
        PLAN_ENV,
        "--output",
        "json",
        "--termination-log",
        TERMINATION_LOG,
    ]
    return job
