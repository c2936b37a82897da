"""How one run is split over the N pods of an Indexed Job, and when it may commit.

With ``spec.parallelism: N`` a run is an Indexed Job; pod ``i`` (``JOB_COMPLETION_INDEX``)
works on share ``i`` only, and a failed pod retries its own share. Each pod computes its share
itself, so the split must be a pure function of facts every pod sees identically:

* files: :func:`assign_shards` sorts the listing (so listing order never matters) and deals
  files largest-first to the least-loaded share (ties: fewer files, then lower index), which
  balances bytes rather than file counts;
* SQL: :func:`shard_key_ranges` cuts ``[min, max]`` of the key column into N contiguous ranges;
  the first and last are open-ended and the first also takes NULL keys, so every row lands in
  exactly one share even if rows arrive after the bounds were read.

The facts come from the run's one input claim (:mod:`lakeop.core.lake.inputs`: the first pod makes
it, the others adopt it), so pods cannot see different listings or bounds. Every share still
records a *basis* (a digest of the claim it split) and :func:`ready_to_commit` lets the run
commit only when all N shares are present and agree on one basis: exactly once, all or nothing.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

#: run summary counters summed over the shares for the run's totals
TOTAL_KEYS = ("rowsRead", "rowsWritten", "rowsRejected", "bytesWritten", "filesWritten")


def _check(index: int, count: int) -> None:
    if count < 1:
        raise ValueError(f"shard count must be >= 1, got {count}")
    if not 0 <= index < count:
        raise ValueError(f"shard index must be in 0..{count - 1}, got {index}")


# ------------------------------------------------------------------------------------ files


@dataclass(frozen=True, order=True)
class SourceFile:
    path: str
    size: int = 0


def _unique(files: Iterable[SourceFile]) -> list[SourceFile]:
    by_path: dict[str, SourceFile] = {}
    for f in sorted(files):  # a path listed twice keeps its smallest size, deterministically
        by_path.setdefault(f.path, f)
    return list(by_path.values())


def assign_shards(files: Iterable[SourceFile], count: int) -> list[list[SourceFile]]:
    """All N shares (each sorted by path); independent of the listing's order."""
    _check(0, count)
    shares: list[list[SourceFile]] = [[] for _ in range(count)]
    heap = [(0, 0, i) for i in range(count)]  # (bytes, files, index)
    for f in sorted(_unique(files), key=lambda f: (-f.size, f.path)):
        load, n, i = heapq.heappop(heap)
        shares[i].append(f)
        heapq.heappush(heap, (load + max(f.size, 0), n + 1, i))
    return [sorted(share) for share in shares]


def shard_files(files: Iterable[SourceFile], index: int, count: int) -> list[SourceFile]:
    """The files pod ``index`` of ``count`` ingests."""
    _check(index, count)
    return assign_shards(files, count)[index]


def listing_basis(files: Iterable[SourceFile]) -> str:
    """A digest of the listing a share was cut from (paths and sizes, order-free)."""
    digest = hashlib.sha256()
    for f in _unique(files):
        digest.update(f"{f.path}\t{f.size}\n".encode())
    return digest.hexdigest()[:16]


# -------------------------------------------------------------------------------- key ranges

K = TypeVar("K", int, datetime, date)


@dataclass(frozen=True)
class KeyRange(Generic[K]):
    """``lower <= key < upper``; None = unbounded; ``include_null`` also takes NULL keys."""

    lower: K | None
    upper: K | None
    include_null: bool = False

    def contains(self, key: K | None) -> bool:
        if key is None:
            return self.include_null
        if self.lower is not None and key < self.lower:
            return False
        return self.upper is None or key < self.upper


def _offset(low: K, high: K, count: int) -> list[K]:
    """The N-1 inner boundaries splitting ``[low, high]`` evenly."""
    if isinstance(low, datetime) and isinstance(high, datetime):
        if (low.tzinfo is None) != (high.tzinfo is None):
            raise TypeError("key bounds mix naive and timezone-aware datetimes")
        total = (high - low) // timedelta(microseconds=1) + 1
        return [low + timedelta(microseconds=total * i // count) for i in range(1, count)]
    if isinstance(low, date) and isinstance(high, date):
        days = (high - low).days + 1
        return [low + timedelta(days=days * i // count) for i in range(1, count)]
    if isinstance(low, int) and isinstance(high, int):
        span = high - low + 1
        return [low + span * i // count for i in range(1, count)]
    raise TypeError(f"cannot split keys of type {type(low).__name__}")


def shard_key_ranges(low: K, high: K, count: int) -> list[KeyRange[K]]:
    """N contiguous ranges covering every key; inner bounds split ``[low, high]`` evenly."""
    _check(0, count)
    if isinstance(low, bool) or isinstance(high, bool) or type(low) is not type(high):
        raise TypeError(f"key bounds must share one type, got {low!r} and {high!r}")
    if high < low:
        raise ValueError(f"key range is empty: min {low!r} > max {high!r}")
    bounds: list[K | None] = [None]
    bounds.extend(_offset(low, high, count))
    bounds.append(None)
    return [KeyRange(bounds[i], bounds[i + 1], include_null=i == 0) for i in range(count)]


def key_range_basis(low: K | None, high: K | None, count: int) -> str:
    """A digest of the bounds the ranges were cut from."""
    text = f"{type(low).__name__}:{low!r}:{high!r}:{count}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ commit rule


@dataclass(frozen=True)
class ShardResult:
    """A share's manifest: what it wrote, cut from which basis, on which attempt."""

    index: int
    basis: str
    attempt: int = 0
    totals: Mapping[str, int] = field(default_factory=dict, hash=False)
    manifest: str = ""  # where the share's manifest lives (opaque here)


@dataclass(frozen=True)
class CommitReadiness:
    ready: bool
    chosen: dict[int, ShardResult]  # one result per present index: the one to commit
    missing: tuple[int, ...]
    problems: tuple[str, ...]


def ready_to_commit(shard_results: Iterable[ShardResult], count: int) -> CommitReadiness:
    """A run commits when all ``count`` shares have a manifest and agree on the basis.

    A share retried after writing its manifest may have two; the latest attempt (then the
    greatest manifest name) is chosen, so the committer always takes the same one.
    """
    _check(0, count)
    problems: list[str] = []
    chosen: dict[int, ShardResult] = {}
    for result in sorted(shard_results, key=lambda r: (r.index, r.attempt, r.manifest)):
        if not 0 <= result.index < count:
            problems.append(f"shard {result.index} is outside 0..{count - 1}")
            continue
        chosen[result.index] = result
    missing = tuple(i for i in range(count) if i not in chosen)
    bases = sorted({r.basis for r in chosen.values()})
    if len(bases) > 1:
        split = "; ".join(
            f"basis {b}: shards {[i for i, r in sorted(chosen.items()) if r.basis == b]}"
            for b in bases
        )
        problems.append(f"shards split different inputs ({split})")
    return CommitReadiness(not missing and not problems, chosen, missing, tuple(problems))


def run_totals(results: Iterable[ShardResult]) -> dict[str, int]:
    """The run's counters: the chosen shares' counters summed."""
    totals = dict.fromkeys(TOTAL_KEYS, 0)
    for result in results:
        for key in TOTAL_KEYS:
            totals[key] += int(result.totals.get(key, 0))
    return totals


def shard_progress(
    results: Mapping[int, ShardResult], count: int, failed: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """``status.currentRun.shards``: per share Done (with rows), Failed (retrying) or Pending."""
    progress: list[dict[str, Any]] = []
    for index in range(count):
        result = results.get(index)
        if result is not None:
            rows = int(result.totals.get("rowsWritten", 0))
            progress.append({"index": index, "state": "Done", "rowsWritten": rows})
        else:
            state = "Failed" if index in failed else "Pending"
            progress.append({"index": index, "state": state})
    return progress
