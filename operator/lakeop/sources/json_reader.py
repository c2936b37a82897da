"""JSON lines: Arrow's parser first, Python's json module record by record after it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.json as pjson

from lakeop.sources.batches import (
    MalformedRecordError,
    RawBatch,
    ReadContext,
    Reject,
    arrow_input,
    open_plain,
    printable,
)
from lakeop.sources.files import SourceFile

JSON_BLOCK_SIZE = 4 << 20
CAREFUL_BATCH_ROWS = 65_536


def json_fast(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[pa.RecordBatch]:
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
        if "Empty" in str(e) and _blank(src, ctx):
            return
        raise  # the careful reader takes over (also for a first line longer than a block)
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


def json_careful(src: SourceFile, ctx: ReadContext, skip: int) -> Iterator[RawBatch]:
    """Record by record with the json module: exact line numbers, any value shape.

    Records are counted as the fast reader counts them: every JSON value in the file, however
    the lines fall (blank lines hold none, a line may hold several), so resuming after the
    ``skip`` records the fast reader delivered neither reads one twice nor skips one.
    Invalid JSON ends its line's records (the rest of the line is one rejected record).
    """
    out = _JsonBatcher(src.uri, ctx)
    record = 0
    with open_plain(src, ctx) as stream:
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
        shown = printable(text)
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
        self.extra.update(printable(k) for k in value if k not in self.wanted)

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


def _blank(src: SourceFile, ctx: ReadContext) -> bool:
    with open_plain(src, ctx) as stream:
        while chunk := stream.read(1 << 20):
            if bytes(chunk).strip():
                return False
    return True


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
