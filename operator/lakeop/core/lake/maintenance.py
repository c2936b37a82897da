"""Table maintenance decisions: which files a compaction rewrites, which an expiry deletes.

Pure: the engine (:mod:`lakeop.engine.compaction`, :mod:`lakeop.engine.expiry`) lists and
reads; these functions only decide, from the commit log's view of the table (each live file
with its partition, size and the schema version it was written under) and a clock passed in.

- **Compaction** picks, per partition, the *small* files (under 75% of the target size) once
  there are at least ``min_input_files`` of them; in a partition it rewrites, files written
  under an older schema version are taken too, whatever their size, so the partition ends
  under the current schema.
- **Lineage.** A compaction commit records, for each file it writes, the files it replaced
  (``replaces``). An overwrite that computed its ``removed`` list before a compaction swapped
  those files replaces the compaction's outputs instead (:func:`resolve_removed`), so no row
  it overwrote comes back; an output that also holds rows the overwrite never saw is a
  conflict (the overwrite is retried), never a silent loss.
- **Expiry.** A file removed by commit ``c`` belongs only to snapshots older than ``c``; the
  newest of them stopped being current when ``c`` was committed. So it may be deleted once
  ``c`` is older than the retention, and never before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: a file under this share of the target size is "small"
SMALL_SHARE = 0.75


@dataclass(frozen=True)
class LiveFile:
    path: str
    partition: str
    rows: int
    bytes: int
    schema_version: int


@dataclass(frozen=True)
class PartitionRewrite:
    """One partition's compaction: the files to rewrite, in the order they are read."""

    partition: str
    inputs: tuple[LiveFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.inputs)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.inputs)


def is_small(f: LiveFile, target_bytes: int) -> bool:
    return f.bytes < SMALL_SHARE * target_bytes


def small_files(files: Iterable[LiveFile], target_bytes: int) -> int:
    """How many data files are under 75% of the compaction target (``status.smallFiles``)."""
    return sum(1 for f in files if is_small(f, target_bytes))


def plan_compaction(
    files: Iterable[LiveFile],
    target_bytes: int,
    min_input_files: int,
    current_version: int,
) -> list[PartitionRewrite]:
    """The partitions to rewrite and their input files, partitions in name order."""
    by_partition: dict[str, list[LiveFile]] = {}
    for f in files:
        by_partition.setdefault(f.partition, []).append(f)
    out: list[PartitionRewrite] = []
    for partition in sorted(by_partition):
        group = sorted(by_partition[partition], key=lambda f: f.path)
        small = [f for f in group if is_small(f, target_bytes)]
        if len(small) < max(2, min_input_files):
            continue
        old = [f for f in group if f.schema_version < current_version and f not in small]
        out.append(PartitionRewrite(partition, tuple(sorted(small + old, key=lambda f: f.path))))
    return out


class LineageConflict(Exception):  # noqa: N818 - a decision, translated by the engine
    """An overwrite's replaced files were compacted together with files it never saw."""


def origins(path: str, replaces: Mapping[str, Sequence[str]]) -> set[str]:
    """The files ``path`` was compacted from, recursively (itself if it was never compacted)."""
    out: set[str] = set()
    todo = [path]
    while todo:
        p = todo.pop()
        parents = replaces.get(p)
        if parents:
            todo.extend(parents)
        else:
            out.add(p)
    return out


def resolve_removed(
    removed: Iterable[str], live: Iterable[str], replaces: Mapping[str, Sequence[str]]
) -> list[str]:
    """What an overwrite removes at its commit point: its ``removed`` files still live, plus
    the live compaction outputs made only of files it removed. Raises
    :class:`LineageConflict` if a live output mixes both (its other rows would be lost)."""
    wanted = set(removed)
    out = {p for p in live if p in wanted}
    for p in live:
        if p in out or p not in replaces:
            continue
        src = origins(p, replaces)
        hit = src & wanted
        if not hit:
            continue
        if hit != src:
            raise LineageConflict(
                f"file {p} was compacted from files this overwrite replaces and from "
                f"{len(src - hit)} it never saw"
            )
        out.add(p)
    return sorted(out)


@dataclass(frozen=True)
class Removal:
    """Files a commit removed from the table, and when (the commit's time)."""

    seq: int
    committed_ms: int
    paths: tuple[str, ...]


def expired_removals(removals: Iterable[Removal], now_ms: int, retention_s: float) -> list[Removal]:
    """The removals whose files no snapshot inside the retention references."""
    cutoff = now_ms - int(retention_s * 1000)
    return [r for r in removals if r.paths and r.committed_ms < cutoff]


def expired_rejected(
    runs: Mapping[str, int], in_flight: Iterable[str], now_ms: int, retention_s: float
) -> list[str]:
    """Runs whose ``_rejected/<run>/`` records are past retention: ``runs`` maps a run to
    the time of its newest record; runs still writing are never touched."""
    busy = set(in_flight)
    cutoff = now_ms - int(retention_s * 1000)
    return sorted(r for r, ms in runs.items() if ms < cutoff and r not in busy)
