"""Reading a compaction's input files in order, for :mod:`lakeop.engine.compaction`: small
files read whole a few at a time ahead of the writer, large ones streamed batch by batch,
each found at its final name or still staged while its run's publish moves it."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq

from lakeop.core.lake.maintenance import LiveFile
from lakeop.engine.publish import staged_path
from lakeop.errors import CommitConflictError
from lakeop.storage import Storage

#: batches read from an input file at a time (rows)
READ_BATCH_ROWS = 64 * 1024
#: inputs up to this size are read whole, by READ_THREADS threads, READ_AHEAD files ahead
WHOLE_FILE_BYTES = 8 * 1024 * 1024
READ_AHEAD = 8
READ_THREADS = 4


def read_inputs(
    storage: Storage, inputs: tuple[LiveFile, ...], runs: dict[str, str]
) -> Iterator[tuple[LiveFile, Iterator[pa.Table]]]:
    """Each input's batches, in order. Files under ``WHOLE_FILE_BYTES`` are read whole by a
    few threads ahead of the writer (most inputs of a compaction are tiny, and one read per
    file is what costs); larger ones are streamed batch by batch, with nothing read ahead.
    At most ``READ_AHEAD`` small files (so ``READ_AHEAD * WHOLE_FILE_BYTES`` on disk) are in
    memory besides the writer's buffer."""
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        pending: deque[tuple[LiveFile, Future[pa.Table] | None]] = deque()
        todo = iter(inputs)

        def top_up() -> None:
            while len(pending) < READ_AHEAD:
                f = next(todo, None)
                if f is None:
                    return
                small = f.bytes <= WHOLE_FILE_BYTES
                job = (
                    pool.submit(_read_whole, storage, f.path, runs.get(f.path, ""))
                    if small
                    else None
                )
                pending.append((f, job))
                if not small:
                    return  # a streamed file: read nothing beyond it meanwhile

        top_up()
        try:
            while pending:
                f, job = pending.popleft()
                if job is not None:
                    table = job.result()
                    top_up()
                    yield f, iter([table])
                else:
                    yield f, _stream(storage, f.path, runs.get(f.path, ""))
                    top_up()
        finally:
            for _, job in pending:
                if job is not None:
                    job.cancel()


def _read_whole(storage: Storage, path: str, run: str) -> pa.Table:
    with _open(storage, path, run) as src:
        return pq.ParquetFile(src).read(use_threads=False)


def _stream(storage: Storage, path: str, run: str) -> Iterator[pa.Table]:
    with _open(storage, path, run) as src:
        for batch in pq.ParquetFile(src).iter_batches(batch_size=READ_BATCH_ROWS):
            yield pa.Table.from_batches([batch])


def _open(storage: Storage, path: str, run: str) -> pa.NativeFile:
    """An input file: at its final name, or still staged if its run's publish is moving it."""
    for candidate in (path, staged_path(run, path) if run else None, path):
        if candidate is None:
            continue
        try:
            return storage.open_input(candidate)
        except FileNotFoundError:
            continue
    # neither in place nor staged: a commit removed it since the plan (an overwrite), and
    # the commit check would refuse this compaction anyway
    raise CommitConflictError(f"input file {path} was removed since the compaction started")
