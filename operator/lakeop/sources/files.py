"""Finding and opening source files: ``file://`` and ``s3://`` globs, ``https://`` files.

Each matched file becomes a :class:`SourceFile` with an identity (size plus mtime or ETag)
that the commit log records, so incremental runs can skip what an earlier commit took.
gzip and zstd inputs are recognised by extension and decompressed while streaming.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa

from lakeop.errors import SourceNotFoundError, StorageUnavailableError
from lakeop.storage import DEFAULT_RETRY, Storage, open_storage

COMPRESSION_BY_EXT = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourceFile:
    uri: str
    size: int
    version: str  # mtime in ns (local/S3 listing) or ETag (https); part of the identity

    @property
    def identity(self) -> tuple[str, int, str]:
        return (self.uri, self.size, self.version)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "size": self.size, "version": self.version}

    @property
    def compression(self) -> str | None:
        for ext, codec in COMPRESSION_BY_EXT.items():
            if self.uri.endswith(ext):
                return codec
        return None


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """``**`` crosses directories, ``*`` and ``?`` do not, ``[...]`` is a class."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1 : end].replace("!", "^", 1) + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def split_glob(uri: str) -> tuple[str, str | None]:
    """(base URL without globs, glob pattern relative to it or None for a single file)."""
    m = _GLOB_CHARS.search(uri)
    if not m:
        return uri, None
    base = uri[: uri.rfind("/", 0, m.start())]
    return base, uri[len(base) + 1 :]


def list_source_files(uri: str, env: Mapping[str, str], prefix: str) -> list[SourceFile]:
    """Every file the URI names, sorted; raises SourceNotFoundError when nothing matches."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        return [DEFAULT_RETRY.call(lambda: _http_file(uri))]
    base, pattern = split_glob(uri)
    if pattern is None:
        storage = open_storage(_parent(uri), env, prefix)
        name = uri.rsplit("/", 1)[1]
        matches = [e for e in storage.list_files("", recursive=False) if e.path == name]
        found = [SourceFile(uri, e.size, str(e.mtime_ns)) for e in matches]
    else:
        storage = open_storage(base, env, prefix)
        regex = glob_to_regex(pattern)
        recursive = "/" in pattern or "**" in pattern
        found = [
            SourceFile(storage.url_of(e.path), e.size, str(e.mtime_ns))
            for e in storage.list_files("", recursive=recursive)
            if regex.match(e.path)
        ]
    if not found:
        raise SourceNotFoundError(f"source {uri}: no file matches")
    return sorted(found, key=lambda f: f.uri)


def _parent(uri: str) -> str:
    return uri.rsplit("/", 1)[0]


def _http_file(uri: str) -> SourceFile:
    req = urllib.request.Request(uri, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            size = int(resp.headers.get("Content-Length") or 0)
            version = resp.headers.get("ETag") or resp.headers.get("Last-Modified") or ""
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise SourceNotFoundError(f"source {uri}: not found (HTTP 404)") from e
        raise StorageUnavailableError(f"source {uri}: HTTP {e.code}") from e
    except OSError as e:
        raise StorageUnavailableError(f"source {uri}: {e}") from e
    return SourceFile(uri, size, version)


def open_source(
    source: SourceFile, env: Mapping[str, str], prefix: str, *, random_access: bool = False
) -> pa.NativeFile:
    """An input stream over the (decompressed) file content; seekable if ``random_access``
    (parquet) and the file is not compressed."""
    raw: pa.NativeFile
    if urlparse(source.uri).scheme in ("http", "https"):
        try:
            resp = urllib.request.urlopen(source.uri, timeout=60)
        except OSError as e:
            raise StorageUnavailableError(f"source {source.uri}: {e}") from e
        raw = pa.PythonFile(resp, mode="r")
    else:
        storage: Storage = open_storage(_parent(source.uri), env, prefix)
        try:
            name = source.uri.rsplit("/", 1)[1]
            if random_access and source.compression is None:
                return storage.open_input(name)
            raw = storage.open_input_stream(name)
        except FileNotFoundError as e:
            raise SourceNotFoundError(f"source {source.uri}: disappeared while reading") from e
    codec = source.compression
    return pa.CompressedInputStream(raw, codec) if codec else raw
