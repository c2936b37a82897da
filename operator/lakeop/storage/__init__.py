"""Storage behind one small interface, chosen by URL scheme (``file://`` or ``s3://``).

A :class:`~lakeop.storage.base.Storage` is a pyarrow filesystem plus a root path. The engine
and the commit log only use relative paths under that root, so the commit protocol is written
once and runs the same on local disk (:mod:`lakeop.storage.local`) and on any S3-compatible
store (:mod:`lakeop.storage.s3`). :func:`open_storage` picks the backend from the URL's scheme
(:data:`BACKENDS`). Every operation retries transient failures inside the storage, by the one
policy of :mod:`lakeop.storage.retry`, so callers call storage plainly; what is still raised
is :class:`~lakeop.errors.StorageUnavailableError` (transient: the store stayed unreachable)
or a terminal ``StorageError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from urllib.parse import urlparse

from lakeop.core.spec.tenancy import location_problem
from lakeop.errors import InvalidSpecError
from lakeop.storage.base import FileEntry, Storage
from lakeop.storage.local import LocalStorage, real_location
from lakeop.storage.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from lakeop.storage.s3 import S3Storage, iceberg_options, object_store_options

__all__ = [
    "BACKENDS",
    "DEFAULT_RETRY",
    "NO_RETRY",
    "FileEntry",
    "LocalStorage",
    "RetryPolicy",
    "S3Storage",
    "Storage",
    "iceberg_options",
    "object_store_options",
    "open_storage",
    "real_location",
]


def _local(url: str, _env: Mapping[str, str], _prefix: str, policy: RetryPolicy) -> Storage:
    return LocalStorage.at(urlparse(url).path, policy)


def _s3(url: str, env: Mapping[str, str], prefix: str, policy: RetryPolicy) -> Storage:
    if not urlparse(url).netloc:
        raise InvalidSpecError(f"storage URL {url!r}: missing bucket")
    return S3Storage.at(url, env, prefix, policy)


#: URL scheme -> backend constructor ``(url, env, prefix, policy)``
BACKENDS: dict[str, Callable[[str, Mapping[str, str], str, RetryPolicy], Storage]] = {
    "file": _local,
    "s3": _s3,
}


def open_storage(
    url: str,
    env: Mapping[str, str] | None = None,
    prefix: str = "",
    policy: RetryPolicy = DEFAULT_RETRY,
) -> Storage:
    """A :class:`Storage` for ``file:///abs/path``, ``/abs/path`` or ``s3://bucket/prefix``.

    Anything else is refused before any I/O, e.g. ``file://typo/lake`` (which a URL parser
    reads as host ``typo``, path ``/lake``) or a location with a ``..`` segment. ``env``
    (credentials, endpoint) defaults to the process environment, read here, at the call.
    """
    env = os.environ if env is None else env
    if url == "file://":  # the parent of file:///x.csv: the root directory
        url = "file:///"
    problem = location_problem(url)
    if problem:
        raise InvalidSpecError(f"storage URL {url!r}: {problem}")
    if url.startswith("/"):
        url = "file://" + url
    backend = BACKENDS.get(urlparse(url).scheme)
    if backend is None:
        raise InvalidSpecError(f"storage URL {url!r}: scheme must be file:// or s3://")
    storage = backend(url, env, prefix, policy)
    if not storage.is_local:
        storage.iceberg_options = iceberg_options(env, prefix)
    storage.iceberg_catalog_uri = env.get("LAKEOP_ICEBERG_CATALOG_URI") or None
    return storage
