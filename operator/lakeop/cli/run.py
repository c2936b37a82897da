"""``lakeop run``: start the operator over :mod:`lakeop.handlers` with a typed memo.

The options are kopf run's own (``--standalone``, ``--namespace``/``-n``,
``--all-namespaces``/``-A``, ``--liveness``, ``--peering``, ``--priority``, ``--dev``,
``--verbose``/``--debug``/``--quiet``, ``--log-format``, ``--log-prefix``, ``--log-refkey``),
plus ``--webhook-port`` (the same as ``LAKEOP_WEBHOOK_PORT``), which also loads the validating
webhook handlers. Without a scope option the operator watches ``LAKEOP_NAMESPACE``
(comma-separated) when set, else all namespaces. Without a cluster to connect to (no
in-cluster credentials, no kubeconfig) it exits at once with status 2 and says what it looked
for (:mod:`lakeop.cli.credentials`).

Nothing travels through the process environment: the options and ``LAKEOP_*`` settings become
one :class:`~lakeop.config.Settings` (with the namespaces served), the API client and metrics
are made once, and all of it reaches the handlers as an
:class:`~lakeop.memo.OperatorMemo` through ``kopf.operator(memo=..., namespaces=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lakeop.cli.credentials import missing_credentials
from lakeop.config import Settings

LOG_FORMATS = ("plain", "full", "json")


@dataclass(frozen=True)
class Scope:
    """What ``kopf.operator`` is told about the namespaces, peering and liveness."""

    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    standalone: bool | None = None
    peering_name: str | None = None
    priority: int | None = None
    liveness_endpoint: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable; default: $LAKEOP_NAMESPACE, else all)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", dest="clusterwide", help="watch all"
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        default=None,
        help="no peering: do not pause for other operator instances",
    )
    parser.add_argument("--dev", action="store_true", help="peering priority 666 (dev mode)")
    parser.add_argument(
        "-L", "--liveness", dest="liveness_endpoint", metavar="URL", help="liveness endpoint"
    )
    parser.add_argument(
        "-P", "--peering", dest="peering_name", metavar="NAME", help="peering object name"
    )
    parser.add_argument("-p", "--priority", type=int, help="peering priority")
    parser.add_argument(
        "--webhook-port",
        type=int,
        metavar="PORT",
        help="serve the validating webhook here (default: $LAKEOP_WEBHOOK_PORT, else none)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    parser.add_argument("-d", "--debug", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="full", help="log line format")
    parser.add_argument("--log-refkey", metavar="KEY", help="JSON logs: the object's key")
    parser.add_argument(
        "--log-prefix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prefix log lines with the object's name",
    )


def configure(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[Settings, Scope]:
    """The operator's settings and kopf scope from ``lakeop run``'s options and ``LAKEOP_*``."""
    settings = Settings.from_env(environ)
    namespaces: tuple[str, ...] = tuple(args.namespaces)
    clusterwide = bool(args.clusterwide)
    if not namespaces and not clusterwide:
        namespaces = settings.namespaces
        clusterwide = not namespaces
    settings = dataclasses.replace(
        settings,
        served_namespaces=namespaces,
        webhook_port=args.webhook_port if args.webhook_port is not None else settings.webhook_port,
    )
    scope = Scope(
        namespaces=namespaces,
        clusterwide=clusterwide,
        standalone=args.standalone,
        peering_name=args.peering_name,
        priority=666 if args.dev else args.priority,
        liveness_endpoint=args.liveness_endpoint,
    )
    return settings, scope


async def operate(settings: Settings, scope: Scope) -> None:
    """Make the clients, run the operator until it is stopped, then close them."""
    import kopf  # noqa: PLC0415  (other commands need no kopf)

    from lakeop.kube.client import Kube  # noqa: PLC0415
    from lakeop.memo import OperatorMemo  # noqa: PLC0415
    from lakeop.metrics import Metrics, start_metrics_server  # noqa: PLC0415

    memo = OperatorMemo(settings=settings, kube=await Kube.connect(), metrics=Metrics())
    server = None
    if settings.metrics_port is not None:
        server = start_metrics_server(settings.metrics_port, memo.metrics)
    try:
        await kopf.operator(
            memo=memo,
            namespaces=scope.namespaces,
            clusterwide=scope.clusterwide,
            standalone=scope.standalone,
            peering_name=scope.peering_name,
            priority=scope.priority,
            liveness_endpoint=scope.liveness_endpoint,
        )
    finally:
        if server is not None:
            server.stop()
        await memo.kube.close()


def run(args: argparse.Namespace) -> int:
    import kopf  # noqa: PLC0415

    problem = missing_credentials(os.environ)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    settings, scope = configure(args, os.environ)
    kopf.configure(
        debug=args.debug,
        verbose=args.verbose,
        quiet=args.quiet,
        log_format=kopf.LogFormat[args.log_format.upper()],
        log_prefix=args.log_prefix,
        log_refkey=args.log_refkey,
    )
    importlib.import_module("lakeop.handlers")  # registers the handlers with kopf
    # the resync timers' interval is a setting (LAKEOP_RESYNC_SECONDS), read above, not at import
    importlib.import_module("lakeop.handlers.timers").register_timers(settings.resync_seconds)
    if settings.webhook_port is not None:  # kopf refuses admission handlers without a server
        importlib.import_module("lakeop.handlers.webhook")
    try:
        asyncio.run(operate(settings, scope))
    except KeyboardInterrupt:
        return 0
    return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lakeop run",
        description="Start the lakeop operator: it reconciles Tables, SchemaVersions and "
        "IngestionJobs and runs ingestion as Kubernetes Jobs.",
        epilog="Settings come from LAKEOP_* environment variables (docs/operator.md).",
    )
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))
