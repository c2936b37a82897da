"""Real services for engine tests, installed and started by the project's own files.

- PostgreSQL from Debian's packages (``apt-get install -y postgresql`` when no ``initdb`` is
  found under ``/usr/lib/postgresql/*/bin``), a throw-away cluster in a temp dir on a
  loopback port; ``initdb`` refuses root, so it runs as the ``postgres`` user via ``runuser``.
  ``postgres(listen=..., allow=...)`` also listens on other host addresses (the devcluster's
  pod bridge gateway) and trusts clients from the given networks (its pods).
- MinIO, built once from the Go module proxy at a pinned version into ``.devcluster/bin/``
  (``go install``; minio's go.mod has no replace directives), then started on a loopback port
  (or ``minio(host=...)``: another host address, such as the pod bridge gateway) with a temp
  data dir. The first build takes minutes; later runs reuse the binary.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".devcluster" / "bin"
MINIO_MODULE = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float, what: str, host: str = "127.0.0.1") -> None:
    wait_for(lambda: _listening(port, host), timeout, f"{what} to listen on {host}:{port}", 0.1)


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2):
        return True


# ---------------------------------------------------------------------------- postgres


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.geteuid() != 0:
            raise RuntimeError("PostgreSQL is not installed and installing needs root")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


@contextmanager
def postgres(listen: Sequence[str] = (), allow: Sequence[str] = ()) -> Iterator[str]:
    """A running PostgreSQL; yields a SQLAlchemy URL (psycopg 3, trust auth on loopback).

    ``listen``: more addresses to listen on, the first of them the URL's host; ``allow``:
    networks (``10.88.0.0/24``) whose clients are trusted too.
    """
    bindir = pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="lakeop-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = workdir / "data", free_port()
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    if allow:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.writelines(f"host all all {net} trust\n" for net in allow)
    hosts = ",".join(["127.0.0.1", *listen])
    opts = f"-h {hosts} -p {port} -k {workdir} -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(workdir / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        host = listen[0] if listen else "127.0.0.1"
        yield f"postgresql+psycopg://postgres@{host}:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------- minio


def minio_bin() -> Path:
    binary = BIN / "minio"
    if not binary.exists():
        go = shutil.which("go") or "/usr/local/go/bin/go"
        BIN.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(BIN), "GOFLAGS": "-trimpath"}
        subprocess.run([go, "install", MINIO_MODULE], check=True, env=env)
    return binary


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def env(self, prefix: str = "LAKEOP_STORAGE_") -> dict[str, str]:
        return {
            f"{prefix}AWS_ENDPOINT_URL": self.endpoint,
            f"{prefix}AWS_ACCESS_KEY_ID": self.access_key,
            f"{prefix}AWS_SECRET_ACCESS_KEY": self.secret_key,
            f"{prefix}AWS_REGION": "us-east-1",
        }


@contextmanager
def minio(host: str = "127.0.0.1") -> Iterator[S3Server]:
    """A running MinIO on ``host`` (a loopback or other host address) and a free port."""
    binary = minio_bin()
    workdir = Path(tempfile.mkdtemp(prefix="lakeop-minio-"))
    port, console = free_port(), free_port()
    server = S3Server(f"http://{host}:{port}", "lakeop-test", "lakeop-test-secret")
    env = {
        **os.environ,
        "MINIO_ROOT_USER": server.access_key,
        "MINIO_ROOT_PASSWORD": server.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    with open(workdir / "log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(binary),
                "server",
                str(workdir / "data"),
                "--address",
                f"{host}:{port}",
                "--console-address",
                f"127.0.0.1:{console}",
                "--quiet",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_port(port, 60, "minio", host)
        health = f"{server.endpoint}/minio/health/ready"
        wait_for(lambda: _healthy(health), 60, f"minio ready at {health}", 0.2, ignore=(OSError,))
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
