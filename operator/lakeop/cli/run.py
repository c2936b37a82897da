"""``lakeop run``: start the operator, i.e. ``kopf run`` over :mod:`lakeop.handlers`.

Every kopf run option passes through unchanged (``--standalone``, ``--namespace``,
``--all-namespaces``, ``--liveness http://0.0.0.0:8080/healthz``, ``--peering``,
``--log-format json``, ``--verbose``...). lakeop adds ``--webhook-port`` (the same as
``LAKEOP_WEBHOOK_PORT``), which also loads the validating webhook handlers. Without a scope
option the operator watches ``LAKEOP_NAMESPACE`` (comma-separated) when set, else all
namespaces. Without a cluster to connect to (no in-cluster credentials, no kubeconfig) it
exits at once with status 2 and says what it looked for (:mod:`lakeop.cli.credentials`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import MutableMapping, Sequence

from lakeop.cli.credentials import missing_credentials

SCOPE_OPTIONS = ("-n", "--namespace", "-A", "--all-namespaces")
#: Tells the webhook which namespaces this operator serves (its config is cluster-wide).
SERVED_ENV = "LAKEOP_SERVED_NAMESPACES"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kopf_options",
        nargs=argparse.REMAINDER,
        help="options for kopf run (see `lakeop run --help`)",
    )


def run(args: argparse.Namespace) -> int:
    return main(list(args.kopf_options))


def served_namespaces(argv: Sequence[str]) -> list[str]:
    """The namespace patterns of kopf's ``--namespace``/``-n`` options (none: all)."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        if arg in ("-n", "--namespace") and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith(("--namespace=", "-n=")):
            found.append(arg.split("=", 1)[1])
    return found


def kopf_argv(argv: Sequence[str], environ: MutableMapping[str, str]) -> list[str]:
    """The ``kopf`` command line for ``lakeop run ARGV``; consumes lakeop's own options."""
    rest: list[str] = []
    items = list(argv)
    while items:
        item = items.pop(0)
        if item == "--webhook-port" and items:
            environ["LAKEOP_WEBHOOK_PORT"] = items.pop(0)
        elif item.startswith("--webhook-port="):
            environ["LAKEOP_WEBHOOK_PORT"] = item.split("=", 1)[1]
        else:
            rest.append(item)
    scoped = any(a in SCOPE_OPTIONS or a.startswith(("--namespace=", "-n=")) for a in rest)
    if not scoped and "--help" not in rest:
        namespaces = environ.get("LAKEOP_NAMESPACE", "").replace(",", " ").split()
        if namespaces:
            for ns in namespaces:
                rest += ["--namespace", ns]
        else:
            rest.append("--all-namespaces")
    environ[SERVED_ENV] = ",".join(served_namespaces(rest))
    modules = ["-m", "lakeop.handlers"]
    if environ.get("LAKEOP_WEBHOOK_PORT"):
        modules += ["-m", "lakeop.handlers.webhook"]
    return ["run", *modules, *rest]


def main(argv: Sequence[str]) -> int:
    from kopf.cli import main as kopf_main  # noqa: PLC0415  (other commands need no kopf)

    args = kopf_argv(argv, os.environ)
    problem = None if "--help" in args else missing_credentials(os.environ)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        kopf_main(args=args, prog_name="lakeop", standalone_mode=False)
    except KeyboardInterrupt:
        return 0
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
