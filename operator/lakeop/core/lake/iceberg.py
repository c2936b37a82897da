"""Iceberg's pure rules: the bucket hash, the partition mapping, names, schema changes.

- **Bucket.** Iceberg's ``bucket[N]`` transform is ``(murmur3_x86_32(v) & Integer.MAX_VALUE)
  % N`` with seed 0, where ``v`` is the value's Iceberg single-value serialisation for
  hashing: int, long and date as an 8-byte little-endian long, timestamps as microseconds
  (a long), strings as UTF-8, binary as is. lakeop places rows with the same function for an
  Iceberg table, so that engines prune on the table's partition spec.
- **Partition mapping.** ``date`` → the ``year``/``month``/``day``/``hour`` transform of the
  column (hidden: no column is added); ``hash`` → ``bucket[N]`` of the column; ``range`` and
  ``list`` → identity on the derived label column (``<column>_range``/``<column>_group``),
  which is part of the Iceberg schema. The transform value of a file is computed from the
  Hive key values lakeop's writer groups it by (:func:`transform_value`).
- **Schema changes** are :mod:`lakeop.core.schema.format_rules` (``FormatCannotEvolve``).
- **Catalog.** A Table's ``catalogSecretRef``, else the operator's default, else (``file://``
  only) the embedded SQLite catalog; an object-store table with none is refused by one rule
  (:func:`catalog_problem`) at every entrance: webhook, ``lakeop validate``, the Table's
  reconcile and the run. A Job pod gets the URL by secret reference only
  (:func:`pod_catalog_secret`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from lakeop.core.spec.layout import IcebergSpec, PartitionSpec
    from lakeop.core.spec.resources import TableSpec
    from lakeop.core.spec.sources import SecretKeyRef

#: the embedded catalog of a ``file://`` table with no catalog named, under its location
EMBEDDED_CATALOG = "_lakeop/iceberg-catalog.db"
#: the operator-wide default catalog (a SQLAlchemy URL)
CATALOG_ENV = "LAKEOP_ICEBERG_CATALOG_URI"
#: ``name/key`` of the Secret, in each Table's namespace, Job pods read the default from
CATALOG_SECRET_ENV = "LAKEOP_ICEBERG_CATALOG_SECRET"
#: the pyiceberg catalog name lakeop registers tables under (the ``catalog_name`` column)
CATALOG_NAME = "lakeop"

_C1, _C2 = 0xCC9E2D51, 0x1B873593
_MASK = 0xFFFFFFFF
_EPOCH = dt.date(1970, 1, 1)

U32 = npt.NDArray[np.uint32]


# ------------------------------------------------------------------------------ catalog


def no_catalog_message(table: str, location: str) -> str:
    """Why an object-store Iceberg table with no catalog named is refused (``table``:
    ``ns/name``)."""
    scheme = location.split("://", 1)[0] if "://" in location else "s3"
    return (
        f"Table {table}: spec.iceberg.catalogSecretRef: an {scheme}:// Iceberg table needs a "
        f"SQL catalog (catalogSecretRef, or the operator's {CATALOG_ENV}); the embedded "
        "SQLite catalog is for file:// tables only"
    )


def catalog_problem(
    table: str, spec: IcebergSpec, location: str | None, *, default_catalog: bool
) -> str | None:
    """The refusal of Iceberg table ``table`` (``ns/name``) when no catalog can hold it, else
    None: no ``catalogSecretRef``, no operator default (``default_catalog``) and a location
    that is not ``file://`` (None: not known yet, nothing to say)."""
    if spec.catalog_secret_ref is not None or default_catalog:
        return None
    if location is None or location.startswith("file://"):
        return None
    return no_catalog_message(table, location)


def pod_catalog_secret(table: TableSpec, default: SecretKeyRef | None) -> SecretKeyRef | None:
    """The Secret key a Job pod of ``table`` gets its catalog URL from (by reference, never
    a value): the Table's ``catalogSecretRef``, else the operator's default Secret; None for
    other formats and for the embedded catalog."""
    if table.format != "iceberg":
        return None
    return table.iceberg.catalog_secret_ref or default


# ------------------------------------------------------------------------------ murmur3


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def murmur3_32(data: bytes) -> int:
    """MurmurHash3 x86 32-bit, seed 0, as a signed 32-bit int (Java's ``int``)."""
    h = 0
    n = len(data) // 4 * 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (_rotl((k * _C1) & _MASK, 15) * _C2) & _MASK
        h = (_rotl(h ^ k, 13) * 5 + 0xE6546B64) & _MASK
    tail = data[n:]
    if tail:
        k = int.from_bytes(tail, "little")
        h ^= (_rotl((k * _C1) & _MASK, 15) * _C2) & _MASK
    h = _fmix(h ^ len(data))
    return h - (1 << 32) if h & 0x80000000 else h


def hash_value(value: Any) -> int:
    """Iceberg's hash of one value (int/long/date/timestamp/str/bytes/Decimal)."""
    if isinstance(value, bool):
        raise TypeError("Iceberg does not bucket booleans")
    if isinstance(value, int):
        return murmur3_32((value & ((1 << 64) - 1)).to_bytes(8, "little"))
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        delta = value - dt.datetime(1970, 1, 1)
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return hash_value(micros)
    if isinstance(value, dt.date):
        return hash_value((value - _EPOCH).days)
    if isinstance(value, dt.time):
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        return hash_value(micros + value.microsecond)
    if isinstance(value, str):
        return murmur3_32(value.encode())
    if isinstance(value, bytes | bytearray):
        return murmur3_32(bytes(value))
    sign, digits, exponent = value.as_tuple()  # a Decimal: its unscaled value, big-endian
    unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    length = max(1, (unscaled.bit_length() + 8) // 8)
    _ = exponent
    return murmur3_32(unscaled.to_bytes(length, "big", signed=True))


def bucket(hash32: int, buckets: int) -> int:
    return (hash32 & 0x7FFFFFFF) % buckets


def _rotl_v(x: U32, r: int) -> U32:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _mix_k(k: U32) -> U32:
    return _rotl_v(k * np.uint32(_C1), 15) * np.uint32(_C2)


def murmur3_int64(values: npt.NDArray[np.int64]) -> U32:
    """:func:`murmur3_32` of each value's 8 little-endian bytes, vectorised (unsigned)."""
    with np.errstate(over="ignore"):
        words = values.astype("<i8", copy=False).view("<u4").reshape(-1, 2)
        h = np.zeros(len(values), dtype=np.uint32)
        for i in (0, 1):
            h ^= _mix_k(words[:, i].astype(np.uint32))
            h = _rotl_v(h, 13) * np.uint32(5) + np.uint32(0xE6546B64)
        h ^= np.uint32(8)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return h


def buckets_of(hashes: U32, buckets: int) -> npt.NDArray[np.int32]:
    return ((hashes & np.uint32(0x7FFFFFFF)) % np.uint32(buckets)).astype(np.int32)


# ------------------------------------------------------------------------------ partitioning


def partition_fields(spec: PartitionSpec) -> list[tuple[str, str, str]]:
    """``(source column, transform, partition field name)`` of the Iceberg partition spec.
    The transform is spelled as Iceberg does: ``day``, ``bucket[16]``, ``identity``."""
    column = spec.column or ""
    if spec.strategy == "date":
        gran = spec.granularity or "day"
        return [(column, gran, f"{column}_{gran}")]
    if spec.strategy == "hash":
        return [(column, f"bucket[{spec.buckets or 1}]", f"{column}_bucket")]
    if spec.strategy in {"range", "list"}:
        label = label_column(spec)
        return [(label, "identity", label)]
    return []


def label_column(spec: PartitionSpec) -> str:
    """The derived column a ``range``/``list`` table is identity-partitioned by."""
    suffix = "range" if spec.strategy == "range" else "group"
    return f"{spec.column}_{suffix}"


def transform_value(spec: PartitionSpec, hive: dict[str, str | None]) -> Any:
    """The Iceberg partition value of a file from the Hive key values it is grouped by
    (``{"year": "2024", "month": "3", ...}``; None for the null partition)."""
    if spec.strategy == "date":
        gran = spec.granularity or "day"
        if hive.get("year") is None:
            return None
        year = int(str(hive["year"]))
        if gran == "year":
            return year - 1970
        month = int(str(hive["month"]))
        if gran == "month":
            return (year - 1970) * 12 + month - 1
        days = (dt.date(year, month, int(str(hive["day"]))) - _EPOCH).days
        if gran == "day":
            return days
        return days * 24 + int(str(hive["hour"]))
    if spec.strategy == "hash":
        value = hive.get("bucket")
        return None if value is None else int(value)
    (value,) = hive.values()
    return value
