"""Storage behind one small interface, chosen by URL scheme (``file://`` or ``s3://``).

A :class:`Storage` is a pyarrow filesystem plus a root path. The engine and the commit log
only use relative paths under that root, so the commit protocol is written once and runs the
same on local disk and on any S3-compatible store. Credentials and endpoint come from
environment variables named by a prefix (``LAKEOP_STORAGE_AWS_ACCESS_KEY_ID`` ...), never
from the plan. :meth:`Storage.create_exclusive` (create only if absent) needs a conditional PUT,
which pyarrow's S3 filesystem cannot send: on S3 it goes through a boto3 client built from the
same variables. Network failures surface as :class:`~lakeop.errors.StorageUnavailableError`
(transient); :func:`retrying` retries them with backoff.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from lakeop.core.spec.tenancy import location_problem
from lakeop.errors import (
    InvalidSpecError,
    LakeopError,
    StorageUnavailableError,
    TerminalError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

#: S3 error codes saying a conditional create found the object already there
EXISTS_CODES = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class FileEntry:
    """A listed file: path relative to the storage root, size, and a change token."""

    path: str
    size: int
    mtime_ns: int | None


def s3_options(env: Mapping[str, str], prefix: str) -> dict[str, object]:
    """S3FileSystem keyword arguments from ``<prefix>AWS_*`` variables (plain AWS_* fallback)."""

    def get(name: str) -> str | None:
        return env.get(prefix + name) or env.get(name) or None

    opts: dict[str, object] = {
        "connect_timeout": float(get("LAKEOP_S3_CONNECT_TIMEOUT") or 5),
        "request_timeout": float(get("LAKEOP_S3_REQUEST_TIMEOUT") or 60),
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
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
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": style},
    )
    return kwargs


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


def wrap_error(what: str, err: BaseException) -> LakeopError:
    """Map an OSError from pyarrow/the OS to lakeop's tree: network trouble is transient."""
    text = str(err)
    transient_markers = (
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
    if any(m in text for m in transient_markers):
        return StorageUnavailableError(f"{what}: storage unavailable: {text}", delay=5.0)
    return TerminalError(f"{what}: {text}", reason="StorageError")  # e.g. access denied


class Storage:
    """A filesystem and a root; every method takes paths relative to the root."""

    def __init__(
        self,
        fs: pafs.FileSystem,
        root: str,
        url: str,
        s3_client: Callable[[], S3Client] | None = None,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url.rstrip("/")
        self.is_local = isinstance(fs, pafs.LocalFileSystem)
        self._s3_factory = s3_client
        self._s3: S3Client | None = None
        #: the table format of the table at this root, when the caller knows it (a run
        #: knows it from its plan); None: told from the files when asked
        self.table_format: str | None = None
        #: options for a table format library's own object-store client (delta-rs)
        self.format_options: dict[str, str] = {}

    def full(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def url_of(self, rel: str) -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def _guard(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except FileNotFoundError:
            raise
        except OSError as e:
            raise wrap_error(f"{what} {self.url}", e) from e

    def write_bytes(self, rel: str, data: bytes) -> None:
        def do() -> None:
            if self.is_local:
                self.fs.create_dir(os.path.dirname(self.full(rel)), recursive=True)
            with self.fs.open_output_stream(self.full(rel)) as out:
                out.write(data)

        self._guard("write", do)

    def write_bytes_atomic(self, rel: str, data: bytes) -> None:
        """Write so that a reader sees the whole content or nothing (a rename on local
        disk; a single PUT on S3 is atomic already)."""
        if not self.is_local:
            self.write_bytes(rel, data)
            return
        tmp = f"{os.path.dirname(rel)}/.tmp-{os.getpid()}-{os.path.basename(rel)}"
        self.write_bytes(tmp, data)
        self._guard("rename", lambda: self.fs.move(self.full(tmp), self.full(rel)))

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` holding ``data`` only if no object is there yet, atomically.

        True: this call created it; False: it already existed (whoever wrote it), and it is
        left untouched. A reader sees the whole content or nothing. Local disk: a temporary
        file hard-linked to the final name (``link`` fails if the name exists). S3: one PUT
        with ``If-None-Match: *``; the store answers 412 PreconditionFailed (or 409
        ConditionalRequestConflict for a racing conditional PUT) when the object exists.
        """
        if self.is_local:
            return self._guard("create", lambda: self._create_local(rel, data))
        return self._create_s3(rel, data)

    def _create_local(self, rel: str, data: bytes) -> bool:
        final = self.full(rel)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = os.path.join(
            os.path.dirname(final),
            f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{os.path.basename(final)}",
        )
        with open(tmp, "wb") as out:
            out.write(data)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def _client(self) -> S3Client:
        if self._s3 is None:
            if self._s3_factory is None:
                raise TerminalError(
                    f"create {self.url}: no S3 client for conditional writes", reason="StorageError"
                )
            self._s3 = self._s3_factory()
        return self._s3

    def _create_s3(self, rel: str, data: bytes) -> bool:
        import botocore.exceptions  # noqa: PLC0415

        bucket, _, key = self.full(rel).partition("/")
        try:
            self._client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except botocore.exceptions.ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in EXISTS_CODES:
                return False
            raise wrap_error(f"create {self.url_of(rel)}", e) from e
        except botocore.exceptions.BotoCoreError as e:  # endpoint unreachable, timeouts
            raise StorageUnavailableError(
                f"create {self.url_of(rel)}: storage unavailable: {e}", delay=5.0
            ) from e
        return True

    def read_bytes(self, rel: str) -> bytes | None:
        def do() -> bytes | None:
            try:
                with self.fs.open_input_stream(self.full(rel)) as f:
                    return bytes(f.read())
            except FileNotFoundError:
                return None

        return self._guard("read", do)

    def exists(self, rel: str) -> bool:
        info = self._guard("stat", lambda: self.fs.get_file_info(self.full(rel)))
        return bool(info.type != pafs.FileType.NotFound)

    def list_files(self, rel: str = "", recursive: bool = True) -> list[FileEntry]:
        """Files under ``rel`` (relative paths); a missing directory lists as empty."""
        base = self.full(rel)
        selector = pafs.FileSelector(base, allow_not_found=True, recursive=recursive)
        infos = self._guard("list", lambda: self.fs.get_file_info(selector))
        out = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            path = info.path[len(self.root) + 1 :] if self.root else info.path
            out.append(FileEntry(path, int(info.size or 0), info.mtime_ns))
        out.sort(key=lambda e: e.path)
        return out

    def list_dirs(self, rel: str) -> list[str]:
        selector = pafs.FileSelector(self.full(rel), allow_not_found=True, recursive=False)
        infos = self._guard("list", lambda: self.fs.get_file_info(selector))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def delete(self, rel: str) -> None:
        def do() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(self.full(rel))

        self._guard("delete", do)

    def delete_dir(self, rel: str) -> None:
        def do() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_dir(self.full(rel))

        self._guard("delete", do)

    def move(self, src: str, dst: str) -> None:
        """Rename on local disk; copy then delete on S3 (each object appears whole)."""

        def do() -> None:
            if self.is_local:
                self.fs.create_dir(os.path.dirname(self.full(dst)), recursive=True)
            self.fs.move(self.full(src), self.full(dst))

        self._guard("move", do)

    def open_input(self, rel: str) -> pa.NativeFile:
        return self._guard("open", lambda: self.fs.open_input_file(self.full(rel)))

    def make_dirs(self, rel: str) -> None:
        if self.is_local:
            self._guard("mkdir", lambda: self.fs.create_dir(self.full(rel), recursive=True))


def real_location(location: str) -> str:
    """Where a normalised ``file://`` location really leads, symbolic links resolved (as far
    as the path exists; a link that does not exist yet cannot lead anywhere); any other
    location unchanged. The edge half of :func:`lakeop.core.spec.tenancy.check_location`."""
    if not location.startswith("file://"):
        return location
    return "file://" + os.path.realpath(location.removeprefix("file://"))


def open_storage(url: str, env: Mapping[str, str] | None = None, prefix: str = "") -> Storage:
    """A :class:`Storage` for ``file:///abs/path``, ``/abs/path`` or ``s3://bucket/prefix``.

    Anything else is refused before any I/O, e.g. ``file://typo/lake`` (which a URL parser
    reads as host ``typo``, path ``/lake``) or a location with a ``..`` segment.
    """
    env = os.environ if env is None else env
    if url == "file://":  # the parent of file:///x.csv: the root directory
        url = "file:///"
    problem = location_problem(url)
    if problem:
        raise InvalidSpecError(f"storage URL {url!r}: {problem}")
    if url.startswith("/"):
        url = "file://" + url
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = parsed.path.rstrip("/") or "/"
        return Storage(pafs.LocalFileSystem(use_mmap=False), path, f"file://{path}")
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidSpecError(f"storage URL {url!r}: missing bucket")
        try:
            fs = pafs.S3FileSystem(**s3_options(env, prefix))
        except OSError as e:
            raise wrap_error(f"connect {url}", e) from e
        root = f"{parsed.netloc}{parsed.path}".rstrip("/")
        settings = boto3_options(env, prefix)
        storage = Storage(fs, root, f"s3://{root}", lambda: _s3_client(settings))
        storage.format_options = object_store_options(env, prefix)
        return storage
    raise InvalidSpecError(f"storage URL {url!r}: scheme must be file:// or s3://")


def retrying(fn: Callable[[], T], attempts: int = 4, base_delay: float = 0.5) -> T:
    """Call ``fn``, retrying :class:`StorageUnavailableError` with exponential backoff."""
    for attempt in range(attempts):
        try:
            return fn()
        except StorageUnavailableError:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * (2**attempt))
    raise AssertionError("unreachable")


def iter_chunks(stream: pa.NativeFile, size: int = 1 << 20) -> Iterator[bytes]:
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        yield bytes(chunk)


def _s3_client(settings: dict[str, Any]) -> S3Client:
    import boto3  # noqa: PLC0415  (imported on first use: local lakes never load it)

    return boto3.client("s3", **settings)
