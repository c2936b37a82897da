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

from lakeop.core.compat import check_compatibility
from lakeop.core.constants import Reason, SchemaPhase
from lakeop.core.diff import diff_schemas
from lakeop.core.schema_parse import parse_fields
from lakeop.core.types import Schema
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
) -> Verdict:
    """Judge SchemaVersion ``name`` (``version`` of ``table``) against its ``peers``.

    ``admission=True`` is the webhook's view of a CREATE: any existing peer with the same
    version is a duplicate. Otherwise the older object (by creation time, then name) keeps
    the version and the newer one is rejected.
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
