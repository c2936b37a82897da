"""``lakeop compact -f PATH``: compact a table's small files (see :mod:`lakeop.cli.maintain`)."""

from __future__ import annotations

from lakeop.cli.maintain import add_arguments
from lakeop.cli.maintain import run_compact as run

__all__ = ["add_arguments", "run"]
