"""The storage interface: a pyarrow filesystem plus a root, paths relative to that root.

:class:`Storage` holds what every backend shares: listing, reading, deleting and streaming
through the pyarrow filesystem, each operation retried by one
:class:`~lakeop.storage.retry.RetryPolicy` and its OSErrors mapped into lakeop's error tree.
A backend (:mod:`lakeop.storage.local`, :mod:`lakeop.storage.s3`) supplies what differs
between a disk and an object store: whether parent directories must exist, how a whole
object appears atomically, and how an object is created only if absent.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import pyarrow.fs as pafs

from lakeop.storage.retry import DEFAULT_RETRY, RetryPolicy, storage_error

T = TypeVar("T")


@dataclass(frozen=True)
class FileEntry:
    """A listed file: path relative to the storage root, size, and a change token."""

    path: str
    size: int
    mtime_ns: int | None


class Storage(abc.ABC):
    """A filesystem and a root; every method takes paths relative to the root.

    Each public method is one retried operation: a transient failure is retried by
    ``policy``, a missing file raises ``FileNotFoundError`` or answers None/False/empty as
    documented, anything else raises a terminal ``StorageError``.
    """

    #: whether paths are local file paths (for readers that take one, e.g. DuckDB)
    is_local: bool = False

    def __init__(
        self, fs: pafs.FileSystem, root: str, url: str, policy: RetryPolicy = DEFAULT_RETRY
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url.rstrip("/")
        self.policy = policy
        #: the table format of the table at this root, when the caller knows it (a run
        #: knows it from its plan); None: told from the files when asked
        self.table_format: str | None = None
        #: options for a table format library's own object-store client (delta-rs)
        self.format_options: dict[str, str] = {}

    def full(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def url_of(self, rel: str) -> str:
        return f"{self.url}/{rel}" if rel else self.url

    # ------------------------------------------------------------------ what backends add

    @abc.abstractmethod
    def _ensure_parent(self, full: str) -> None:
        """Make the directory ``full`` goes into (a no-op where directories are implied)."""

    @abc.abstractmethod
    def _write_whole(self, rel: str, data: bytes) -> None:
        """Write ``rel`` so that a reader sees the whole content or nothing."""

    @abc.abstractmethod
    def _create(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` only if absent, atomically; False when it exists already."""

    @abc.abstractmethod
    def _make_dirs(self, rel: str) -> None:
        """Make the directory ``rel`` (a no-op where directories are implied)."""

    # ------------------------------------------------------------------ the operations

    def _run(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` under the retry policy, its OSErrors in lakeop's tree (a missing file
        stays ``FileNotFoundError``: callers decide what absent means)."""

        def attempt() -> T:
            try:
                return fn()
            except FileNotFoundError:
                raise
            except OSError as e:
                raise storage_error(f"{what} {self.url}", e) from e

        return self.policy.call(attempt)

    def _write(self, rel: str, data: bytes) -> None:
        full = self.full(rel)
        self._ensure_parent(full)
        with self.fs.open_output_stream(full) as out:
            out.write(data)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._run("write", lambda: self._write(rel, data))

    def write_bytes_atomic(self, rel: str, data: bytes) -> None:
        """Write so that a reader sees the whole content or nothing (a rename on local
        disk; a single PUT on S3 is atomic already)."""
        self._run("write", lambda: self._write_whole(rel, data))

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` holding ``data`` only if no object is there yet, atomically.

        True: this call created it; False: it already existed (whoever wrote it), and it is
        left untouched. A reader sees the whole content or nothing. Only an unreachable store
        is retried; finding the object there is the answer False, at once. A retry after a
        create that succeeded unanswered also answers False: the callers' protocols read
        what is there and recognise their own content (docs/commit-protocol.md).
        """
        return self._run("create", lambda: self._create(rel, data))

    def read_bytes(self, rel: str) -> bytes | None:
        """The whole object, None if there is none."""

        def do() -> bytes | None:
            try:
                with self.fs.open_input_stream(self.full(rel)) as f:
                    return bytes(f.read())
            except FileNotFoundError:
                return None

        return self._run("read", do)

    def exists(self, rel: str) -> bool:
        info = self._run("stat", lambda: self.fs.get_file_info(self.full(rel)))
        return bool(info.type != pafs.FileType.NotFound)

    def list_files(self, rel: str = "", recursive: bool = True) -> list[FileEntry]:
        """Files under ``rel`` (relative paths); a missing directory lists as empty."""
        selector = pafs.FileSelector(self.full(rel), allow_not_found=True, recursive=recursive)
        infos = self._run("list", lambda: self.fs.get_file_info(selector))
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
        infos = self._run("list", lambda: self.fs.get_file_info(selector))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def delete(self, rel: str) -> None:
        """Remove one file; a missing one is no error."""

        def do() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(self.full(rel))

        self._run("delete", do)

    def delete_dir(self, rel: str) -> None:
        """Remove a directory and everything under it; a missing one is no error."""

        def do() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_dir(self.full(rel))

        self._run("delete", do)

    def move(self, src: str, dst: str) -> None:
        """Rename on local disk; copy then delete on S3 (each object appears whole)."""

        def do() -> None:
            self._ensure_parent(self.full(dst))
            self.fs.move(self.full(src), self.full(dst))

        self._run("move", do)

    def open_input(self, rel: str) -> pa.NativeFile:
        """A random-access reader (Parquet footers); the open is retried, the reads not."""
        return self._run("open", lambda: self.fs.open_input_file(self.full(rel)))

    def open_input_stream(self, rel: str) -> pa.NativeFile:
        """A sequential reader of the raw bytes (no decompression by extension)."""
        return self._run(
            "open", lambda: self.fs.open_input_stream(self.full(rel), compression=None)
        )

    def open_output(self, rel: str) -> pa.NativeFile:
        """A streaming writer of the raw bytes (a multipart upload on S3); the open is
        retried, the writes not: a failed stream fails its caller, who starts over."""

        def do() -> pa.NativeFile:
            full = self.full(rel)
            self._ensure_parent(full)
            return self.fs.open_output_stream(full, compression=None)

        return self._run("open", do)

    def make_dirs(self, rel: str) -> None:
        self._run("mkdir", lambda: self._make_dirs(rel))
