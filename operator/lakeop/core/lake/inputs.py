"""Run input claims: which inputs a run takes, decided once, before anything is read.

A job's claim log is a sequence of claims numbered 1, 2, 3 ... (``seq``). A run writes exactly
one claim, at ``seq = highest + 1``, and only if no claim of that number exists yet (an
exclusive create, :mod:`lakeop.engine.claims`); a loser re-reads the log and tries again. So
every claim is computed from a log holding all claims numbered below it, and the inputs of two
claims never overlap: no two runs of a job read the same source file or the same SQL rows,
however many are in flight.

A claim is in one of three states (:meth:`ClaimLog.state`):

* **committed**: its run has a commit in the log; its inputs are taken for good;
* **released**: a ``released`` marker exists (the run failed, was cancelled or replaced), or it
  is a later duplicate of its run's first claim (:meth:`ClaimLog.of_run` always answers the
  first one, so nobody reads a duplicate); its inputs are free again;
* **live**: neither; its run owns its inputs (every share and every retry of the run adopts it)
  for as long as its *lease* holds.

Leases (:func:`lapsed`): a claim carries an expiry (``lease_until_ms``, set when it is created)
that its run pushes forward while it is alive (a lease object beside the claim, rewritten by
every share of the run, :attr:`ClaimLog.leases`). A live claim whose expiry lies more than the
clock-skew bound in the past is *lapsed*: its run is dead (SIGKILL, power loss) or paused, and
the next claimer marks it released, after which its inputs are free exactly like those of a
released claim. A claim without any expiry (written before leases existed) never lapses.
A run's claims form a *chain* (:meth:`ClaimLog.chain`): its lowest-numbered claim, then,
while the last one is marked released, the lowest claim of the run naming it as ``after``. A
single-writer run retried under the same run id after its claim was released (given up, or
taken over once its lease lapsed) takes a new claim ``after`` it, which is then its own; any
other claim of the run (a lost race) is a duplicate, released for good.

Free inputs for a new claim:

* files (:func:`free_files`): the listing minus what commits of the job took, minus the files
  of live and committed claims;
* incremental SQL (:func:`next_lower`, :func:`orphan_intervals`): a new interval
  ``(L, U]`` starting above every interval any claim ever held and every committed watermark,
  plus the intervals of released claims that no later claim adopted. The new claim lists those
  in its ``intervals`` and their seqs in ``adopts``. A released claim that had adopted others
  offers all of its intervals (its own and the adopted ones) again, so nothing is lost however
  deep the chain of releases.

Compaction, which claims can be deleted, is :mod:`lakeop.core.lake.claim_removal`'s.

Interval bounds and split bounds are plain comparable values here (int, date, datetime,
Decimal); their JSON form lives with the SQL source.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from lakeop.core.lake.sharding import KeyRange, shard_key_ranges

FileId = tuple[str, int, str]  # (uri, size, version): a source file's identity
State = Literal["live", "committed", "released"]


@dataclass(frozen=True)
class LeaseTerms:
    """How long a claim's lease runs, how often its holder renews it, and the clocks' bound.

    A holder renews every :attr:`renew_s` (a third of the lease), so a live holder's lease has
    at least two thirds left after a renewal; it commits only with at least :attr:`margin_s`
    left by its own monotonic clock. Another process treats the lease as lapsed only
    ``skew_s`` after its expiry by its own wall clock (docs/commit-protocol.md).
    """

    lease_s: float
    skew_s: float

    @property
    def renew_s(self) -> float:
        return self.lease_s / 3

    @property
    def margin_s(self) -> float:
        return self.lease_s / 3

    @property
    def lease_ms(self) -> int:
        return int(self.lease_s * 1000)

    @property
    def skew_ms(self) -> int:
        return int(self.skew_s * 1000)


@dataclass(frozen=True)
class Interval:
    """Keys ``lower < key <= upper``; None = unbounded. ``lower`` None also takes NULL keys
    (the first interval of a job reads what the first watermark-less run always read)."""

    lower: Any
    upper: Any


@dataclass(frozen=True)
class SqlClaim:
    """The SQL rows a claim takes and how its shares split them.

    ``column`` is the incremental column (None: a non-incremental query, re-read whole by
    every run; ``intervals`` is then one unbounded interval). ``split_column``, ``low`` and
    ``high`` are the key and its bounds over the claimed rows, read once by the claimer so that
    every share cuts the same ranges (None when the run is not split or nothing was there).
    """

    column: str | None
    intervals: tuple[Interval, ...] = ()
    split_column: str | None = None
    low: Any = None
    high: Any = None

    @property
    def upper(self) -> Any:
        """The highest upper bound claimed (the commit's watermark); None if none."""
        uppers = [i.upper for i in self.intervals if i.upper is not None]
        return max(uppers) if uppers else None


@dataclass(frozen=True)
class Claim:
    run_id: str
    seq: int
    created_ms: int
    kind: Literal["files", "sql"]
    files: tuple[FileId, ...] = ()
    sql: SqlClaim | None = None
    adopts: tuple[int, ...] = ()
    split: bool | None = None  # made by a scaled-out run's share; None: not recorded (older)
    lease_until_ms: int | None = None  # the lease's first expiry; None: never lapses (older)
    after: int | None = None  # the run's released claim this one replaces (a re-take)

    @property
    def empty(self) -> bool:
        """Nothing to read: no files, no incremental interval (a non-incremental query always
        has its whole-query interval)."""
        if self.kind == "files":
            return not self.files
        return self.sql is None or not self.sql.intervals


@dataclass(frozen=True)
class ClaimLog:
    """A job's claims as read from storage, with what decides their state."""

    claims: tuple[Claim, ...]
    released: frozenset[int] = frozenset()  # seqs with a released marker
    committed: frozenset[str] = frozenset()  # run ids with a commit of this job
    leases: Mapping[int, int] = field(default_factory=dict)  # seq -> renewed expiry (ms)
    by_seq: dict[int, Claim] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_seq", {c.seq: c for c in self.claims})

    def next_seq(self) -> int:
        return max((c.seq for c in self.claims), default=0) + 1

    def chain(self, run_id: str) -> list[Claim]:
        """The run's claims in the order it held them: its first, then each re-take."""
        mine = sorted((c for c in self.claims if c.run_id == run_id), key=lambda c: c.seq)
        out = mine[:1]
        while out and out[-1].seq in self.released:
            nxt = [c for c in mine if c.after == out[-1].seq]
            if not nxt:
                break
            out.append(nxt[0])
        return out

    def of_run(self, run_id: str) -> Claim | None:
        """The run's claim: the end of its chain (a claim outside it can only come from a
        lost race); None if it has none."""
        chain = self.chain(run_id)
        return chain[-1] if chain else None

    def state(self, claim: Claim) -> State:
        """A duplicate or a re-taken claim is released even if its run committed: nobody
        read it. The end of a committed run's chain is committed even if marked (a release
        that came too late changes nothing)."""
        current = self.of_run(claim.run_id)
        if current is not None and current.seq != claim.seq:
            return "released"
        if claim.run_id in self.committed:
            return "committed"
        return "released" if claim.seq in self.released else "live"

    def duplicated(self, run_id: str) -> bool:
        """Whether the run has a claim outside its chain (a lost race left it)."""
        return len(self.chain(run_id)) != sum(1 for c in self.claims if c.run_id == run_id)

    def expiry(self, claim: Claim) -> int | None:
        """When the claim's lease ends (ms), as last renewed; None: it never lapses."""
        known = [t for t in (claim.lease_until_ms, self.leases.get(claim.seq)) if t is not None]
        return max(known) if known else None

    def holding(self) -> list[Claim]:
        """Claims whose inputs are not free: live and committed ones."""
        return [c for c in self.claims if self.state(c) != "released"]


def lapsed(log: ClaimLog, now_ms: int, skew_ms: int) -> list[Claim]:
    """Live claims whose lease ended more than ``skew_ms`` before ``now_ms``, by seq: their
    run is taken for dead, and the next claimer marks them released (module doc)."""
    out = []
    for c in sorted(log.claims, key=lambda c: c.seq):
        until = log.expiry(c)
        if until is not None and log.state(c) == "live" and now_ms > until + skew_ms:
            out.append(c)
    return out


def lease_left_s(renewed_at: float, now: float, terms: LeaseTerms) -> float:
    """Seconds of the holder's lease left, by its own monotonic clock: ``renewed_at`` is when
    it began writing its last successful renewal (or the claim)."""
    return renewed_at + terms.lease_s - now


def may_commit(renewed_at: float, now: float, terms: LeaseTerms) -> bool:
    """Whether a holder may still commit: at least :attr:`LeaseTerms.margin_s` of its lease
    left, so its commit lands before anyone can take its inputs over."""
    return lease_left_s(renewed_at, now, terms) >= terms.margin_s


def free_files(
    listing: Iterable[FileId], taken_by_commits: set[FileId], log: ClaimLog
) -> list[FileId]:
    """The listed files no commit took and no live or committed claim holds, sorted."""
    held = {f for c in log.holding() for f in c.files}
    return sorted({f for f in listing if f not in taken_by_commits and f not in held})


def next_lower(committed_watermark: Any, log: ClaimLog) -> Any:
    """Where a new incremental interval starts: above every committed watermark and every
    interval any claim holds or held (released intervals come back by adoption, never by
    being covered again)."""
    uppers = [
        i.upper
        for c in log.claims
        if c.sql is not None and c.sql.column is not None
        for i in c.sql.intervals
        if i.upper is not None
    ]
    if committed_watermark is not None:
        uppers.append(committed_watermark)
    return max(uppers) if uppers else None


def orphans(log: ClaimLog) -> list[Claim]:
    """Released incremental claims that no other claim adopted, by seq. An adopter lists the
    adopted intervals itself, so when it is released in turn only it is offered."""
    adopted = {s for c in log.claims for s in c.adopts}
    return [
        c
        for c in sorted(log.claims, key=lambda c: c.seq)
        if log.state(c) == "released"
        and c.seq not in adopted
        and c.sql is not None
        and c.sql.column is not None
        and c.sql.intervals
    ]


def orphan_intervals(log: ClaimLog) -> tuple[tuple[Interval, ...], tuple[int, ...]]:
    """The intervals of :func:`orphans` and their seqs, for the next claim to adopt."""
    found = orphans(log)
    intervals = tuple(i for c in found if c.sql is not None for i in c.sql.intervals)
    return intervals, tuple(c.seq for c in found)


def sql_intervals(adopted: Sequence[Interval], lower: Any, upper: Any) -> tuple[Interval, ...]:
    """Adopted intervals plus the new ``(lower, upper]`` (none when ``upper`` is None: the
    query had no row above ``lower``)."""
    out = list(adopted)
    if upper is not None:
        out.append(Interval(lower, upper))
    return tuple(out)


def splittable(value: Any) -> bool:
    """Whether key ranges can be cut on values like ``value`` (int, date, timestamp)."""
    return isinstance(value, int | date | datetime) and not isinstance(value, bool)


def share_range(sql: SqlClaim, index: int, count: int) -> KeyRange[Any] | None:
    """Share ``index`` of ``count``'s key range of the claimed rows; None: it reads nothing.

    Without bounds (nothing was there when the claim was made) share 0 takes every key, so a
    row that arrives later inside a claimed interval still has exactly one reader.
    """
    if sql.low is None or sql.high is None:
        return KeyRange(None, None, include_null=True) if index == 0 else None
    return shard_key_ranges(sql.low, sql.high, count)[index]


def basis(claim: Claim, encode: Any = str) -> str:
    """What every share of the run split: the claim's seq and a digest of its content."""
    text = json.dumps(
        {
            "seq": claim.seq,
            "files": sorted(claim.files),
            "sql": None
            if claim.sql is None
            else [
                claim.sql.column,
                [[encode(i.lower), encode(i.upper)] for i in claim.sql.intervals],
                claim.sql.split_column,
                encode(claim.sql.low),
                encode(claim.sql.high),
            ],
        },
        sort_keys=True,
        default=str,
    )
    return f"claim-{claim.seq}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
