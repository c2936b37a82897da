"""S3 and S3-compatible stores (MinIO, Ceph, ...) as lakeop storage.

Reads, writes and listings go through pyarrow's S3 filesystem. An exclusive create needs a
conditional PUT (``If-None-Match: *``), which pyarrow cannot send, so it goes through a boto3
client built from the same settings, on first use (a lake that never creates exclusively never
imports boto3). Credentials and endpoint come from environment variables named by a prefix
(``LAKEOP_STORAGE_AWS_ACCESS_KEY_ID`` ...), plain ``AWS_*`` as the fallback, never from a plan.
Directories are implied by keys, and a single PUT is atomic already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import pyarrow.fs as pafs

from lakeop.errors import TerminalError
from lakeop.storage.base import Storage
from lakeop.storage.retry import (
    DEFAULT_RETRY,
    SDK_ATTEMPTS,
    RetryPolicy,
    storage_error,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: S3 error codes saying a conditional create found the object already there
EXISTS_CODES = ("PreconditionFailed", "ConditionalRequestConflict")


def s3_options(env: Mapping[str, str], prefix: str) -> dict[str, object]:
    """S3FileSystem keyword arguments from ``<prefix>AWS_*`` variables (plain AWS_* fallback)."""

    def get(name: str) -> str | None:
        return env.get(prefix + name) or env.get(name) or None

    opts: dict[str, object] = {
        "connect_timeout": float(get("LAKEOP_S3_CONNECT_TIMEOUT") or 5),
        "request_timeout": float(get("LAKEOP_S3_REQUEST_TIMEOUT") or 60),
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=SDK_ATTEMPTS),
    }
    key, secret = get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        opts["access_key"], opts["secret_key"] = key, secret
        token = get("AWS_SESSION_TOKEN")
        if token:
            opts["session_token"] = token
    region = get("AWS_REGION") or get("AWS_DEFAULT_REGION")
    opts["region"] = region or "us-east-1"
    endpoint = get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
        opts["endpoint_override"] = parsed.netloc
        opts["scheme"] = parsed.scheme
    return opts


def object_store_options(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    """delta-rs ``storage_options`` from the same variables as :func:`s3_options`, with
    conditional puts (``If-None-Match``) as the commit's exclusive create: no lock service."""
    opts = s3_options(env, prefix)
    out = {"AWS_REGION": str(opts["region"]), "aws_conditional_put": "etag"}
    if "access_key" in opts:
        out["AWS_ACCESS_KEY_ID"] = str(opts["access_key"])
        out["AWS_SECRET_ACCESS_KEY"] = str(opts["secret_key"])
        if "session_token" in opts:
            out["AWS_SESSION_TOKEN"] = str(opts["session_token"])
    if "endpoint_override" in opts:
        out["AWS_ENDPOINT_URL"] = f"{opts['scheme']}://{opts['endpoint_override']}"
        out["AWS_ALLOW_HTTP"] = "true" if opts["scheme"] == "http" else "false"
        out["AWS_FORCE_PATH_STYLE"] = "true"
    return out


def boto3_options(env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """``boto3.client("s3", ...)`` keyword arguments from the same variables as
    :func:`s3_options` (endpoint, region, keys, timeouts); path-style addressing with a custom
    endpoint, as pyarrow uses."""
    opts = s3_options(env, prefix)
    kwargs: dict[str, Any] = {"region_name": opts["region"]}
    if "access_key" in opts:
        kwargs["aws_access_key_id"] = opts["access_key"]
        kwargs["aws_secret_access_key"] = opts["secret_key"]
        if "session_token" in opts:
            kwargs["aws_session_token"] = opts["session_token"]
    style: Literal["auto", "path"] = "auto"
    if "endpoint_override" in opts:
        kwargs["endpoint_url"] = f"{opts['scheme']}://{opts['endpoint_override']}"
        style = "path"
    import botocore.config  # noqa: PLC0415  (boto3 only for S3 conditional writes)

    kwargs["config"] = botocore.config.Config(
        connect_timeout=float(str(opts["connect_timeout"])),
        read_timeout=float(str(opts["request_timeout"])),
        retries={"max_attempts": SDK_ATTEMPTS, "mode": "standard"},
        s3={"addressing_style": style},
    )
    return kwargs


class S3Storage(Storage):
    """Objects under ``root`` (``bucket/prefix``) of an S3 filesystem."""

    def __init__(
        self,
        fs: pafs.FileSystem,
        root: str,
        url: str,
        s3_client: Callable[[], S3Client] | None = None,
        policy: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(fs, root, url, policy)
        self._s3_factory = s3_client
        self._s3: S3Client | None = None

    @classmethod
    def at(
        cls, url: str, env: Mapping[str, str], prefix: str, policy: RetryPolicy = DEFAULT_RETRY
    ) -> S3Storage:
        """The storage of ``s3://bucket/prefix`` (a bucket checked by the caller)."""
        parsed = urlparse(url)
        try:
            fs = pafs.S3FileSystem(**s3_options(env, prefix))
        except OSError as e:
            raise storage_error(f"connect {url}", e) from e
        root = f"{parsed.netloc}{parsed.path}".rstrip("/")
        settings = boto3_options(env, prefix)
        storage = cls(fs, root, f"s3://{root}", lambda: _s3_client(settings), policy)
        storage.format_options = object_store_options(env, prefix)
        return storage

    def _ensure_parent(self, full: str) -> None:
        pass  # keys imply their prefixes

    def _write_whole(self, rel: str, data: bytes) -> None:
        self._write(rel, data)  # one PUT: a reader sees the old object or the new one

    def _make_dirs(self, rel: str) -> None:
        pass

    def _client(self) -> S3Client:
        if self._s3 is None:
            if self._s3_factory is None:
                raise TerminalError(
                    f"create {self.url}: no S3 client for conditional writes", reason="StorageError"
                )
            self._s3 = self._s3_factory()
        return self._s3

    def _create(self, rel: str, data: bytes) -> bool:
        """One PUT with ``If-None-Match: *``; the store answers 412 PreconditionFailed (or
        409 ConditionalRequestConflict for a racing conditional PUT) when the object exists."""
        import botocore.exceptions  # noqa: PLC0415

        bucket, _, key = self.full(rel).partition("/")
        try:
            self._client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except botocore.exceptions.ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in EXISTS_CODES:
                return False
            raise storage_error(f"create {self.url_of(rel)}", e) from e
        except botocore.exceptions.BotoCoreError as e:  # endpoint unreachable, timeouts
            raise storage_error(f"create {self.url_of(rel)}", e, transient=True) from e
        return True


def _s3_client(settings: dict[str, Any]) -> S3Client:
    import boto3  # noqa: PLC0415  (imported on first use: local lakes never load it)

    return boto3.client("s3", **settings)
