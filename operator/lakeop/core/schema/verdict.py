"""The verdict on a SchemaVersion: accepted, rejected (and why) or waiting for its table.

The same pure function serves the validating webhook (refuse at ``kubectl apply``) and the
SchemaVersion handler (the verdict lands in status where no webhook is installed), so both
say exactly the same thing. Facts come in as plain values: the candidate, the table's mode
and its other SchemaVersions with their phases.

The offline commands (``lakeop validate``, ``lakeop ingest -f``) have no phases to read: they
judge a table's whole chain at once with :func:`walk_chain`, under the same rules, so the
version they pick is the one the operator would accept. The rules, in one place:

* versions are judged in increasing order, each against the *accepted* lower ones, under the
  table's compatibility mode (a rejected version never constrains a later one);
* of several SchemaVersions claiming one version, the oldest keeps it: earliest
  ``creationTimestamp``, then the smaller name (:func:`holds_before`); offline, where
  manifests carry no timestamp, that is the smaller name; the others are duplicates;
* the table's current version is the highest accepted one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.constants import Reason, SchemaPhase
from lakeop.core.schema.compat import CompatibilityResult, check_compatibility
from lakeop.core.schema.diff import diff_schemas
from lakeop.core.schema.format_rules import FormatProblem, cannot_evolve
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


def holds_before(a: Peer, b: Peer) -> bool:
    """Of two SchemaVersions claiming one version, True if ``a`` keeps it: the older by
    ``creationTimestamp``, ties (and manifests without one) broken by the smaller name."""
    return (a.created, a.name) < (b.created, b.name)


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
        if admission or holds_before(peer, Peer(name, version, fields, None, created)):
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


@dataclass(frozen=True)
class ChainStep:
    """One SchemaVersion of a chain walked by :func:`walk_chain`.

    ``accepted`` as the operator would judge it; else ``duplicate_of`` names the SchemaVersion
    that keeps the version, ``invalid`` says why the fields are not a schema, or ``result``
    holds the compatibility violations.
    """

    peer: Peer
    accepted: bool
    schema: Schema | None = None
    result: CompatibilityResult | None = None
    duplicate_of: Peer | None = None
    invalid: str | None = None
    #: what the table's format cannot apply against the latest accepted version
    format_problems: tuple[FormatProblem, ...] = ()


def walk_chain(peers: Sequence[Peer], mode: str, table_format: str = "parquet") -> list[ChainStep]:
    """Judge a table's SchemaVersions ``peers`` all at once (see the module docstring), in
    version order; the phases the peers carry are ignored. A version compatible under ``mode``
    that ``table_format`` cannot apply is not accepted (``format_problems``), as in
    :func:`judge`."""
    steps: list[ChainStep] = []
    accepted: list[tuple[int, Schema]] = []
    holders: dict[int, Peer] = {}
    for peer in sorted(peers, key=lambda p: (p.version, p.created, p.name)):
        holder = holders.setdefault(peer.version, peer)
        if holder is not peer:  # sorted: the holder came first (holds_before)
            steps.append(ChainStep(peer, False, duplicate_of=holder))
            continue
        try:
            schema = parse_fields(list(peer.fields))
        except InvalidSchemaError as exc:
            steps.append(ChainStep(peer, False, invalid=str(exc)))
            continue
        result = check_compatibility(schema, accepted, mode)
        problems = tuple(cannot_evolve(table_format, accepted[-1][1], schema) if accepted else ())
        ok = result.compatible and not problems
        if ok:
            accepted.append((peer.version, schema))
        steps.append(ChainStep(peer, ok, schema, result, format_problems=problems))
    return steps


def current_step(steps: Sequence[ChainStep]) -> ChainStep | None:
    """The walked chain's current version: its highest accepted step (None: none passed)."""
    passed = [s for s in steps if s.accepted]
    return max(passed, key=lambda s: s.peer.version) if passed else None
