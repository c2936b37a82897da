"""Streaming readers for csv, newline-delimited json and parquet files.

Each reader yields :class:`RawBatch` values in bounded memory. The fast path lets Arrow's
multithreaded parsers convert straight to the declared primitive types. When Arrow refuses a
block (a value that does not convert, a malformed line, bytes that are not UTF-8), the
reader re-opens the file in *careful* mode from the first row not yet delivered: every
declared column arrives as raw text and :mod:`lakeop.engine.conform` finds the exact row,
field and value, applying the table's invalid-records policy. Nothing is read twice into the
output, and well-formed files never pay for the careful path.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from lakeop.errors import InvalidSourceError
from lakeop.sources.files import SourceFile, open_source

CSV_BLOCK_SIZE = int(os.environ.get("LAKEOP_CSV_BLOCK_BYTES", str(2 << 20)))
JSON_BLOCK_SIZE = 4 << 20
DEFAULT_NULLS = ["", "NULL", "null"]
CAREFUL_BATCH_ROWS = 65_536


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


def read_file(src: SourceFile, fmt: str, ctx: ReadContext) -> Iterator[RawBatch]:
    """The file's batches; a file that is not its format at all (corrupt compression or
    Parquet, a CSV header naming a column twice) raises InvalidSourceError naming it."""
    try:
        if fmt == "csv":
            yield from _with_fallback(src, ctx, _csv_fast, _csv_careful)
        elif fmt == "json":
            yield from _with_fallback(src, ctx, _json_fast, _json_careful)
        else:
            yield from _parquet(src, ctx)
    except OSError as e:
        if src.compression is not None and _mentions(e, _CODEC_WORDS):
            raise InvalidSourceError(
                f"source {src.uri}: not valid {src.compression} data: {e}"
            ) from e
        raise


_CODEC_WORDS = (
    "inflate",
    "deflate",
    "decompress",
    "compressed stream",
    "zlib",
    "gzip",
    "zstd",
    "frame",
)
_PARQUET_WORDS = ("parquet", "thrift", "magic", "footer", "deserializ", "corrupt", "page")


def _mentions(e: BaseException, words: tuple[str, ...]) -> bool:
    text = str(e).lower()
    return any(w in text for w in words)


Reader = Callable[[SourceFile, ReadContext, int], Iterator[pa.RecordBatch]]


def _with_fallback(
    src: SourceFile,
    ctx: ReadContext,
    fast: Callable[[SourceFile, ReadContext, int], Iterator[pa.RecordBatch]],
    careful: Callable[[SourceFile, ReadContext, int], Iterator[RawBatch]],
) -> Iterator[RawBatch]:
    done = 0
    offset = _line_offset(ctx) if fast is _csv_fast else 0
    attempt: ReadContext | None = ctx
    while attempt is not None:
        try:
            for batch in fast(src, attempt, done):
                yield RawBatch(batch, src.uri, done + 1, line_offset=offset)
                done += batch.num_rows
            return
        except pa.ArrowInvalid as e:
            attempt = _zoned(attempt, e) if fast is _csv_fast else None
    try:
        yield from careful(src, ctx, done)
    except pa.ArrowInvalid as e:  # what even the careful reader cannot parse past
        raise InvalidSourceError(f"source {src.uri}: cannot be read as {_format(fast)}: {e}") from e


def _zoned(ctx: ReadContext, e: pa.ArrowInvalid) -> ReadContext | None:
    """The fast CSV path again, timestamps parsed as UTC with offsets, when naive parsing
    met stamps with offsets (``...Z``): files of such stamps stay on the fast path. None when
    there is nothing to change (the careful reader takes over)."""
    naive = {n for n, t in ctx.fast_types.items() if pa.types.is_timestamp(t) and t.tz is None}
    if not naive or "expected no zone offset" not in str(e) or "timestampFormat" in ctx.options:
        return None
    zoned = pa.timestamp("us", tz="UTC")
    types = {n: zoned if n in naive else t for n, t in ctx.fast_types.items()}
    return replace(ctx, fast_types=types)


def _format(fast: Callable[..., Any]) -> str:
    return "CSV" if fast is _csv_fast else "JSON lines"


def _check_header(src: SourceFile, schema: pa.Schema) -> None:
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


def arrow_input(src: SourceFile, ctx: ReadContext) -> pa.NativeFile:
    """The source stream for one of Arrow's streaming readers, which this module never
    closes itself.

    Arrow's csv and json readers read blocks ahead on its I/O threads and keep the stream by
    shared pointer. Closing it while the reader stops early (a block that does not convert,
    the policy ``fail``, a stop from downstream) frees the file descriptor while a read-ahead
    may still be using it; the next file opened - the careful re-read of the same file, as a
    rule - gets that descriptor, and the stray reads move its position, so the careful
    reader sees bytes out of place (values spliced from two lines, a header one column
    short). The stream is therefore closed by its last holder: when this module's reference
    goes and Arrow's last read-ahead has finished.
    """
    return open_source(src, ctx.env, ctx.env_prefix)


# ---------------------------------------------------------------------------- csv


def _line_offset(ctx: ReadContext) -> int:
    header = 1 if ctx.options.get("header", True) else 0
    return header + int(ctx.options.get("skipRows", 0))


def _csv_read_options(ctx: ReadContext, skip: int, threads: bool) -> pcsv.ReadOptions:
    header = ctx.options.get("header", True)
    return pcsv.ReadOptions(
        use_threads=threads,
        block_size=CSV_BLOCK_SIZE if threads else 2 * CSV_BLOCK_SIZE,
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


def _csv_fast(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[pa.RecordBatch]:
    try:
        reader = pcsv.open_csv(
            arrow_input(src, ctx),
            read_options=_csv_read_options(ctx, skip, True),
            parse_options=_csv_parse(ctx),
            convert_options=_csv_convert(ctx, ctx.fast_types),
        )
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            return
        raise
    _check_header(src, reader.schema)
    yield from reader


def _csv_careful(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[RawBatch]:
    rejects: list[Reject] = []
    offset = _line_offset(ctx)

    delimiter = str(ctx.options.get("delimiter", ",")).encode()
    fence = LineFence(arrow_input(src, ctx), CSV_BLOCK_SIZE, delimiter * _PLACEHOLDER_FIELDS)

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
        if "Empty CSV file" in str(e):
            return
        raise
    _check_header(src, reader.schema)
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
        self._mark = mark + b"\n"
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
        first = chunk.find(b"\n")
        if first < 0:
            self._extend(chunk)
            return
        self._extend(chunk[:first])
        self._end_line(b"\n")
        last = chunk.rfind(b"\n")
        self._out += chunk[first + 1 : last + 1]
        self._extend(chunk[last + 1 :])

    def _end_line(self, newline: bytes) -> None:
        if self._dropping:  # its first bytes are reported before the parser meets the mark
            self.long.append(self._line)
            self._out += self._mark if newline else self._mark[:-1]
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


# ---------------------------------------------------------------------------- json


def _json_fast(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[pa.RecordBatch]:
    assert skip == 0  # Arrow's json reader cannot skip records; it is only ever tried once
    schema = pa.schema([pa.field(n, t) for n, t in ctx.fast_types.items()])
    try:
        reader = pjson.open_json(
            arrow_input(src, ctx),
            read_options=pjson.ReadOptions(use_threads=True, block_size=JSON_BLOCK_SIZE),
            parse_options=pjson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer"
            ),
        )
    except pa.ArrowInvalid as e:
        if "Empty" in str(e):
            return
        raise
    strings = [n for n, t in ctx.fast_types.items() if pa.types.is_string(t)]
    for batch in reader:
        try:
            names = batch.schema.names
        except UnicodeDecodeError as e:  # a key that is not UTF-8: the careful reader names it
            raise pa.ArrowInvalid(f"a field name is not UTF-8: {e}") from e
        for name in strings:
            if name in names:
                batch.column(name).validate(full=True)  # Arrow's json parser passes bad UTF-8
        yield batch


def _json_careful(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[RawBatch]:
    """Record by record with the json module: exact line numbers, any value shape.

    Records are counted as the fast reader counts them: every JSON value in the file, however
    the lines fall (blank lines hold none, a line may hold several), so resuming after the
    ``skip`` records the fast reader delivered neither reads one twice nor skips one.
    Invalid JSON ends its line's records (the rest of the line is one rejected record).
    """
    out = _JsonBatcher(src.uri, ctx)
    record = 0
    with open_source(src, ctx.env, ctx.env_prefix) as stream:
        for line_no, raw in enumerate(_lines(stream), start=1):
            text = raw.decode("utf-8", "surrogateescape")  # bad bytes kept, found per field
            pos = _skip_space(text, 0)
            while pos < len(text):
                record += 1
                try:
                    value, pos = _DECODER.raw_decode(text, pos)
                except ValueError as e:
                    if record > skip:
                        out.reject(record, line_no, f"invalid JSON ({e})", text[pos:])
                    break
                pos = _skip_space(text, pos)
                if record > skip:
                    out.add(record, line_no, value, text)
            yield from out.full()
    yield from out.rest()


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\r\n]*")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _skip_space(text: str, pos: int) -> int:
    m = _SPACE.match(text, pos)
    return m.end() if m else pos


class _JsonBatcher:
    """Careful JSON records collected into text batches (with their record and line
    numbers) and parse rejects; the policy ``fail`` raises at the first reject."""

    def __init__(self, uri: str, ctx: ReadContext) -> None:
        self.uri = uri
        self.ctx = ctx
        self.wanted = set(ctx.columns)
        self.rows: list[dict[str, Any]] = []
        self.records: list[int] = []
        self.lines: list[int] = []
        self.rejects: list[Reject] = []
        self.extra: set[str] = set()

    def reject(self, record: int, line: int, reason: str, text: str) -> None:
        shown = _printable(text)
        if self.ctx.policy == "fail":
            raise MalformedRecordError(self.uri, line, reason, shown)
        self.rejects.append(Reject(line, reason, shown, record=record))

    def add(self, record: int, line: int, value: Any, text: str) -> None:
        if not isinstance(value, dict):
            self.reject(record, line, "invalid JSON (not a JSON object)", text)
            return
        bad = next((c for c in self.ctx.columns if c in value and _has_surrogate(value[c])), None)
        if bad is not None:
            self.reject(record, line, f"field {bad!r}: invalid UTF-8 in a string", text)
            return
        self.rows.append({c: _as_text(value[c]) for c in self.ctx.columns if c in value})
        self.records.append(record)
        self.lines.append(line)
        self.extra.update(_printable(k) for k in value if k not in self.wanted)

    def full(self) -> Iterator[RawBatch]:
        if len(self.rows) >= CAREFUL_BATCH_ROWS:
            yield from self.rest()

    def rest(self) -> Iterator[RawBatch]:
        if not self.rows and not self.rejects:
            return
        first = self.records[0] if self.records else self.rejects[0].record or 1
        yield RawBatch(
            _text_batch(self.rows, self.ctx.columns),
            self.uri,
            first,
            self.rejects,
            extra=tuple(self.extra),
            records=self.records,
            lines=self.lines,
        )
        self.rows, self.records, self.lines, self.rejects = [], [], [], []


def _printable(text: str) -> str:
    """A name as it can be reported: bytes that are not UTF-8 shown as escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _has_surrogate(value: Any) -> bool:
    """Whether a parsed value holds text that is not UTF-8 (bytes kept by surrogateescape,
    or a lone surrogate escape such as ``\\udc80``), in any string or key at any depth."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _lines(stream: pa.NativeFile) -> Iterator[bytes]:
    pending = b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        pending += bytes(chunk)
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def _as_text(value: Any) -> str | None:
    """Careful mode hands every value to conform as text (nested values as JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _text_batch(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pa.RecordBatch:
    present = [c for c in columns if any(c in r for r in rows)]
    arrays = [pa.array([r.get(c) for r in rows], pa.string()) for c in present]
    return pa.RecordBatch.from_arrays(arrays, names=present)


# ---------------------------------------------------------------------------- parquet


def _parquet(src: SourceFile, ctx: ReadContext) -> Iterator[RawBatch]:
    with open_source(src, ctx.env, ctx.env_prefix, random_access=True) as stream:
        data = stream if src.compression is None else pa.BufferReader(stream.read())
        done = 0
        try:
            pf = pq.ParquetFile(data)
            wanted = [c for c in ctx.columns if c in pf.schema_arrow.names]
            extra = [c for c in pf.schema_arrow.names if c not in ctx.columns]
            for batch in pf.iter_batches(batch_size=max(ctx.batch_rows, 65_536), columns=wanted):
                yield _utf8_checked(batch, src.uri, done, ctx.policy, tuple(extra))
                done += batch.num_rows
        except (pa.ArrowInvalid, OSError) as e:
            if isinstance(e, OSError) and not _mentions(e, _PARQUET_WORDS):
                raise  # storage, not the file
            raise InvalidSourceError(
                f"source {src.uri}: not a readable Parquet file (after {done} rows): {e}"
            ) from e


def _utf8_checked(
    batch: pa.RecordBatch, uri: str, done: int, policy: str, extra: tuple[str, ...]
) -> RawBatch:
    """A Parquet batch with the records whose strings are not UTF-8 taken out as rejects:
    Parquet readers pass such bytes through, and a lake holding them is one DuckDB refuses."""
    bad: dict[int, str] = {}
    for name in batch.schema.names:
        col = batch.column(name)
        if not _has_text(col.type):
            continue
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for i in range(len(col)):
            try:
                col[i].as_py()
            except UnicodeDecodeError:
                bad.setdefault(i, name)
    if not bad:
        return RawBatch(batch, uri, done + 1, extra=extra)
    rejects = []
    for i, name in sorted(bad.items()):
        reason = f"field {name!r}: bytes that are not UTF-8 in a string"
        text = _shown_row(batch, i)
        if policy == "fail":
            raise MalformedRecordError(uri, None, reason, text, record=done + 1 + i)
        rejects.append(Reject(None, reason, text, record=done + 1 + i))
    keep = [i for i in range(batch.num_rows) if i not in bad]
    kept = batch.take(pa.array(keep, pa.int64()))
    return RawBatch(kept, uri, done + 1, rejects, extra=extra, records=[done + 1 + i for i in keep])


def _has_text(t: pa.DataType) -> bool:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_text(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return True  # string keys
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_text(t.value_type)
    return False


def _shown_row(batch: pa.RecordBatch, i: int) -> str:
    """One record for a report, bytes that are not UTF-8 shown as escapes."""
    parts = []
    for name in batch.schema.names:
        col = batch.column(name)
        if _has_text(col.type):
            value: Any = col.slice(i, 1).cast(_as_binary(col.type)).to_pylist()[0]
        else:
            value = col[i].as_py()
        parts.append(f"{name}={value!r}")
    return ", ".join(parts)


def _as_binary(t: pa.DataType) -> pa.DataType:
    """``t`` with its strings as binary (casts without UTF-8 checks)."""
    if pa.types.is_string(t):
        return pa.binary()
    if pa.types.is_large_string(t):
        return pa.large_binary()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _as_binary(f.type), f.nullable) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_as_binary(t.key_type), _as_binary(t.item_type))
    if pa.types.is_list(t):
        return pa.list_(_as_binary(t.value_type))
    if pa.types.is_large_list(t):
        return pa.large_list(_as_binary(t.value_type))
    return t


def extra_columns(batch: pa.RecordBatch, columns: tuple[str, ...]) -> list[str]:
    return [n for n in batch.schema.names if n not in columns]
