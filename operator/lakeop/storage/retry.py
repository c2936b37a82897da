"""The one retry policy of lakeop's storage: which errors are transient, how often, how long.

Every :class:`~lakeop.storage.base.Storage` method runs through :meth:`RetryPolicy.call`, so
callers call storage plainly and a storage hiccup costs a few seconds instead of a failed run.
The layers below and above it keep their own jobs: the SDKs (pyarrow's S3 client, boto3) retry
a single HTTP request a few times (:data:`SDK_ATTEMPTS`); this policy retries the whole
operation when the SDK gives up; the Job's ``backoffLimit`` retries the whole run.

Transient means the store could not be reached or asked to slow down (connection refused or
reset, timeouts, 503 SlowDown, 500 InternalError): :func:`storage_error` turns those into
:class:`~lakeop.errors.StorageUnavailableError`; anything else (access denied, no such bucket,
a malformed request) is terminal and raised at once. A lost exclusive create is no error at
all: :meth:`~lakeop.storage.base.Storage.create_exclusive` answers False, never retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lakeop.errors import LakeopError, StorageUnavailableError, TerminalError

T = TypeVar("T")

#: attempts per HTTP request inside the SDKs (pyarrow S3, boto3) before this policy's turn
SDK_ATTEMPTS = 3
#: the ``delay`` a transient storage error suggests to whoever retries the run
TRANSIENT_DELAY_S = 5.0

#: substrings of an SDK or OS error message that mark it transient
TRANSIENT_MARKERS = (
    "curl",
    "Connection",
    "connect",
    "timed out",
    "Timeout",
    "Unable to",
    "NETWORK",
    "SlowDown",
    "SLOW_DOWN",
    "ServiceUnavailable",
    "SERVICE_UNAVAILABLE",
    "InternalError",
    "INTERNAL_FAILURE",
)


def is_transient(err: BaseException) -> bool:
    """Whether ``err`` (an OSError from pyarrow or the OS, an S3 client error) is worth
    retrying: the store was unreachable, overloaded or failed internally."""
    text = str(err)
    return any(marker in text for marker in TRANSIENT_MARKERS)


def storage_error(what: str, err: BaseException, *, transient: bool | None = None) -> LakeopError:
    """``err`` in lakeop's tree: :class:`StorageUnavailableError` when transient (by
    :func:`is_transient`, or as the caller knows, e.g. an SDK connection error), else a
    terminal ``StorageError``."""
    text = str(err)
    if is_transient(err) if transient is None else transient:
        return StorageUnavailableError(
            f"{what}: storage unavailable: {text}", delay=TRANSIENT_DELAY_S
        )
    return TerminalError(f"{what}: {text}", reason="StorageError")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry :class:`StorageUnavailableError` ``attempts - 1`` times, waiting
    ``base_delay * factor ** n`` seconds before retry ``n`` (0.5, 1, 2 s by default: a few
    seconds, well inside a claim's lease). ``sleep`` is injectable for tests."""

    attempts: int = 4
    base_delay: float = 0.5
    factor: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delays(self) -> list[float]:
        """The waits between attempts, in order."""
        return [self.base_delay * self.factor**n for n in range(self.attempts - 1)]

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried while it raises :class:`StorageUnavailableError`; the last
        attempt's error propagates. Any other exception propagates at once."""
        for delay in self.delays():
            try:
                return fn()
            except StorageUnavailableError:
                self.sleep(delay)
        return fn()


#: the policy every storage uses unless given another (tests pass one without sleeping)
DEFAULT_RETRY = RetryPolicy()
#: no retries: for callers that retry themselves
NO_RETRY = RetryPolicy(attempts=1)
