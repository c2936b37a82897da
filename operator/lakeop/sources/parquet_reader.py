"""Parquet files: row groups in batches, strings checked for UTF-8 on the way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakeop.errors import InvalidSourceError
from lakeop.sources.batches import (
    MalformedRecordError,
    RawBatch,
    ReadContext,
    Reject,
    mentions,
    open_plain,
)
from lakeop.sources.files import SourceFile

_PARQUET_WORDS = ("parquet", "thrift", "magic", "footer", "deserializ", "corrupt", "page")


def read_parquet(src: SourceFile, ctx: ReadContext) -> Iterator[RawBatch]:
    with open_plain(src, ctx, random_access=True) as stream:
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
            if isinstance(e, OSError) and not mentions(e, _PARQUET_WORDS):
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
