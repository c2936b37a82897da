"""From raw source batches to valid, keyed batches: the invalid-records policy lives here.

``fail`` stops the run at the first bad record with a message naming source, record/line,
field and value; ``skip`` counts and drops; ``quarantine`` also writes the record and the
reason to ``_rejected/<run>/``. Extra source columns are collected for the run's report.
Progress lines (rows so far, rate) go to a logger on the first batch, then at most every few
seconds (a run whose source then stalls has shown it is reading).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakeop.core.schema.types import Schema
from lakeop.engine.conform import conform
from lakeop.engine.partition import Partitioner
from lakeop.engine.write import Quarantine
from lakeop.errors import InvalidRecordsError
from lakeop.sources.readers import RawBatch, Reject

PROGRESS_EVERY_S = 5.0
#: where a run's progress lines go unless its caller names another logger (or none)
PROGRESS_LOG = logging.getLogger("lakeop.engine.progress")


@dataclass
class Counters:
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    extra_columns: set[str] = field(default_factory=set)


@dataclass
class Pipeline:
    schema: Schema
    target: pa.Schema
    partitioner: Partitioner
    policy: str
    quarantine: Quarantine | None
    progress: logging.Logger | None
    clock: Callable[[], float] = time.monotonic
    counters: Counters = field(default_factory=Counters)
    #: each source file's size (a file source): progress counts a file's bytes done once
    #: batches of the next file arrive, and the whole at the end
    sizes: Mapping[str, int] = field(default_factory=dict)

    def run(self, raw: Iterator[RawBatch]) -> Iterator[pa.RecordBatch]:
        started = self.clock()
        last = float("-inf")  # the first batch is reported at once
        columns = set(self.schema.names())
        done: set[str] = set()
        current: str | None = None
        for rb in raw:
            if rb.source != current:
                if current is not None:
                    done.add(current)
                current = rb.source
            self.counters.extra_columns.update(
                n for n in (*rb.batch.schema.names, *rb.extra) if n not in columns
            )
            for rej in rb.rejects:
                self._reject_parse(rb, rej)
            n = rb.batch.num_rows
            if n:
                self.counters.rows_read += n
                result = conform(rb.batch, self.schema, self.target)
                if result.invalid:
                    self._invalid(rb, result.invalid)
                good = result.batch
                if good.num_rows:
                    self.counters.rows_written += good.num_rows
                    yield self.partitioner.add_keys(good)
            now = self.clock()
            if self.progress is not None and now - last >= PROGRESS_EVERY_S:
                last = now
                self._report(now - started, sum(self.sizes.get(s, 0) for s in done))
        if self.progress is not None:  # the last line: everything read
            self._report(self.clock() - started, sum(self.sizes.values()))
        if self.quarantine is not None:
            self.quarantine.flush()

    def _report(self, seconds: float, bytes_done: int) -> None:
        """One progress line: rows, rate and, for files, bytes done of the total and the
        percentage (its fields also as the record's extras, for a progress bar)."""
        assert self.progress is not None
        c = self.counters
        rate = c.rows_read / max(seconds, 1e-9)
        total = sum(self.sizes.values())
        extra: dict[str, Any] = {
            "rowsRead": c.rows_read,
            "rowsRejected": c.rows_rejected,
            "rowsPerSecond": round(rate),
            "seconds": round(seconds, 3),
        }
        if total:
            extra.update(bytesDone=bytes_done, bytesTotal=total, percent=100 * bytes_done // total)
            self.progress.info(
                "%s rows read, %s rejected, %s rows/s, %s%% (%s of %s bytes)",
                f"{c.rows_read:,}",
                f"{c.rows_rejected:,}",
                f"{rate:,.0f}",
                extra["percent"],
                f"{bytes_done:,}",
                f"{total:,}",
                extra=extra,
            )
            return
        self.progress.info(
            "%s rows read, %s rejected, %s rows/s",
            f"{c.rows_read:,}",
            f"{c.rows_rejected:,}",
            f"{rate:,.0f}",
            extra=extra,
        )

    def _reject_parse(self, rb: RawBatch, rej: Reject) -> None:
        self.counters.rows_read += 1
        self.counters.rows_rejected += 1
        if self.quarantine is not None:
            self.quarantine.add(
                {
                    "source": rb.source,
                    **({"record": rej.record} if rej.record is not None else {}),
                    "line": rej.row,
                    "reason": rej.reason,
                    "text": rej.text,
                }
            )

    def _invalid(self, rb: RawBatch, invalid: list[Any]) -> None:
        if self.policy == "fail":
            first = invalid[0]
            record, line = rb.where(first.row)
            where = f"record {record}" + (f" (line {line})" if line is not None else "")
            raise InvalidRecordsError(
                f"source {rb.source}: {where}: field {first.field!r}: {first.reason}"
                + (f" (and {len(invalid) - 1} more in this batch)" if len(invalid) > 1 else "")
            )
        self.counters.rows_rejected += len(invalid)
        if self.quarantine is None:
            return
        for inv in invalid:
            record, line = rb.where(inv.row)
            row = rb.batch.slice(inv.row, 1).to_pylist()[0]
            self.quarantine.add(
                {
                    "source": rb.source,
                    "record": record,
                    "line": line,
                    "field": inv.field,
                    "reason": inv.reason,
                    "data": row,
                }
            )
