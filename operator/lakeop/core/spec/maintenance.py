"""``Table.spec.maintenance``: compaction and retention, declared beside the table.

Keys with their defaults side by side (the API contract's shape)::

    maintenance:
      compaction: {schedule: "0 3 * * *", timeZone: UTC, targetFileSizeBytes: 134217728,
                   minInputFiles: 5}
      retention: {snapshots: 168h, rejectedRecords: 720h}   # Go-style durations
      podTemplate: {...}                                     # as IngestionJob's
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.core.spec.fields import ObjectKey, opt_str
from lakeop.core.spec.podtemplate import PodTemplate, parse_pod_template
from lakeop.errors import InvalidSpecError

DEFAULT_TARGET_BYTES = 128 * 1024 * 1024
DEFAULT_MIN_INPUT_FILES = 5
DEFAULT_SNAPSHOT_RETENTION = "168h"
DEFAULT_REJECTED_RETENTION = "720h"
#: the smallest target: below it a "file near the target" would be mostly footer
MIN_TARGET_BYTES = 1024 * 1024

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass(frozen=True)
class MaintenanceSpec:
    schedule: str | None = None
    time_zone: str | None = None
    target_file_size_bytes: int = DEFAULT_TARGET_BYTES
    min_input_files: int = DEFAULT_MIN_INPUT_FILES
    snapshot_retention_s: float = 168 * 3600.0
    rejected_retention_s: float = 720 * 3600.0
    pod_template: PodTemplate | None = field(default=None, hash=False)


def parse_maintenance(key: ObjectKey, raw: Any) -> MaintenanceSpec:
    """``spec.maintenance`` (absent: the defaults, and no schedule)."""
    if raw is None:
        return MaintenanceSpec()
    if not isinstance(raw, Mapping):
        raise key.error("maintenance", "must be a mapping", raw)
    comp = _mapping(key, raw, "compaction")
    ret = _mapping(key, raw, "retention")
    p = "maintenance.compaction."
    return MaintenanceSpec(
        schedule=opt_str(key, comp, "schedule", p),
        time_zone=opt_str(key, comp, "timeZone", p),
        target_file_size_bytes=_int(
            key, comp, "targetFileSizeBytes", DEFAULT_TARGET_BYTES, MIN_TARGET_BYTES
        ),
        min_input_files=_int(key, comp, "minInputFiles", DEFAULT_MIN_INPUT_FILES, 1),
        snapshot_retention_s=_duration(key, ret, "snapshots", DEFAULT_SNAPSHOT_RETENTION),
        rejected_retention_s=_duration(key, ret, "rejectedRecords", DEFAULT_REJECTED_RETENTION),
        pod_template=_pod_template(key, raw.get("podTemplate")),
    )


def _pod_template(key: ObjectKey, raw: Any) -> PodTemplate | None:
    """IngestionJob's rules (:func:`parse_pod_template`), its errors naming this field."""
    try:
        return parse_pod_template(key, raw)
    except InvalidSpecError as e:
        where = str(e).replace(": spec.podTemplate", ": spec.maintenance.podTemplate", 1)
        raise InvalidSpecError(where, reason=e.reason) from e


def _mapping(key: ObjectKey, raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise key.error(f"maintenance.{name}", "must be a mapping", value)
    return value


def _int(key: ObjectKey, raw: Mapping[str, Any], name: str, default: int, minimum: int) -> int:
    value = raw.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise key.error(f"maintenance.compaction.{name}", f"must be an integer >= {minimum}", value)
    return value


def _duration(key: ObjectKey, raw: Mapping[str, Any], name: str, default: str) -> float:
    value = raw.get(name, default)
    if not isinstance(value, str):
        raise key.error(f"maintenance.retention.{name}", "must be a duration such as 168h", value)
    try:
        return parse_duration(value)
    except ValueError as e:
        raise key.error(f"maintenance.retention.{name}", str(e), show=False) from e


def parse_duration(text: str) -> float:
    """A Go-style duration (``168h``, ``1h30m``, ``90s``, ``0s``) in seconds."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    total, i = 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            raise ValueError(f"duration {text!r}: expected a number at {s[i:]!r}")
        try:
            number = float(s[i:j])
        except ValueError:
            raise ValueError(f"duration {text!r}: bad number {s[i:j]!r}") from None
        k = j
        while k < len(s) and s[k].isalpha():
            k += 1
        unit = s[j:k]
        if unit not in _UNITS:
            raise ValueError(f"duration {text!r}: unit {unit!r} is not one of h, m, s, ms")
        total += number * _UNITS[unit]
        i = k
    return total
