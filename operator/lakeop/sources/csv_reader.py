"""CSV files: Arrow's multithreaded parser first, a careful single-threaded one after it.

The fast path converts straight to the declared types. A file whose timestamps carry
offsets is parsed again with offsets honoured (:func:`zoned`); any other refusal hands the
rest of the file, from the first row not yet delivered, to the careful path: every declared
column as raw bytes, malformed lines reported by line number, over-long lines replaced by
:class:`LineFence` so the policy applies to them too.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv

from lakeop.errors import InvalidSourceError
from lakeop.sources.batches import (
    MalformedRecordError,
    RawBatch,
    ReadContext,
    Reject,
    arrow_input,
    open_plain,
)
from lakeop.sources.files import SourceFile

#: bytes Arrow parses per block unless the run's ``LAKEOP_CSV_BLOCK_BYTES`` says otherwise;
#: a line must fit in one block (the careful reader fences longer ones off as rejects)
CSV_BLOCK_SIZE = 2 << 20
CSV_BLOCK_ENV = "LAKEOP_CSV_BLOCK_BYTES"


def block_size(ctx: ReadContext) -> int:
    """The CSV block size of this run: its environment's setting, else the default."""
    raw = ctx.env.get(CSV_BLOCK_ENV)
    return int(raw) if raw else CSV_BLOCK_SIZE


DEFAULT_NULLS = ["", "NULL", "null"]


def line_offset(ctx: ReadContext) -> int:
    header = 1 if ctx.options.get("header", True) else 0
    return header + int(ctx.options.get("skipRows", 0))


def _csv_read_options(ctx: ReadContext, skip: int, threads: bool) -> pcsv.ReadOptions:
    header = ctx.options.get("header", True)
    return pcsv.ReadOptions(
        use_threads=threads,
        block_size=block_size(ctx) if threads else 2 * block_size(ctx),
        skip_rows=int(ctx.options.get("skipRows", 0)),
        column_names=None if header else list(ctx.columns),
        skip_rows_after_names=skip,
    )


def _csv_convert(ctx: ReadContext, types: dict[str, pa.DataType]) -> pcsv.ConvertOptions:
    parsers: list[Any] = [pcsv.ISO8601]
    if "timestampFormat" in ctx.options:
        parsers.insert(0, ctx.options["timestampFormat"])
    return pcsv.ConvertOptions(
        column_types=types,
        null_values=list(ctx.options.get("nullValues", DEFAULT_NULLS)),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        timestamp_parsers=parsers,
    )


def _csv_parse(ctx: ReadContext, handler: Any = None) -> pcsv.ParseOptions:
    return pcsv.ParseOptions(
        delimiter=ctx.options.get("delimiter", ","),
        quote_char=ctx.options.get("quoteChar", '"'),
        newlines_in_values=False,
        invalid_row_handler=handler,
    )


def csv_fast(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[pa.RecordBatch]:
    try:
        reader = pcsv.open_csv(
            arrow_input(src, ctx),
            read_options=_csv_read_options(ctx, skip, True),
            parse_options=_csv_parse(ctx),
            convert_options=_csv_convert(ctx, ctx.fast_types),
        )
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e) and _blank(src, ctx):
            return
        if "Empty CSV file" in str(e):  # Arrow's words for a first line longer than a block
            raise InvalidSourceError(
                f"source {src.uri}: no complete line in the first {block_size(ctx):,} bytes "
                "(a header or line longer than the CSV block size)"
            ) from e
        raise
    check_header(src, reader.schema)
    yield from reader


def csv_careful(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[RawBatch]:
    rejects: list[Reject] = []
    offset = line_offset(ctx)

    delimiter = str(ctx.options.get("delimiter", ",")).encode()
    fence = LineFence(arrow_input(src, ctx), block_size(ctx), delimiter * _PLACEHOLDER_FIELDS)

    def on_invalid(row: Any) -> str:
        line = None if row.number is None else int(row.number)
        if row.actual_columns == _PLACEHOLDER_FIELDS + 1 and fence.long and row.text == fence.mark:
            reason = f"line longer than {fence.limit:,} bytes (the CSV block size)"
            text = fence.long.popleft().decode("utf-8", "backslashreplace")
        else:
            reason = f"expected {row.expected_columns} columns, got {row.actual_columns}"
            text = row.text
        rejects.append(Reject(line, reason, text))  # raising here would be swallowed
        return "skip"

    types = {c: pa.binary() for c in ctx.columns}
    try:
        reader = pcsv.open_csv(
            pa.PythonFile(fence, mode="r"),
            read_options=_csv_read_options(ctx, skip, False),
            parse_options=_csv_parse(ctx, on_invalid),
            convert_options=_csv_convert(ctx, types),
        )
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e) and _blank(src, ctx):
            return
        if "Empty CSV file" in str(e):  # Arrow's words for a first line longer than a block
            raise InvalidSourceError(
                f"source {src.uri}: no complete line in the first {block_size(ctx):,} bytes "
                "(a header or line longer than the CSV block size)"
            ) from e
        raise
    if fence.long and len(reader.schema) == _PLACEHOLDER_FIELDS + 1:
        raise InvalidSourceError(
            f"source {src.uri}: the CSV header is longer than {fence.limit:,} bytes"
        )
    check_header(src, reader.schema)
    done = skip
    for batch in reader:
        if rejects and ctx.policy == "fail":
            first = rejects[0]
            raise MalformedRecordError(src.uri, first.row, first.reason, first.text)
        # record numbers count data rows; parse-rejected rows are numbered by line
        yield RawBatch(batch, src.uri, done + 1, list(rejects), offset)
        rejects.clear()
        done += batch.num_rows
    if rejects and ctx.policy == "fail":
        first = rejects[0]
        raise MalformedRecordError(src.uri, first.row, first.reason, first.text)
    if rejects:
        empty = pa.RecordBatch.from_pylist([], schema=pa.schema([]))
        yield RawBatch(empty, src.uri, done + 1, list(rejects), offset)


_PLACEHOLDER_FIELDS = 4095
_SHOWN_BYTES = 200  # of an over-long line, in its report


class LineFence(io.RawIOBase):
    """The careful CSV reader's view of a stream: a line longer than ``limit`` bytes, which
    Arrow's parser cannot hold (it fails the whole file), is replaced by ``mark``, a line
    of empty fields that the parser reports as malformed at the same line number; its
    first bytes wait in :attr:`long` for the report. Lines are only ever this long at a
    chunk's edges (chunks are at most ``limit`` bytes), so the middle of a chunk passes
    through untouched."""

    def __init__(self, stream: pa.NativeFile, limit: int, mark: bytes) -> None:
        super().__init__()
        self.stream = stream
        self.limit = limit
        self.mark = mark.decode()
        self._mark = mark
        self.long: deque[bytes] = deque()
        self._line = b""  # the current line so far (of an over-long one: its first bytes)
        self._dropping = False  # inside an over-long line, until its newline
        self._out = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = self.limit if size is None or size < 0 else size
        while len(self._out) < want and not self._eof:
            self._fill()
        out = bytes(self._out[:want])
        del self._out[:want]
        return out

    def close(self) -> None:  # the stream is the Arrow reader's to let go (see arrow_input)
        super().close()

    def _fill(self) -> None:
        chunk = bytes(self.stream.read(self.limit))
        if not chunk:
            self._eof = True
            self._end_line(b"")
            return
        breaks = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
        if not breaks:
            self._extend(chunk)
            return
        first = min(breaks)  # Arrow ends a line at \n, \r or \r\n: so does the fence
        self._extend(chunk[:first])
        self._end_line(chunk[first : first + 1])
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        self._out += chunk[first + 1 : last + 1]
        self._extend(chunk[last + 1 :])

    def _end_line(self, newline: bytes) -> None:
        if self._dropping:  # its first bytes are reported before the parser meets the mark
            self.long.append(self._line)
            self._out += self._mark + newline
            self._dropping = False
        else:
            self._out += self._line + newline
        self._line = b""

    def _extend(self, part: bytes) -> None:
        if self._dropping:
            if len(self._line) < _SHOWN_BYTES:
                self._line = (self._line + part)[:_SHOWN_BYTES]
            return
        if len(self._line) + len(part) > self.limit:
            self._line = (self._line + part)[:_SHOWN_BYTES]
            self._dropping = True
            return
        self._line += part


def zoned(ctx: ReadContext, e: pa.ArrowInvalid) -> ReadContext | None:
    """The fast CSV path again, timestamps parsed as UTC with offsets, when naive parsing
    met stamps with offsets (``...Z``): files of such stamps stay on the fast path. None when
    there is nothing to change (the careful reader takes over)."""
    naive = {n for n, t in ctx.fast_types.items() if pa.types.is_timestamp(t) and t.tz is None}
    if not naive or "expected no zone offset" not in str(e) or "timestampFormat" in ctx.options:
        return None
    zoned = pa.timestamp("us", tz="UTC")
    types = {n: zoned if n in naive else t for n, t in ctx.fast_types.items()}
    return replace(ctx, fast_types=types)


def check_header(src: SourceFile, schema: pa.Schema) -> None:
    try:
        names = schema.names
    except UnicodeDecodeError as e:
        raise InvalidSourceError(f"source {src.uri}: the CSV header is not UTF-8: {e}") from e
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidSourceError(
            f"source {src.uri}: the CSV header names column {twice[0]!r} "
            f"{names.count(twice[0])} times (columns: {', '.join(names)})"
        )


def _blank(src: SourceFile, ctx: ReadContext) -> bool:
    """Whether the file holds nothing but whitespace (Arrow says "empty" for that and for a
    first line too long for its block alike)."""
    with open_plain(src, ctx) as stream:
        while chunk := stream.read(1 << 20):
            if bytes(chunk).strip():
                return False
    return True
