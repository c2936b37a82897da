"""``kubectl lakeop``: the kubectl plugin (console script ``kubectl-lakeop``).

kubectl finds ``kubectl-lakeop`` on PATH and runs it with the words after ``kubectl lakeop``;
it passes no flags of its own, so this reads ``--namespace``/``-n``, ``--context`` and
``--kubeconfig`` (else ``KUBECONFIG``, else ``~/.kube/config``) as kubectl does: the namespace
defaults to the context's, else ``default``. The verbs only use what the operator already
honours (docs/lifecycle.md):

- ``status``: every Table, SchemaVersion and IngestionJob with its phase and Ready condition;
- ``runs JOB``: the run counters, the run in flight and the last one, and the kept Jobs;
- ``rerun JOB``: a new ``lakeop.io/rerun`` token; ``suspend JOB`` / ``resume JOB``:
  ``spec.suspend`` (resume also drops ``lakeop.io/cancel``); ``cancel JOB``: ``spec.suspend``
  and ``lakeop.io/cancel``, which stops the run in flight without committing it;
- ``logs JOB [--run N]``: the pod logs of run N (1 = the oldest kept Job; default the newest);
- ``history TABLE`` and ``query TABLE "SQL"``: ``lakeop history`` / ``lakeop query`` on the
  Table's resolved location.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from lakeop.cli.manifests import ManifestError
from lakeop.errors import LakeopError

VERBS = ("status", "runs", "rerun", "suspend", "resume", "cancel", "logs", "history", "query")


def _connection_options(after_verb: bool) -> argparse.ArgumentParser:
    """``-n``, ``--context``, ``--kubeconfig``, before or after the verb (after it, an absent
    option must not reset what was given before it: argparse's sub-parser defaults would)."""
    common = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if after_verb else None
    common.add_argument(
        "-n", "--namespace", default=default, help="default: the context's, else default"
    )
    common.add_argument(
        "--context", default=default, help="the kubeconfig context (default: the current one)"
    )
    common.add_argument(
        "--kubeconfig", default=default, help="default: $KUBECONFIG, else ~/.kube/config"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl lakeop",
        description="Look at and steer lakeop's Tables and IngestionJobs.",
        parents=[_connection_options(after_verb=False)],
    )
    common = _connection_options(after_verb=True)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    sub.add_parser("status", parents=[common], help="all lakeop objects and their conditions")
    for verb, text in [
        ("runs", "run history from status and the kept Jobs"),
        ("rerun", "start one more run now (a new lakeop.io/rerun token)"),
        ("suspend", "spec.suspend: true"),
        ("resume", "spec.suspend: false (and drop lakeop.io/cancel)"),
        ("cancel", "stop the run in flight (suspend + lakeop.io/cancel)"),
    ]:
        sub.add_parser(verb, parents=[common], help=text).add_argument("job", metavar="JOB")
    logs = sub.add_parser("logs", parents=[common], help="pod logs of a run")
    logs.add_argument("job", metavar="JOB")
    logs.add_argument("--run", type=int, metavar="N", help="1 = oldest kept run (default: newest)")
    hist = sub.add_parser("history", parents=[common], help="a Table's commits")
    hist.add_argument("table", metavar="TABLE")
    hist.add_argument("--output", choices=("text", "json"), default="text")
    q = sub.add_parser("query", parents=[common], help="DuckDB SQL over a Table")
    q.add_argument("table", metavar="TABLE")
    q.add_argument("sql", metavar="SQL")
    q.add_argument("--output", choices=("table", "csv", "json"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from lakeop.cli import kubectl_verbs  # noqa: PLC0415  (kubernetes_asyncio is slow to import)

    try:
        return asyncio.run(kubectl_verbs.dispatch(args, dict(os.environ)))
    except (LakeopError, ManifestError, OSError) as e:
        print(f"kubectl lakeop {args.verb}: {e}", file=sys.stderr)
        return 1


def render(rows: list[list[Any]], columns: list[str]) -> str:
    """kubectl's look: upper-case headers, columns padded, no borders."""
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = [
        "   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in [columns, *cells]
    ]
    return "\n".join(lines) + "\n"


def no_objects(namespace: str, what: str = "lakeop objects") -> str:
    return f"No {what} found in {namespace} namespace.\n"
