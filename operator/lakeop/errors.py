"""One exception tree for the whole project.

Every error lakeop raises derives from :class:`LakeopError` and says whether retrying can
help: :class:`TerminalError` (bad input, a rejected schema, a missing object that will not
appear by itself) or :class:`TransientError` (storage or API unavailable, a conflict).
kopf handlers translate these into ``kopf.PermanentError`` / ``kopf.TemporaryError`` at the
edge; nothing below the handlers knows about kopf.
"""

from __future__ import annotations


class LakeopError(Exception):
    """Root of every lakeop error. ``reason`` is a CamelCase word for conditions and events."""

    reason: str = "Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class TerminalError(LakeopError):
    """Retrying will not help until the input changes."""

    reason = "Failed"


class TransientError(LakeopError):
    """A retry may succeed (network, storage, API server, conflicts)."""

    reason = "Unavailable"

    def __init__(self, message: str, *, reason: str | None = None, delay: float = 10.0) -> None:
        super().__init__(message, reason=reason)
        self.delay = delay


class InvalidSpecError(TerminalError):
    """A manifest does not follow the contract; the message names object, field and value."""

    reason = "InvalidSpec"


class InvalidSchemaError(TerminalError):
    """A schema definition is malformed (unknown type, missing precision, duplicate field...)."""

    reason = "InvalidSchema"


class IncompatibleSchemaError(TerminalError):
    """A schema version violates the table's compatibility mode."""

    reason = "Incompatible"


class SourceNotFoundError(TerminalError):
    """The source URI or glob matched nothing, or the SQL source cannot be queried."""

    reason = "SourceNotFound"


class InvalidSourceError(TerminalError):
    """A source file cannot be read as its format at all (corrupt Parquet or gzip, a CSV
    header naming a column twice); the message names the file."""

    reason = "InvalidSource"


class InvalidRecordsError(TerminalError):
    """A record does not fit the schema and the policy is ``fail``."""

    reason = "InvalidRecords"


class StorageUnavailableError(TransientError):
    """The lake's storage (local disk or S3) cannot be reached right now."""

    reason = "StorageUnavailable"


class CommitConflictError(TransientError):
    """Another writer's commit changed what this one depends on (a compaction's inputs, an
    overwrite's partitions); the commit is planned again on the new head."""

    reason = "CommitConflict"
