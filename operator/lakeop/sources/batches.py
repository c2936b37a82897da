"""What every file reader hands the pipeline, and how readers open their sources.

A :class:`RawBatch` is one batch of a source file with what the pipeline needs to name each
record (record number, line) and the records the parser itself refused (:class:`Reject`).
:func:`arrow_input` is the one way to open a stream for Arrow's streaming readers; why it
never closes the stream itself is the reason this module exists apart from the readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakeop.sources.files import SourceFile, open_source


@dataclass
class Reject:
    """A record that could not even be parsed (the parser's view: line text, reason)."""

    row: int | None  # the line
    reason: str
    text: str
    record: int | None = None  # the record number, where the reader counts records


@dataclass
class RawBatch:
    batch: pa.RecordBatch
    source: str
    first_row: int  # 1-based record number of row 0 within the source
    rejects: list[Reject] = field(default_factory=list)
    line_offset: int = 0  # lines before the first record (csv header, skipRows)
    extra: tuple[str, ...] = ()  # source columns not in the schema, when not in ``batch``
    records: list[int] | None = None  # record number of each row, when not contiguous
    lines: list[int] | None = None  # line of each row, when the reader knows it

    def where(self, i: int) -> tuple[int, int | None]:
        """(record number, line or None) of row ``i``."""
        record = self.records[i] if self.records else self.first_row + i
        if self.lines:
            return record, self.lines[i]
        return record, record + self.line_offset if self.line_offset else None


@dataclass(frozen=True)
class ReadContext:
    """What a reader needs to know about the target: fast-path column types and policy."""

    fast_types: dict[str, pa.DataType]  # declared column -> Arrow type the parser can produce
    columns: tuple[str, ...]  # declared columns in schema order
    policy: str  # fail | skip | quarantine
    batch_rows: int
    options: Mapping[str, Any]
    env: Mapping[str, str]
    env_prefix: str


class MalformedRecordError(Exception):
    """A parse problem in careful mode with the policy ``fail`` (carries line and text)."""

    def __init__(
        self, source: str, row: int | None, reason: str, text: str, *, record: int | None = None
    ) -> None:
        if row is not None:
            where = f"line {row}"
        else:
            where = f"record {record}" if record is not None else "a line"
        super().__init__(f"source {source}: {where}: {reason}: {text[:200]!r}")


def arrow_input(src: SourceFile, ctx: ReadContext) -> pa.NativeFile:
    """The source stream for one of Arrow's streaming readers, which lakeop never
    closes itself.

    Arrow's csv and json readers read blocks ahead on its I/O threads and keep the stream by
    shared pointer. Closing it while the reader stops early (a block that does not convert,
    the policy ``fail``, a stop from downstream) frees the file descriptor while a read-ahead
    may still be using it; the next file opened - the careful re-read of the same file, as a
    rule - gets that descriptor, and the stray reads move its position, so the careful
    reader sees bytes out of place (values spliced from two lines, a header one column
    short). The stream is therefore closed by its last holder: when the reader's reference
    goes and Arrow's last read-ahead has finished.
    """
    return open_source(src, ctx.env, ctx.env_prefix)


def open_plain(src: SourceFile, ctx: ReadContext, *, random_access: bool = False) -> pa.NativeFile:
    """A stream the caller reads itself, in its own thread, and closes."""
    return open_source(src, ctx.env, ctx.env_prefix, random_access=random_access)


def mentions(e: BaseException, words: tuple[str, ...]) -> bool:
    text = str(e).lower()
    return any(w in text for w in words)


def printable(text: str) -> str:
    """A name as it can be reported: bytes that are not UTF-8 shown as escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
