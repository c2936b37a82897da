"""Entry point: ``PYTHONPATH=devcluster python -m procnode --kubeconfig K --root R --state S``.

Started in the background by ``devcluster/cluster.sh up``; SIGTERM stops every pod process
(TERM, then KILL after a short grace) and exits. Pods left behind in the API are marked
Failed by the next node process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .kubeapi import KubeApi
from .logserver import serve_logs
from .node import ProcNode
from .runtime import NodeContext

ALLOCATABLE = {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="procnode", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", type=Path, required=True, help="repository root")
    parser.add_argument("--state", type=Path, required=True, help=".devcluster directory")
    parser.add_argument("--api-port", type=int, default=16443)
    parser.add_argument("--node-name", default="devnode")
    parser.add_argument("--kubelet-version", default="v1.34.4")
    parser.add_argument("--shutdown-grace", type=float, default=5.0)
    parser.add_argument("--kubelet-port", type=int, default=0, help="log API port; 0: none")
    parser.add_argument("--kubelet-cert", type=Path, help="serving certificate of the log API")
    parser.add_argument("--kubelet-key", type=Path, help="its private key")
    parser.add_argument(
        "--no-schedule",
        action="store_true",
        help="only run pods already bound here (for a second node in tests)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    api = KubeApi(args.kubeconfig)
    ctx = NodeContext(
        api, args.root.resolve(), args.state.resolve(), args.node_name, args.api_port, ALLOCATABLE
    )
    node = ProcNode(
        ctx, args.kubelet_version, schedule=not args.no_schedule, kubelet_port=args.kubelet_port
    )
    node.stop = stop
    node.kill_leftovers()
    while not stop.is_set():
        try:
            node.register()
            break
        except Exception as exc:
            logging.warning("registering node %s failed, retrying: %s", args.node_name, exc)
            stop.wait(2)
    if args.kubelet_port:
        serve_logs(
            args.kubelet_port,
            ctx.state / "logs" / "pods",
            node.container_running,
            args.kubelet_cert,
            args.kubelet_key,
        )
    for target in (node.heartbeat_loop, node.sync_loop):
        threading.Thread(target=target, name=target.__name__, daemon=True).start()
    logging.info("process node %s running", args.node_name)
    stop.wait()
    logging.info("stopping: terminating pod processes")
    node.shutdown(args.shutdown_grace)
    api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
