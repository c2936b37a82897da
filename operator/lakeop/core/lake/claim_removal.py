"""Claim log compaction: which claims of a job can be deleted (:func:`removable`).

Claims that can no longer matter are deleted, so the log stays
as small as the runs in flight plus the released SQL intervals nobody has loaded yet. Never the
highest seq (the next number is counted from it). A run with a *duplicate* (a claim outside its
chain, left by a lost race) keeps its chain until every duplicate is gone (deleting the first
claim could make a duplicate the run's, holding inputs nobody read); a duplicate is released
(nobody reads it) and goes like any released claim once its run committed or was released;
deleting it changes no other claim's state, and the chain then follows the rules below at the
next compaction (deleting a prefix of a duplicate-free chain changes no state). Removable are:

* a committed claim: its inputs are in the commit log (files in the commit's sources, SQL
  below the commit's watermark, which is the claim's highest upper bound);
* a released file claim, a released non-incremental or empty SQL claim: nothing to hand on;
* a released incremental SQL claim that is *settled*: adopted by a claim that is committed or
  itself settled (the committed end of the chain read all the intervals);
* an empty live claim of a single-writer run (the run read nothing and will read nothing), or
  of a scaled-out run (``split``) or of unknown kind once older than
  :data:`EMPTY_CLAIM_MAX_AGE_MS` (every share of the run has adopted it by then).

A claim that adopts others is removable only if they all are (they are deleted first, in seq
order, so a crash never leaves an adopted claim without its adopter). The argument is in
docs/commit-protocol.md.
"""

from __future__ import annotations

from typing import Any

from lakeop.core.lake.inputs import Claim, ClaimLog, FileId

#: An empty claim of a scaled-out run (or of unknown kind) is deleted only this long after its
#: run started: by then every share of the run has started and adopted it (a share that starts
#: later would take a new claim, which the run's other shares disagree with: the run fails and
#: is released, nothing is lost). Generous on purpose; empty claims are tiny.
EMPTY_CLAIM_MAX_AGE_MS = 24 * 3600 * 1000


def settled(log: ClaimLog, claim: Claim) -> bool:
    """Whether the claim's inputs are loaded for good: its run committed, or it is released and
    a claim adopting it is settled (adopters list the adopted intervals, so the committed end
    of the chain read them all)."""
    adopters: dict[int, list[Claim]] = {}
    for c in log.claims:
        for s in c.adopts:
            adopters.setdefault(s, []).append(c)
    seen: set[int] = set()

    def walk(c: Claim) -> bool:
        if c.seq in seen:  # adopters have higher seqs; a cycle cannot come from take()
            return False
        seen.add(c.seq)
        state = log.state(c)
        if state == "committed":
            return True
        return state == "released" and any(walk(a) for a in adopters.get(c.seq, ()))

    return walk(claim)


def _at_or_below(value: Any, bound: Any) -> bool:
    try:
        return bool(value <= bound)
    except TypeError:
        return False


def removable(
    log: ClaimLog,
    now_ms: int,
    watermark: Any = None,
    taken: frozenset[FileId] | set[FileId] = frozenset(),
) -> tuple[int, ...]:
    """Seqs of the claims that can be deleted, ascending (the order to delete them in).

    ``watermark`` is the job's committed watermark (decoded) and ``taken`` the source files its
    commits took: a committed claim is removed only if they do cover it (always so for claims
    written by :func:`lakeop.engine.claims.take`; checked anyway). Stale facts (a commit not yet
    seen) only keep more.
    """
    if not log.claims:
        return ()
    top = max(c.seq for c in log.claims)
    duplicated = {c.run_id for c in log.claims if log.duplicated(c.run_id)}
    chains = {run: {c.seq for c in log.chain(run)} for run in duplicated}
    out: dict[int, bool] = {}

    def ok(c: Claim) -> bool:
        if c.seq in out:
            return out[c.seq]
        out[c.seq] = False  # provisional: guards against a (corrupt) adoption cycle
        if c.run_id in duplicated:  # only its duplicates go, once the run is done
            own = c.seq not in chains[c.run_id] and _done(log, c.run_id)
        else:
            own = True
        result = (
            c.seq != top
            and own
            and all(ok(log.by_seq[s]) for s in c.adopts if s in log.by_seq)
            and _removable_alone(log, c, now_ms, watermark, taken)
        )
        out[c.seq] = result
        return result

    return tuple(c.seq for c in sorted(log.claims, key=lambda c: c.seq) if ok(c))


def _done(log: ClaimLog, run_id: str) -> bool:
    """Whether the run committed or its claim was released: no attempt of it reads a claim
    any more (a retry of a committed run reports the commit; a re-take of a released one
    extends the chain, never takes a duplicate)."""
    current = log.of_run(run_id)
    return run_id in log.committed or (current is not None and log.state(current) == "released")


def _removable_alone(
    log: ClaimLog, c: Claim, now_ms: int, watermark: Any, taken: frozenset[FileId] | set[FileId]
) -> bool:
    state = log.state(c)
    incremental = c.sql is not None and c.sql.column is not None
    if state == "committed":
        if c.kind == "files":
            return all(f in taken for f in c.files)
        if incremental and c.sql is not None and c.sql.upper is not None:
            return watermark is not None and _at_or_below(c.sql.upper, watermark)
        return True
    if state == "released":
        if c.kind == "files" or not incremental or c.empty:
            return True
        return settled(log, c)
    if not c.empty:
        return False  # live: its run (a share, a retry) reads it
    if c.split is False:
        return True  # the run's one writer read nothing; a retry of it starts afresh
    return now_ms - c.created_ms >= EMPTY_CLAIM_MAX_AGE_MS
