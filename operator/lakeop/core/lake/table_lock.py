"""Who holds a table's maintenance lock, decided from the lock's objects (pure).

A lock is a numbered series of *holds*, ``<seq, 8 digits>.json`` (the holder's run id), each
created only if absent, with a ``<seq>.lease`` its holder's heartbeat rewrites and a
``<seq>.released`` marker once it is done. Only the **highest** hold can hold the lock, and
only while it is not released and its lease has not lapsed (by more than the clocks' bound);
a lower one is superseded, whatever its lease says. A taker creates the number after the
highest it saw, so it can create a number only if it saw every lower hold: two holders at
once need a lease that lapsed while its holder still ran (the same bound as a claim's,
docs/commit-protocol.md). A taker confirms its hold by listing again: a slow taker that
created a number below a newer hold (its own listing was old) is not the holder.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Hold:
    """One numbered hold of a lock: its run and when its lease ends (ms, wall clock)."""

    seq: int
    run_id: str
    expires_ms: int
    released: bool = False


class Step(Enum):
    TAKE = "take"  # create hold ``seq``
    ADOPT = "adopt"  # hold ``seq`` is this run's own (a retried pod): go on with it
    WAIT = "wait"  # another live run holds the lock


@dataclass(frozen=True)
class Decision:
    step: Step
    seq: int
    holder: Hold | None = None  # for WAIT: who holds it


def holder(holds: list[Hold], now_ms: int, skew_ms: int) -> Hold | None:
    """The hold that holds the lock at ``now_ms``: the highest, unless released or lapsed."""
    if not holds:
        return None
    top = max(holds, key=lambda h: h.seq)
    if top.released or now_ms > top.expires_ms + skew_ms:
        return None
    return top


def decide(holds: list[Hold], run_id: str, now_ms: int, skew_ms: int) -> Decision:
    """What run ``run_id`` does next about the lock whose holds are ``holds``."""
    current = holder(holds, now_ms, skew_ms)
    if current is None:
        return Decision(Step.TAKE, max((h.seq for h in holds), default=0) + 1)
    if current.run_id == run_id:
        return Decision(Step.ADOPT, current.seq)
    return Decision(Step.WAIT, current.seq, current)


def is_mine(holds: list[Hold], seq: int) -> bool:
    """Whether hold ``seq`` (just created or adopted) is the highest, so the lock's."""
    return all(h.seq <= seq for h in holds) and any(h.seq == seq for h in holds)


def superseded(holds: list[Hold], seq: int) -> list[int]:
    """The holds below ``seq``: none of them can hold the lock again, so they can go."""
    return sorted(h.seq for h in holds if h.seq < seq)
