"""The one retry policy of storage: what is transient, how many attempts, which waits."""

from __future__ import annotations

import pytest

from lakeop.errors import (
    InvalidSpecError,
    LakeopError,
    StorageUnavailableError,
    TerminalError,
)
from lakeop.storage.retry import (
    DEFAULT_RETRY,
    NO_RETRY,
    SDK_ATTEMPTS,
    RetryPolicy,
    is_transient,
    storage_error,
)


class Flaky:
    """Fails ``failures`` times with ``error``, then answers ``"ok"``; counts its calls."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def policy() -> tuple[RetryPolicy, list[float]]:
    slept: list[float] = []
    return RetryPolicy(sleep=slept.append), slept


def test_default_policy_is_four_attempts_with_doubling_waits() -> None:
    assert DEFAULT_RETRY.attempts == 4
    assert DEFAULT_RETRY.delays() == [0.5, 1.0, 2.0]
    assert NO_RETRY.delays() == []
    assert SDK_ATTEMPTS == 3


@pytest.mark.parametrize("failures", [0, 1, 2, 3])
def test_transient_failures_are_retried_until_the_last_attempt(failures: int) -> None:
    p, slept = policy()
    fn = Flaky(failures, StorageUnavailableError("down", delay=5.0))
    assert p.call(fn) == "ok"
    assert fn.calls == failures + 1
    assert slept == [0.5, 1.0, 2.0][:failures]


def test_the_last_attempts_error_propagates() -> None:
    p, slept = policy()
    fn = Flaky(4, StorageUnavailableError("down", delay=5.0))
    with pytest.raises(StorageUnavailableError, match="down"):
        p.call(fn)
    assert fn.calls == 4 and slept == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "error",
    [
        TerminalError("denied", reason="StorageError"),
        InvalidSpecError("bad location"),
        FileNotFoundError("gone"),
        ValueError("a bug"),
    ],
)
def test_anything_else_is_raised_at_once(error: BaseException) -> None:
    p, slept = policy()
    fn = Flaky(1, error)
    with pytest.raises(type(error)):
        p.call(fn)
    assert fn.calls == 1 and slept == []


def test_no_retry_calls_once() -> None:
    fn = Flaky(1, StorageUnavailableError("down", delay=5.0))
    with pytest.raises(StorageUnavailableError):
        NO_RETRY.call(fn)
    assert fn.calls == 1


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("AWS Error NETWORK_CONNECTION during PutObject operation: curl code 7", True),
        ("When reading information for key 'k': AWS Error SLOW_DOWN during HeadObject", True),
        ("AWS Error SERVICE_UNAVAILABLE during ListObjectsV2 operation", True),
        ("AWS Error INTERNAL_FAILURE during GetObject operation", True),
        ("An error occurred (SlowDown) when calling the PutObject operation", True),
        ("An error occurred (ServiceUnavailable) when calling the PutObject operation", True),
        ("An error occurred (InternalError) when calling the PutObject operation", True),
        ("Connection reset by peer", True),
        ("connection refused", True),
        ("Read timed out", True),
        ("Timeout was reached", True),
        ("Unable to connect to endpoint", True),
        ("AWS Error ACCESS_DENIED during PutObject operation: Access Denied", False),
        ("An error occurred (NoSuchBucket) when calling the PutObject operation", False),
        ("An error occurred (AccessDenied) when calling the PutObject operation", False),
        ("[Errno 13] Permission denied: '/lake/t'", False),
        ("[Errno 28] No space left on device", False),
    ],
)
def test_which_errors_are_transient(message: str, transient: bool) -> None:
    assert is_transient(OSError(message)) is transient
    mapped = storage_error("write s3://b/t", OSError(message))
    assert isinstance(mapped, LakeopError)
    assert isinstance(mapped, StorageUnavailableError) is transient
    if transient:
        assert mapped.delay == 5.0 and "storage unavailable" in str(mapped)
    else:
        assert isinstance(mapped, TerminalError) and mapped.reason == "StorageError"
    assert str(mapped).startswith("write s3://b/t: ")


def test_the_caller_may_know_better() -> None:
    """An SDK's connection error class is transient whatever its text says."""
    assert isinstance(
        storage_error("create x", OSError("odd"), transient=True), StorageUnavailableError
    )
    assert isinstance(storage_error("create x", OSError("curl"), transient=False), TerminalError)
