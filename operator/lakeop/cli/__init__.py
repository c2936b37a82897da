"""The ``lakeop`` command line: one entry point, one module per sub-command.

Sub-command modules are imported lazily so ``lakeop schema check`` in a pre-commit hook
does not pay for importing kopf or pyarrow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lakeop import __version__
from lakeop.logging_setup import configure, json_requested

# sub-command -> (module, help). Each module exposes ``add_arguments(parser)`` and
# ``run(args) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("lakeop.cli.run", "start the operator (kopf run's options)"),
    "ingest": ("lakeop.cli.ingest", "run one IngestionJob locally from manifests"),
    "compact": ("lakeop.cli.compact", "compact a Table's small files locally from manifests"),
    "expire": ("lakeop.cli.expire", "expire a Table's replaced files and old rejected records"),
    "schema": ("lakeop.cli.schema", "check compatibility of schema versions, or diff two"),
    "validate": ("lakeop.cli.validate", "offline check of a GitOps folder of lakeop objects"),
    "query": ("lakeop.cli.query", "run DuckDB SQL over a table's committed rows (any format)"),
    "history": ("lakeop.cli.history", "one line per commit of a table: run, rows, operation"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` just that sub-command's options (the others stay
    listed in ``--help`` but their modules are not imported)."""
    parser = argparse.ArgumentParser(
        prog="lakeop",
        description="Declarative, GitOps-native data-lake ingestion for Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"lakeop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["run"]:
        # the operator's logging is kopf's (``--log-format``), set up by lakeop.cli.run
        return int(importlib.import_module("lakeop.cli.run").main(args_list[1:]))
    chosen = args_list[0] if args_list and args_list[0] in COMMANDS else None
    parser = build_parser(chosen)
    args = parser.parse_args(args_list)
    if json_requested():
        # kopf sets up the operator's logging itself (``--log-format=json``); this covers
        # ``lakeop ingest`` in Job pods and the offline commands.
        configure(json=True)
    return int(importlib.import_module(args._module).run(args))
