"""Just enough of the kubelet's HTTPS API for ``kubectl logs``.

The API server answers ``kubectl logs`` by calling the node's kubelet endpoint
(``GET /containerLogs/<namespace>/<pod>/<container>``, on the port the Node advertises in
``status.daemonEndpoints``). This serves the container log files the node writes, with
``tailLines``, ``limitBytes`` and ``follow``. Bound to 127.0.0.1; exec, attach and
port-forward are not offered.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("procnode.logs")

# (namespace, pod, container) -> is the container still able to write output?
IsRunning = Callable[[str, str, str], bool]
FOLLOW_POLL_SECONDS = 0.2


def tail_lines(data: bytes, count: int) -> bytes:
    if count <= 0:
        return b""
    return b"".join(data.splitlines(keepends=True)[-count:])


class _Handler(BaseHTTPRequestHandler):
    server: _LogServer

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["healthz"]:
            self._reply(200, b"ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._reply(404, b"only /containerLogs/<namespace>/<pod>/<container> is served here")
            return
        _, namespace, pod, container = parts
        path = self.server.logs_dir / f"{namespace}_{pod}_{container}.log"
        if not path.exists():
            self._reply(404, f"no log for container {container} of pod {namespace}/{pod}".encode())
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        data = path.read_bytes()
        if "tailLines" in query:
            data = tail_lines(data, int(query["tailLines"]))
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        try:
            self.wfile.write(data[:limit] if limit is not None else data)
            if query.get("follow") == "true" and limit is None:
                self._follow(path, path.stat().st_size, (namespace, pod, container))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _follow(self, path: Path, offset: int, key: tuple[str, str, str]) -> None:
        with path.open("rb") as fh:
            fh.seek(offset)
            while True:
                chunk = fh.read()
                if chunk:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                elif not self.server.is_running(*key):
                    return
                else:
                    time.sleep(FOLLOW_POLL_SECONDS)

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _LogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, logs_dir: Path, is_running: IsRunning) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.logs_dir = logs_dir
        self.is_running = is_running


def serve_logs(
    port: int, logs_dir: Path, is_running: IsRunning, cert: Path, key: Path
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; returns the server (``shutdown()`` stops it)."""
    server = _LogServer(port, logs_dir, is_running)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="logserver", daemon=True).start()
    return server
