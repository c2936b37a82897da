"""No stream is closed while one of Arrow's readers may still read it.

Arrow's csv and json readers read ahead on I/O threads. When a reader stops early - the fast
path refusing a block and handing over to the careful one - closing its stream frees the
descriptor while a read-ahead may still use it, and the careful re-read that reuses it then
sees bytes out of place. Here the fast reader gives up a quarter into the file, with its
read-ahead running, and any read of a stream after its close is recorded.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeop.sources import batches, csv_reader, json_reader, readers
from lakeop.sources.files import SourceFile


class SlowFile(io.RawIOBase):
    def __init__(self, path: Path, late: list[str]) -> None:
        super().__init__()
        self.file = path.open("rb")
        self.late = late
        self.shut = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.shut:
            self.late.append("read after close")
        time.sleep(0.002)
        return self.file.read(-1 if size is None else size)

    def close(self) -> None:  # a descriptor's close: later reads still reach the OS
        self.shut = True


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_no_read_after_close_when_the_fast_reader_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    path = tmp_path / f"a.{fmt}"
    n = 40_000
    if fmt == "csv":
        # Z stamps under a timestampFormat: the fast parser refuses them
        zulu = ["", "Z"]
        body = "id,ts\n" + "".join(f"{i},2026-01-02T03:04:05{zulu[i > n // 4]}\n" for i in range(n))
        types: dict[str, pa.DataType] = {"id": pa.int64(), "ts": pa.timestamp("us")}
        options: dict[str, Any] = {"timestampFormat": "%Y-%m-%d %H:%M:%S"}
    else:
        # a number in a string field: the fast parser refuses it
        quote = ['"', ""]
        body = "".join(
            f'{{"id": {i}, "ts": {quote[i > n // 4]}{i}{quote[i > n // 4]}}}\n' for i in range(n)
        )
        types, options = {"id": pa.int64(), "ts": pa.string()}, {}
    path.write_text(body)
    late: list[str] = []
    files: list[SlowFile] = []

    def slow_open(src: SourceFile, env: Any, prefix: str, **kw: Any) -> SlowFile:
        # a plain file object: its close is a descriptor's close, which Arrow's own wrapper
        # does not see, so a read-ahead after it reaches the file as it would reach the OS
        files.append(SlowFile(path, late))
        return files[-1]

    monkeypatch.setattr(batches, "open_source", slow_open)
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_SIZE", 16 << 10)
    monkeypatch.setattr(json_reader, "JSON_BLOCK_SIZE", 16 << 10)
    ctx = readers.ReadContext(types, ("id", "ts"), "fail", 10_000, options, {}, "X_")
    src = SourceFile(f"file://{path}", path.stat().st_size, "1")
    ids: list[Any] = []
    for rb in readers.read_file(src, fmt, ctx):
        ids += rb.batch.column("id").to_pylist()
    time.sleep(0.3)  # any read-ahead still running finishes (or reads after a close)
    assert len(files) == 2  # the fast reader gave up and the careful one re-read the file
    assert late == []
    assert [int(i) for i in ids] == list(range(n))
    for f in files:
        f.file.close()
