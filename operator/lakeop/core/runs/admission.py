"""Every rule an IngestionJob must pass before it can run, in one function for every entrance.

The webhook (at ``kubectl apply``), ``lakeop validate`` (in CI) and the operator must refuse
the same things, so each calls :func:`check_ingestion_job`: lakeop's spec parser (fields,
source, podTemplate conflicts), then the scheduler's own parsers for ``spec.schedule`` (cron
syntax and ranges) and ``spec.timeZone`` (IANA names; also without a schedule, where it can
only be a mistake). Each error names the object, the field and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.runs.cron import InvalidScheduleError, parse_schedule, parse_time_zone
from lakeop.core.spec.resources import IngestionJobSpec, parse_ingestion_job


def check_ingestion_job(manifest: Mapping[str, Any]) -> IngestionJobSpec:
    """The parsed spec, or the first lakeop error (``InvalidSpecError`` and subclasses)."""
    spec = parse_ingestion_job(manifest)
    where = f"IngestionJob {spec.namespace}/{spec.name}"
    if spec.schedule is not None:
        try:
            parse_schedule(spec.schedule)
        except InvalidScheduleError as exc:
            raise InvalidScheduleError(f"{where}: spec.schedule: {exc}") from exc
    if spec.time_zone is not None:
        try:
            parse_time_zone(spec.time_zone)
        except InvalidScheduleError as exc:
            raise InvalidScheduleError(f"{where}: spec.timeZone: {exc}") from exc
    return spec
