"""Names, phases, reasons and label keys of the lakeop API, in one place.

Everything a user can see in ``kubectl get``/``describe`` (phases, condition reasons, event
reasons, labels) is spelled here once as a ``str`` enum, so handlers, the status builders and
tests cannot drift apart. Keys with their defaults sit side by side.
"""

from __future__ import annotations

from enum import StrEnum

#: The API group, spelled here only: labels, annotations, the finalizer derive from it.
GROUP = "lakeop.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: Every environment variable lakeop reads starts with this (pods' own settings included).
ENV_PREFIX = "LAKEOP_"

TABLES = "tables"
SCHEMA_VERSIONS = "schemaversions"
INGESTION_JOBS = "ingestionjobs"

FINALIZER = f"{GROUP}/finalizer"

LABEL_INGESTION_JOB = f"{GROUP}/ingestionjob"
LABEL_TABLE = f"{GROUP}/table"
LABEL_RUN = f"{GROUP}/run"
ANNOTATION_RUN_ID = f"{GROUP}/run-id"
ANNOTATION_RERUN = f"{GROUP}/rerun"
ANNOTATION_CANCEL = f"{GROUP}/cancel"
#: a Table's maintenance Jobs carry it (value: the action), and ask for one run with it
LABEL_MAINTENANCE = f"{GROUP}/maintenance"
ANNOTATION_COMPACT = f"{GROUP}/compact"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "lakeop"

#: Where a table keeps lakeop's own metadata (descriptor, commit log), relative to its location.
META_DIR = "_lakeop"
DESCRIPTOR_FILE = "table.json"

#: Env var in the Job pod carrying the rendered run plan (JSON, never secret values).
PLAN_ENV = f"{ENV_PREFIX}PLAN"
#: A storage Secret's keys reach a run as ``LAKEOP_STORAGE_<KEY>``, a source Secret's as
#: ``LAKEOP_SOURCE_<KEY>``; the SQL source's URL as one variable of its own.
STORAGE_ENV_PREFIX = f"{ENV_PREFIX}STORAGE_"
SOURCE_ENV_PREFIX = f"{ENV_PREFIX}SOURCE_"
SOURCE_SQL_URL_ENV = f"{SOURCE_ENV_PREFIX}SQL_URL"
DEFAULT_LOCATION_ENV = f"{ENV_PREFIX}DEFAULT_LOCATION"
LAKE_MOUNT_PATH_ENV = f"{ENV_PREFIX}LAKE_MOUNT_PATH"
#: the local default root (``./lake`` under the working directory) of the operator and the
#: CLI alike, where neither ``--default-location`` nor ``LAKEOP_DEFAULT_LOCATION`` says one
LOCAL_DEFAULT_ROOT = "lake"
TERMINATION_LOG = "/dev/termination-log"
#: ``json`` or ``text``: the operator's log format, passed on to its Job pods
LOG_FORMAT_ENV = "LAKEOP_LOG_FORMAT"
SCRATCH_DIR = "/scratch"
#: the volume the operator adds to every Job pod for its lake (LAKEOP_LAKE_VOLUME)
LAKE_VOLUME = "lakeop-lake"


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
    LOCATION_NOT_MOUNTED = "LocationNotMounted"
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
    COMPACTED = "Compacted"
    EXPIRED = "Expired"
    MAINTENANCE_FAILED = "MaintenanceFailed"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"
