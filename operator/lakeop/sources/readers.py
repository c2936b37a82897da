"""Streaming readers for csv, newline-delimited json and parquet files.

Each reader yields :class:`RawBatch` values in bounded memory. The fast path lets Arrow's
multithreaded parsers convert straight to the declared primitive types. When Arrow refuses a
block (a value that does not convert, a malformed line, bytes that are not UTF-8), the
reader re-opens the file in *careful* mode from the first row not yet delivered: every
declared column arrives as raw text and :mod:`lakeop.engine.conform` finds the exact row,
field and value, applying the table's invalid-records policy. Nothing is read twice into the
output, and well-formed files never pay for the careful path. Each format lives in its own
module (:mod:`~lakeop.sources.csv_reader`, :mod:`~lakeop.sources.json_reader`,
:mod:`~lakeop.sources.parquet_reader`); this one chooses and chains them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from lakeop.errors import InvalidSourceError
from lakeop.sources.batches import (
    MalformedRecordError,
    RawBatch,
    ReadContext,
    Reject,
    mentions,
)
from lakeop.sources.csv_reader import csv_careful, csv_fast, line_offset, zoned
from lakeop.sources.files import SourceFile
from lakeop.sources.json_reader import json_careful, json_fast
from lakeop.sources.parquet_reader import read_parquet

__all__ = ["MalformedRecordError", "RawBatch", "ReadContext", "Reject", "read_file"]


def read_file(src: SourceFile, fmt: str, ctx: ReadContext) -> Iterator[RawBatch]:
    """The file's batches; a file that is not its format at all (corrupt compression or
    Parquet, a CSV header naming a column twice) raises InvalidSourceError naming it."""
    try:
        if fmt == "csv":
            yield from _with_fallback(src, ctx, csv_fast, csv_careful)
        elif fmt == "json":
            yield from _with_fallback(src, ctx, json_fast, json_careful)
        else:
            yield from read_parquet(src, ctx)
    except OSError as e:
        if src.compression is not None and mentions(e, _CODEC_WORDS):
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


def _with_fallback(
    src: SourceFile,
    ctx: ReadContext,
    fast: Callable[[SourceFile, ReadContext, int], Iterator[pa.RecordBatch]],
    careful: Callable[[SourceFile, ReadContext, int], Iterator[RawBatch]],
) -> Iterator[RawBatch]:
    done = 0
    offset = line_offset(ctx) if fast is csv_fast else 0
    attempt: ReadContext | None = ctx
    while attempt is not None:
        try:
            for batch in fast(src, attempt, done):
                yield RawBatch(batch, src.uri, done + 1, line_offset=offset)
                done += batch.num_rows
            return
        except pa.ArrowInvalid as e:
            attempt = zoned(attempt, e) if fast is csv_fast else None
    try:
        yield from careful(src, ctx, done)
    except pa.ArrowInvalid as e:  # what even the careful reader cannot parse past
        raise InvalidSourceError(f"source {src.uri}: cannot be read as {_format(fast)}: {e}") from e


def _format(fast: Callable[..., Any]) -> str:
    return "CSV" if fast is csv_fast else "JSON lines"
