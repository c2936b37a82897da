"""Kubernetes-style conditions, computed as pure list transformations.

kopf patches status with a JSON merge-patch, which replaces lists wholesale; so every status
update carries the complete ``conditions`` list, computed here from the previous one. The clock
is passed in (``now``) so ``lastTransitionTime`` is deterministic under test: it changes only
when a condition's ``status`` flips, as the API conventions require.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None  # None = "Unknown"
    reason: str
    message: str = ""

    @property
    def status_str(self) -> str:
        return "Unknown" if self.status is None else ("True" if self.status else "False")


def rfc3339(moment: datetime) -> str:
    """Kubernetes timestamps: UTC, second precision, ``Z`` suffix."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_conditions(
    previous: Sequence[Mapping[str, Any]] | None,
    updates: Sequence[Condition],
    *,
    now: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Return the new conditions list: ``updates`` merged over ``previous`` by type.

    Untouched conditions are kept as they were; ``lastTransitionTime`` of an updated condition
    is kept when its status did not change. Order: previous order, new types appended.
    """
    result: list[dict[str, Any]] = [dict(c) for c in previous or () if isinstance(c, Mapping)]
    index = {c.get("type"): i for i, c in enumerate(result)}
    for cond in updates:
        ctype = _plain(cond.type)
        old = result[index[ctype]] if ctype in index else None
        changed = old is None or old.get("status") != cond.status_str
        new: dict[str, Any] = {
            "type": _plain(cond.type),
            "status": cond.status_str,
            "reason": _plain(cond.reason),
            "message": cond.message,
            "lastTransitionTime": now
            if changed or old is None
            else old.get("lastTransitionTime", now),
        }
        if generation is not None:
            new["observedGeneration"] = generation
        if old is None:
            index[ctype] = len(result)
            result.append(new)
        else:
            result[index[ctype]] = new
    return result


def _plain(value: str) -> str:
    """Enum members as their plain string value (they end up in JSON and YAML)."""
    return str(value.value) if isinstance(value, Enum) else str(value)


def get_condition(
    conditions: Sequence[Mapping[str, Any]] | None, type_: str
) -> Mapping[str, Any] | None:
    for c in conditions or ():
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    c = get_condition(conditions, type_)
    return c is not None and c.get("status") == "True"
