"""Names, phases, reasons and label keys of the lakeop API, in one place.

Everything a user can see in ``kubectl get``/``describe`` (phases, condition reasons, event
reasons, labels) is spelled here once as a ``str`` enum, so handlers, the status builders and
tests cannot drift apart. Keys with their defaults sit side by side.
"""

from __future__ import annotations

from enum import StrEnum

GROUP = "lakeop.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

TABLES = "tables"
SCHEMA_VERSIONS = "schemaversions"
INGESTION_JOBS = "ingestionjobs"

FINALIZER = "lakeop.io/finalizer"

LABEL_INGESTION_JOB = "lakeop.io/ingestionjob"
LABEL_TABLE = "lakeop.io/table"
LABEL_RUN = "lakeop.io/run"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "lakeop"

#: Where a table keeps lakeop's own metadata (descriptor, commit log), relative to its location.
META_DIR = "_lakeop"
DESCRIPTOR_FILE = "table.json"

#: Env var in the Job pod carrying the rendered run plan (JSON, never secret values).
PLAN_ENV = "LAKEOP_PLAN"
STORAGE_ENV_PREFIX = "LAKEOP_STORAGE_"
SOURCE_ENV_PREFIX = "LAKEOP_SOURCE_"
SOURCE_SQL_URL_ENV = "LAKEOP_SOURCE_SQL_URL"
TERMINATION_LOG = "/dev/termination-log"
#: ``json`` or ``text``: the operator's log format, passed on to its Job pods
LOG_FORMAT_ENV = "LAKEOP_LOG_FORMAT"
SCRATCH_DIR = "/scratch"


class Kind(StrEnum):
    TABLE = "Table"
    SCHEMA_VERSION = "SchemaVersion"
    INGESTION_JOB = "IngestionJob"


class ConditionType(StrEnum):
    READY = "Ready"
    COMPLETE = "Complete"
    FAILED = "Failed"


class SchemaPhase(StrEnum):
    PENDING = "Pending"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class JobPhase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    SCHEDULED = "Scheduled"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class Reason(StrEnum):
    """CamelCase reasons for conditions and Events."""

    RECONCILED = "Reconciled"
    LOCATION_REFUSED = "LocationRefused"
    INVALID_SPEC = "InvalidSpec"
    STORAGE_UNAVAILABLE = "StorageUnavailable"
    DELETING = "Deleting"
    DATA_DELETED = "DataDeleted"
    DATA_RETAINED = "DataRetained"
    ACCEPTED = "Accepted"
    INCOMPATIBLE = "Incompatible"
    FORMAT_CANNOT_EVOLVE = "FormatCannotEvolve"
    INVALID_SCHEMA = "InvalidSchema"
    DUPLICATE_VERSION = "DuplicateVersion"
    TABLE_NOT_FOUND = "TableNotFound"
    TABLE_NOT_READY = "TableNotReady"
    NO_ACCEPTED_SCHEMA = "NoAcceptedSchema"
    WAITING_FOR_SCHEMA = "WaitingForSchema"
    SCHEMA_ADVANCED = "SchemaAdvanced"
    JOB_CREATED = "JobCreated"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"
