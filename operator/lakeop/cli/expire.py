"""``lakeop expire -f PATH``: delete what retention lets go (see :mod:`lakeop.cli.maintain`)."""

from __future__ import annotations

from lakeop.cli.maintain import add_arguments
from lakeop.cli.maintain import run_expire as run

__all__ = ["add_arguments", "run"]
