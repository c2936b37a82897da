"""How a Table lays out its data: ``spec.partitioning`` (none, date, hash, range, list) and
``spec.iceberg`` (the catalog Secret and the fenced Iceberg identifier)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.spec.fields import ObjectKey, choice, opt_str
from lakeop.core.spec.sources import SecretKeyRef
from lakeop.errors import InvalidSpecError

STRATEGIES = ("none", "date", "hash", "range", "list")
GRANULARITIES = ("year", "month", "day", "hour")


@dataclass(frozen=True)
class PartitionSpec:
    strategy: str = "none"
    column: str | None = None
    granularity: str = "day"
    buckets: int | None = None
    boundaries: tuple[Any, ...] = ()
    # list strategy: group key -> member values; hash=False keeps the dataclass hashable.
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict, hash=False)
    default: str = "default"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"strategy": self.strategy}
        if self.strategy == "none":
            return d
        d["column"] = self.column
        if self.strategy == "date":
            d["granularity"] = self.granularity
        elif self.strategy == "hash":
            d["buckets"] = self.buckets
        elif self.strategy == "range":
            d["boundaries"] = list(self.boundaries)
        elif self.strategy == "list":
            d["values"] = {k: list(v) for k, v in self.values.items()}
            d["default"] = self.default
        return d


@dataclass(frozen=True)
class IcebergSpec:
    """``spec.iceberg``: the catalog (a Secret key holding its SQLAlchemy URL) and the
    table's identifier in it (None: the defaults of :mod:`lakeop.core.lake.iceberg`)."""

    catalog_secret_ref: SecretKeyRef | None = None
    namespace: str | None = None
    name: str | None = None


_ICEBERG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")


def table_identifier(
    k8s_namespace: str, k8s_name: str, namespace: str | None, name: str | None
) -> tuple[str, str]:
    """``(namespace, name)`` of the Iceberg table: given, or the Table's namespace and its
    name with ``-`` as ``_``. Both are fenced: lower-case letters, digits and ``_``."""
    ns = namespace or k8s_namespace.replace("-", "_")
    nm = name or k8s_name.replace("-", "_")
    for what, value in (("namespace", ns), ("name", nm)):
        if not _ICEBERG_NAME.match(value):
            raise ValueError(
                f"iceberg.{what} {value!r}: lower-case letters, digits and '_' (at most 128), "
                "not starting with a digit"
            )
    return ns, nm


def parse_iceberg(key: ObjectKey, raw: Any) -> IcebergSpec:
    if raw is None:
        return IcebergSpec()
    if not isinstance(raw, Mapping):
        raise key.error("iceberg", "must be a mapping", raw)
    ref = raw.get("catalogSecretRef")
    secret = None
    if ref is not None:
        if not (
            isinstance(ref, Mapping)
            and isinstance(ref.get("name"), str)
            and isinstance(ref.get("key"), str)
            and ref["name"]
            and ref["key"]
        ):
            raise key.error("iceberg.catalogSecretRef", "must be {name: <secret>, key: <key>}")
        secret = SecretKeyRef(ref["name"], ref["key"])
    out = IcebergSpec(secret, opt_str(key, raw, "namespace"), opt_str(key, raw, "name"))
    try:
        table_identifier(key.namespace, key.name, out.namespace, out.name)
    except ValueError as e:
        raise key.error("iceberg", str(e), show=False) from e
    return out


def same_partitioning(key: ObjectKey, before: Any, after: Any) -> bool:
    """Whether two ``spec.partitioning`` values lay the table out alike: compared as parsed,
    so the defaults spelled out or left out (``granularity: day``) and the order of the
    keys do not count as a change; a value that does not parse is compared as written."""
    try:
        return parse_partitioning(key, before) == parse_partitioning(key, after)
    except InvalidSpecError:
        return bool(before == after)


def parse_partitioning(key: ObjectKey, raw: Any) -> PartitionSpec:
    p = "partitioning."
    if raw is None:
        return PartitionSpec()
    if not isinstance(raw, Mapping):
        raise key.error("partitioning", "must be a mapping", raw)
    strategy = choice(key, raw, "strategy", STRATEGIES, "none", prefix=p)
    if strategy == "none":
        return PartitionSpec()
    column = raw.get("column")
    if not isinstance(column, str) or not column:
        raise key.error(p + "column", f"required for strategy {strategy}", column)
    if strategy == "date":
        gran = choice(key, raw, "granularity", GRANULARITIES, "day", prefix=p)
        return PartitionSpec(strategy, column, granularity=gran)
    if strategy == "hash":
        buckets = raw.get("buckets")
        if not isinstance(buckets, int) or isinstance(buckets, bool) or not 1 <= buckets <= 4096:
            raise key.error(p + "buckets", "must be an integer 1..4096", buckets)
        return PartitionSpec(strategy, column, buckets=buckets)
    if strategy == "range":
        return PartitionSpec(strategy, column, boundaries=_boundaries(key, raw.get("boundaries")))
    values, default = _list_values(key, raw)
    return PartitionSpec(strategy, column, values=values, default=default)


def _boundaries(key: ObjectKey, raw: Any) -> tuple[Any, ...]:
    path = "partitioning.boundaries"
    if not isinstance(raw, list) or not raw:
        raise key.error(path, "must be a non-empty list", raw)
    numeric = all(isinstance(b, int | float) and not isinstance(b, bool) for b in raw)
    if not numeric and not all(isinstance(b, str) for b in raw):
        raise key.error(path, "must be all numbers or all strings (dates)", raw)
    if any(a >= b for a, b in itertools.pairwise(raw)):
        raise key.error(path, "must be strictly increasing", raw)
    return tuple(raw)


def _list_values(key: ObjectKey, raw: Mapping[str, Any]) -> tuple[dict[str, tuple[Any, ...]], str]:
    path = "partitioning.values"
    values = raw.get("values")
    if not isinstance(values, Mapping) or not values:
        raise key.error(path, "must be a non-empty mapping of group -> list of values", values)
    out: dict[str, tuple[Any, ...]] = {}
    seen: dict[Any, str] = {}
    for group, members in values.items():
        if not isinstance(group, str) or not re.match(r"^[A-Za-z0-9_.-]+$", group):
            raise key.error(f"{path}", "group keys must be [A-Za-z0-9_.-]+", group)
        if not isinstance(members, list) or not members:
            raise key.error(f"{path}.{group}", "must be a non-empty list", members)
        for m in members:
            if m in seen:
                raise key.error(f"{path}.{group}", f"value also in group {seen[m]}", m)
            seen[m] = group
        out[group] = tuple(members)
    default = raw.get("default", "default")
    if not isinstance(default, str) or not re.match(r"^[A-Za-z0-9_.-]+$", default):
        raise key.error("partitioning.default", "must match [A-Za-z0-9_.-]+", default)
    if default in out:
        raise key.error("partitioning.default", "must differ from the group keys", default)
    return out, default
