"""Local disk (and any mounted volume) as lakeop storage.

Directories are real here, so writes make their parent first. A whole-object write is a
temporary file renamed over the name; an exclusive create is a temporary file hard-linked
to the name (``link`` fails when the name exists), so a reader never sees a partial object.
"""

from __future__ import annotations

import os
import secrets

import pyarrow.fs as pafs

from lakeop.storage.base import Storage
from lakeop.storage.retry import DEFAULT_RETRY, RetryPolicy


class LocalStorage(Storage):
    """A directory tree under ``root`` (an absolute path)."""

    is_local = True

    def __init__(
        self,
        fs: pafs.FileSystem,
        root: str,
        url: str,
        policy: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(fs, root, url, policy)

    @classmethod
    def at(cls, path: str, policy: RetryPolicy = DEFAULT_RETRY) -> LocalStorage:
        """The storage rooted at the absolute ``path``."""
        path = path.rstrip("/") or "/"
        return cls(pafs.LocalFileSystem(use_mmap=False), path, f"file://{path}", policy)

    def _ensure_parent(self, full: str) -> None:
        self.fs.create_dir(os.path.dirname(full), recursive=True)

    def _write_whole(self, rel: str, data: bytes) -> None:
        # a token of its own: two writers of one object in one process (the heartbeats of two
        # shares, say) must not rename each other's temporary file away
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp = f"{os.path.dirname(rel)}/.tmp-{token}-{os.path.basename(rel)}"
        self._write(tmp, data)
        self.fs.move(self.full(tmp), self.full(rel))

    def _create(self, rel: str, data: bytes) -> bool:
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

    def _make_dirs(self, rel: str) -> None:
        self.fs.create_dir(self.full(rel), recursive=True)


def real_location(location: str) -> str:
    """Where a normalised ``file://`` location really leads, symbolic links resolved (as far
    as the path exists; a link that does not exist yet cannot lead anywhere); any other
    location unchanged. The edge half of :func:`lakeop.core.spec.tenancy.check_location`."""
    if not location.startswith("file://"):
        return location
    return "file://" + os.path.realpath(location.removeprefix("file://"))
