"""The table-format interface: what the engine asks of a table's commit point.

A run writes its files with lakeop's own partitioned writer; what makes them part of the
table, and how a retry finds the run's earlier commit, is the table format's business.
Each format (``parquet``: Hive directories and lakeop's commit log; ``delta``: a Delta Lake
table) answers the same questions, so the run (:mod:`lakeop.engine.run`), the claims, the
reader and the operator's status never depend on one format:

- ensure the table exists (with its partition columns) and follow an accepted schema;
- commit a run's files exactly once per run id, with the run's metadata (a
  :class:`~lakeop.engine.commits.Commit`), and find a run id's commit;
- finish a committed run's publishing (roll forward) and clean up dead runs' leftovers;
- totals and the current snapshot; delete the table.

A format's commit record is a :class:`Commit`, whatever the format stores underneath: the
claims read ``sources`` and ``watermark`` from it, the run reports its counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from lakeop.engine.commits import Commit, DataFile


@dataclass(frozen=True)
class Snapshot:
    """The table's current version, as a reader pins it: ``id`` (a Delta version, an
    Iceberg snapshot id, the parquet log's last sequence number) and when it was made."""

    id: str
    timestamp: str  # ISO-8601 UTC

    def to_status(self) -> dict[str, str]:
        return {"id": self.id, "timestamp": self.timestamp}


class TableFormat(Protocol):
    """One table's commit point. Methods block (storage I/O); errors are lakeop's."""

    #: the ``spec.format`` value (``parquet``, ``delta``, ...)
    name: str
    #: True: files are written to ``_lakeop/staging`` and moved into place after the commit
    #: (readers list directories); False: written in place, invisible until a commit names them
    staged: bool

    def ensure(self, schema: pa.Schema, partition_columns: Sequence[str]) -> None:
        """Create the table if it does not exist (``schema``: data columns then partition
        columns); evolve it to ``schema`` when it exists (added nullable columns)."""
        ...

    def file_schema(self, schema: pa.Schema) -> pa.Schema | None:
        """The schema the run's files are written with, after :meth:`ensure`; None: the data
        columns of ``schema`` (without the partition keys), as lakeop writes them."""
        ...

    def commits(self) -> list[Commit]:
        """Every run committed to the table, in commit order (claims, incremental runs)."""
        ...

    def find(self, run_id: str) -> Commit | None:
        """The commit of ``run_id``, None if it never committed."""
        ...

    def commit(self, commit: Commit, schema: pa.Schema) -> tuple[Commit, bool]:
        """Commit ``commit`` unless its run id has one; ``(the run's commit, created)``.
        With ``mode == "overwrite-partitions"`` the commit replaces the live files of the
        partitions it writes. ``schema``: the written files' schema plus partition columns."""
        ...

    def publish(self, commit: Commit) -> None:
        """Finish a committed run: move staged files into place (if the format stages),
        drop the files it replaced and its other attempts' leftovers. Idempotent."""
        ...

    def recover(self, current_run: str, now_ms: int) -> list[str]:
        """Roll forward interrupted publishes and drop dead runs' leftovers."""
        ...

    def live_files(self) -> dict[str, DataFile]:
        """The data files a reader of the current snapshot reads, by path."""
        ...

    def totals(self) -> dict[str, Any]:
        """``rows, files, bytes, partitions, lastCommitTime`` of the current snapshot, from
        the format's metadata (never by listing data files)."""
        ...

    def snapshot(self) -> Snapshot | None:
        """The current snapshot; None for a table without commits."""
        ...

    def delete(self) -> bool:
        """Remove the table (data and metadata); False if nothing was there."""
        ...
