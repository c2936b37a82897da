"""The kopf timers whose interval is an operator setting, registered when ``lakeop run`` starts.

kopf fixes a timer's interval when the timer is registered. Registering at import time would
mean reading ``LAKEOP_RESYNC_SECONDS`` from the environment at import time; instead
:func:`register_timers` takes the value from :class:`~lakeop.config.Settings` (``resync_seconds``,
default 30 s) and ``lakeop run`` calls it once, after importing :mod:`lakeop.handlers` and
before the operator starts. The handlers themselves are plain functions in their kind's module.
"""

from __future__ import annotations

import kopf

from lakeop.core.constants import GROUP, INGESTION_JOBS, TABLES, VERSION
from lakeop.handlers import runs, table


def register_timers(resync_seconds: float, registry: kopf.OperatorRegistry | None = None) -> None:
    """Register the resync timers with ``registry`` (kopf's default one when None):

    * :func:`lakeop.handlers.runs.follow` on every IngestionJob with a run in flight, the safety
      net behind the Job events (first after a third of the interval);
    * :func:`lakeop.handlers.table.refresh` on every Table, for totals and the current schema
      version (only once the table has been idle for an interval).
    """
    kopf.timer(
        GROUP,
        VERSION,
        INGESTION_JOBS,
        interval=resync_seconds,
        initial_delay=resync_seconds / 3,
        field="status.currentRun",
        registry=registry,
    )(runs.follow)
    kopf.timer(
        GROUP,
        VERSION,
        TABLES,
        interval=resync_seconds,
        initial_delay=resync_seconds,
        idle=resync_seconds,
        registry=registry,
    )(table.refresh)
