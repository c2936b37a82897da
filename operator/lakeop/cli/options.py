"""What several sub-commands share on the command line: the options only Job pods pass
(accepted, never shown in ``--help``), the one local default location, and counted nouns.

The operator starts ``lakeop ingest``/``compact``/``expire`` in Job pods with ``--plan-env``,
``--termination-log`` and ``--run-id``; a person at a terminal never needs them, so they are
hidden from the help but parsed as before. Tables without ``spec.location`` land under one
root, the same for the operator started locally and for the CLI:
``--default-location``, else ``$LAKEOP_DEFAULT_LOCATION``, else ``./lake``
(:data:`lakeop.core.constants.LOCAL_DEFAULT_ROOT`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakeop.core.constants import DEFAULT_LOCATION_ENV, LOCAL_DEFAULT_ROOT


def pod_only(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """An option the operator's Job pods pass: parsed, but hidden from ``--help``."""
    parser.add_argument(*flags, help=argparse.SUPPRESS, **kwargs)


def add_pod_options(parser: argparse.ArgumentParser) -> None:
    """``--plan-env VAR``, ``--termination-log PATH`` and ``--run-id ID``, hidden."""
    pod_only(parser, "--plan-env", metavar="VAR")
    pod_only(parser, "--termination-log", metavar="PATH")
    pod_only(parser, "--run-id")


def add_default_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default-location",
        metavar="ROOT",
        help=f"root for tables without spec.location (default: ${DEFAULT_LOCATION_ENV}, "
        f"else ./{LOCAL_DEFAULT_ROOT})",
    )


def local_root(default_location: str | None, env: Mapping[str, str]) -> str:
    """The root of tables without ``spec.location``: the option, the variable, else
    ``./lake`` (absolute)."""
    return (
        default_location or env.get(DEFAULT_LOCATION_ENV) or str(Path(LOCAL_DEFAULT_ROOT).resolve())
    )


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1,024 rows`` (thousands separated)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
