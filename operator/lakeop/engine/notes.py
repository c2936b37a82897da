"""The maintenance engine's messages (planning, conflicts, what expiry deleted).

They go through ``logging`` (logger ``lakeop.engine.maintenance``), so ``LAKEOP_LOG_FORMAT=json``
covers them in pods and :func:`lakeop.logging_setup.engine_output` shows them on a terminal;
a caller that wants them on a stream of its own passes it (tests do).
"""

from __future__ import annotations

import logging
from typing import TextIO

LOG = logging.getLogger("lakeop.engine.maintenance")


def say(progress: TextIO | None, line: str) -> None:
    """``line`` on ``progress`` when given, else as an INFO record (without the ``lakeop ``
    prefix, which the human log format adds)."""
    if progress is not None:
        print(line, file=progress, flush=True)
    else:
        LOG.info(line.removeprefix("lakeop "))
