"""The verdict on a SchemaVersion: accepted, rejected (and why) or waiting for its table.

The same pure function serves the validating webhook (refuse at ``kubectl apply``) and the
SchemaVersion handler (the verdict lands in status where no webhook is installed), so both
say exactly the same thing. Facts come in as plain values: the candidate, the table's mode
and its other SchemaVersions with their phases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.constants import Reason, SchemaPhase
from lakeop.core.schema.compat import check_compatibility
from lakeop.core.schema.diff import diff_schemas
from lakeop.core.schema.format_rules import cannot_evolve
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.errors import InvalidSchemaError


@dataclass(frozen=True)
class Peer:
    """Another SchemaVersion of the same table, as seen by the operator."""

    name: str
    version: int
    fields: Sequence[Mapping[str, Any]]
    phase: str | None = None
    created: str = ""  # creationTimestamp; ties broken by name


@dataclass(frozen=True)
class Verdict:
    phase: SchemaPhase
    reason: Reason
    message: str
    compatibility: dict[str, Any] | None = None
    diff: dict[str, Any] | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.phase is SchemaPhase.ACCEPTED


def judge(
    *,
    name: str,
    version: int,
    fields: Sequence[Mapping[str, Any]],
    created: str,
    table: str,
    mode: str,
    peers: Sequence[Peer],
    admission: bool = False,
    table_format: str = "parquet",
) -> Verdict:
    """Judge SchemaVersion ``name`` (``version`` of ``table``) against its ``peers``.

    ``admission=True`` is the webhook's view of a CREATE: any existing peer with the same
    version is a duplicate. Otherwise the older object (by creation time, then name) keeps
    the version and the newer one is rejected. A version the mode allows but the table's
    ``table_format`` cannot apply to the latest accepted one is rejected
    (``FormatCannotEvolve``).
    """
    try:
        candidate = parse_fields(list(fields))
    except InvalidSchemaError as exc:
        return Verdict(SchemaPhase.REJECTED, Reason.INVALID_SCHEMA, f"invalid schema: {exc}")
    for peer in peers:
        if peer.name == name or peer.version != version:
            continue
        if admission or (peer.created, peer.name) < (created, name):
            return Verdict(
                SchemaPhase.REJECTED,
                Reason.DUPLICATE_VERSION,
                f"version {version} of table {table!r} is already taken by "
                f"SchemaVersion {peer.name!r}",
            )
    accepted: list[tuple[int, Schema]] = []
    for peer in peers:
        if (
            peer.name != name
            and peer.phase == SchemaPhase.ACCEPTED.value
            and peer.version < version
        ):
            try:
                accepted.append((peer.version, parse_fields(list(peer.fields))))
            except InvalidSchemaError:
                continue  # an accepted peer was valid when accepted; never block on it
    result = check_compatibility(candidate, accepted, mode)
    compat = result.to_dict()
    compat.pop("compatible", None)
    diff = None
    latest: tuple[int, Schema] = (0, candidate)
    if accepted:
        latest = max(accepted, key=lambda pair: pair[0])
        diff = _without_nulls(diff_schemas(latest[1], candidate).to_dict())
    if not result.compatible:
        return Verdict(
            SchemaPhase.REJECTED,
            Reason.INCOMPATIBLE,
            f"version {version} of table {table!r} is {result.summary()}",
            compatibility=compat,
            diff=diff,
            violations=[v.to_dict() for v in result.violations],
        )
    problems = cannot_evolve(table_format, latest[1], candidate) if accepted else []
    if problems:
        return Verdict(
            SchemaPhase.REJECTED,
            Reason.FORMAT_CANNOT_EVOLVE,
            f"version {version} of table {table!r} is {result.summary()}, but its format "
            f"{table_format} cannot apply it: " + "; ".join(p.message for p in problems),
            compatibility=compat,
            diff=diff,
            violations=[p.to_dict() for p in problems],
        )
    return Verdict(
        SchemaPhase.ACCEPTED,
        Reason.ACCEPTED,
        f"version {version} of table {table!r} is {result.summary()}",
        compatibility=compat,
        diff=diff,
    )


def _without_nulls(value: Any) -> Any:
    """Drop null entries: in a status merge-patch a null would delete the key instead."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def current_version(peers: Sequence[Peer]) -> int | None:
    """The highest Accepted version among a table's SchemaVersions."""
    versions = [p.version for p in peers if p.phase == SchemaPhase.ACCEPTED.value]
    return max(versions) if versions else None


@dataclass(frozen=True)
class SchemaGate:
    """Which schema version a run of a table writes under, or why it must wait.

    ``version`` is set once every SchemaVersion of the table is decided (Accepted or
    Rejected): it is the highest Accepted one. Otherwise ``waiting`` names the undecided
    SchemaVersions (no phase yet, or Pending: waiting for the table or for lower versions,
    which resolves on its own), or ``version`` is None with ``waiting`` empty when nothing
    was ever Accepted.
    """

    version: int | None
    waiting: tuple[str, ...] = ()

    @property
    def settled(self) -> bool:
        return self.version is not None and not self.waiting


def schema_gate(peers: Sequence[Peer], *, pinned: int | None = None) -> SchemaGate:
    """The schema a run of the table with SchemaVersions ``peers`` may start under.

    A run starts only once no SchemaVersion of its table is undecided, so that one
    ``kubectl apply`` of a table with v1 and v2 together writes under v2 and never under v1
    while v2 is still being judged. Rejected is a decision: a rejected version never holds a
    run back. ``pinned``: the version a run in flight already recorded (an operator restarted
    between recording the run and creating its Job); it keeps that version while Accepted.
    """
    accepted = {p.version for p in peers if p.phase == SchemaPhase.ACCEPTED.value}
    if pinned is not None and pinned in accepted:
        return SchemaGate(pinned)
    decided = (SchemaPhase.ACCEPTED.value, SchemaPhase.REJECTED.value)
    waiting = tuple(sorted(p.name for p in peers if p.phase not in decided))
    return SchemaGate(max(accepted) if accepted else None, waiting)


def gate_message(gate: SchemaGate, table: str) -> str:
    """Why a run of ``table`` waits, for its Ready condition and Event."""
    if gate.waiting:
        names = ", ".join(gate.waiting)
        plural = "s" if len(gate.waiting) > 1 else ""
        return f"waiting for the verdict on SchemaVersion{plural} {names} of table {table}"
    return f"Table {table} has no Accepted SchemaVersion yet"


def as_peer(body: Mapping[str, Any], table: str) -> Peer | None:
    """SchemaVersion ``body`` as a :class:`Peer` of ``table``; None if it is another table's,
    has no integer version (its verdict is Rejected then) or is being deleted."""
    spec, meta = body.get("spec") or {}, body.get("metadata") or {}
    version = spec.get("version")
    if spec.get("tableRef") != table or meta.get("deletionTimestamp"):
        return None
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    return Peer(
        name=str(meta.get("name")),
        version=version,
        fields=list(spec.get("fields") or []),
        phase=(body.get("status") or {}).get("phase"),
        created=str(meta.get("creationTimestamp") or ""),
    )
