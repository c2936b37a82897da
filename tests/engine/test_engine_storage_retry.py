"""Storage retries inside the S3 backend, against the real MinIO of the engine tests.

A TCP proxy stands between lakeop and MinIO. While it is "down" it resets every connection,
pooled ones included, as a store behind a failing load balancer does. An outage of 3 s, which
the SDKs' own retries (pyarrow's and boto3's) do not ride out, is ridden out by the
storage's retry policy; a lasting one ends in StorageUnavailableError; a lost exclusive
create is answered once and never retried. What was written is read back from MinIO directly,
around the proxy and around lakeop.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pyarrow.fs as pafs
import pytest
from engine_services import S3Server

from lakeop.errors import StorageUnavailableError
from lakeop.storage import Storage, open_storage
from lakeop.storage.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy

pytestmark = pytest.mark.s3

BUCKET = "retrying"
#: longer than the SDKs' own retries take to give up (about 1.3 s for pyarrow's, 0.6 s for
#: boto3's here), shorter than the storage policy's waits (0.5 + 1 + 2 s) plus its attempts
OUTAGE_S = 3.0


class FlakyProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`down` resets every connection until
    :meth:`up`. Counts the connections it reset and the conditional PUTs it forwarded."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.is_down = False
        self.reset = 0
        self.conditional_puts = 0
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        with self.lock:
            self.is_down = True
            for s in list(self.open):
                _reset(s)
            self.open.clear()

    def up(self) -> None:
        with self.lock:
            self.is_down = False

    def close(self) -> None:
        self.listener.close()
        self.down()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.is_down:
                    self.reset += 1
                    _reset(client)
                    continue
                upstream = socket.create_connection(self.target)
                self.open |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                if requests:
                    with self.lock:
                        self.conditional_puts += chunk.lower().count(b"if-none-match:")
                dst.sendall(chunk)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()


def _reset(s: socket.socket) -> None:
    """Close with a TCP reset (linger 0), as a dead peer looks to the client."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.close()


@pytest.fixture(scope="module")
def direct(s3: S3Server) -> pafs.S3FileSystem:
    """MinIO itself, not through the proxy nor lakeop: the independent reader."""
    fs = pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint_override=s3.endpoint.split("://")[1],
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir(BUCKET)
    return fs


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[FlakyProxy]:
    host, port = s3.endpoint.split("://")[1].split(":")
    p = FlakyProxy((host, int(port)))
    yield p
    p.close()


@pytest.fixture
def waits() -> list[float]:
    return []


def storage_through(
    s3: S3Server, proxy: FlakyProxy, policy: RetryPolicy, name: str = "lake"
) -> Storage:
    env = {**s3.env(), "LAKEOP_STORAGE_AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    url = f"s3://{BUCKET}/{name}-{time.monotonic_ns()}"
    st = open_storage(url, env, "LAKEOP_STORAGE_", policy)
    st.write_bytes("warm", b"up")  # connections pooled before the outage
    return st


@pytest.fixture
def storage(
    s3: S3Server, proxy: FlakyProxy, direct: pafs.S3FileSystem, waits: list[float]
) -> Storage:
    """Through the proxy, with the default policy; its waits (really slept) recorded."""

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    return storage_through(s3, proxy, RetryPolicy(sleep=sleep))


def outage(proxy: FlakyProxy, seconds: float) -> threading.Timer:
    proxy.down()
    timer = threading.Timer(seconds, proxy.up)
    timer.start()
    return timer


def read_direct(fs: pafs.S3FileSystem, storage: Storage, rel: str) -> bytes:
    with fs.open_input_stream(storage.full(rel)) as f:
        return bytes(f.read())


def test_without_the_policy_the_sdks_give_up(
    s3: S3Server, proxy: FlakyProxy, direct: pafs.S3FileSystem
) -> None:
    """One attempt of the storage is the SDKs' own few tries, then StorageUnavailable; the
    tests below see the storage wait and ask again (``waits``), so their outage outlasted
    those tries."""
    once = storage_through(s3, proxy, NO_RETRY, "once")
    proxy.down()
    with pytest.raises(StorageUnavailableError, match="storage unavailable"):
        once.write_bytes("x", b"lost")
    with pytest.raises(StorageUnavailableError, match="storage unavailable"):
        once.create_exclusive("y", b"lost")
    assert proxy.reset >= 2
    proxy.up()
    assert not direct.get_file_info(once.full("x")).is_file


def test_writes_and_reads_ride_out_the_outage(
    storage: Storage, proxy: FlakyProxy, direct: pafs.S3FileSystem, waits: list[float]
) -> None:
    outage(proxy, OUTAGE_S)
    storage.write_bytes_atomic("_lakeop/table.json", b'{"v": 1}')
    assert waits and proxy.reset >= 1  # it failed, the storage waited and asked again
    assert read_direct(direct, storage, "_lakeop/table.json") == b'{"v": 1}'

    outage(proxy, OUTAGE_S)
    waits.clear()
    assert storage.read_bytes("_lakeop/table.json") == b'{"v": 1}'
    assert [e.path for e in storage.list_files("_lakeop")] == ["_lakeop/table.json"]
    assert waits


def test_an_exclusive_create_rides_out_an_outage_and_a_lost_one_is_not_retried(
    storage: Storage, proxy: FlakyProxy, direct: pafs.S3FileSystem, waits: list[float]
) -> None:
    rel = "_lakeop/commits/00000000000000000001.json"
    outage(proxy, OUTAGE_S)
    assert storage.create_exclusive(rel, b"first") is True
    assert waits
    assert proxy.conditional_puts == 1  # sent once the proxy was up again, answered at once
    assert read_direct(direct, storage, rel) == b"first"

    waits.clear()
    assert storage.create_exclusive(rel, b"second") is False  # 412: an answer, not a fault
    assert proxy.conditional_puts == 2 and waits == []  # one more request, not retried
    assert read_direct(direct, storage, rel) == b"first"


def test_a_lasting_outage_ends_in_storage_unavailable(
    storage: Storage, proxy: FlakyProxy, waits: list[float]
) -> None:
    proxy.down()
    with pytest.raises(StorageUnavailableError, match="storage unavailable"):
        storage.read_bytes("warm")
    assert waits == DEFAULT_RETRY.delays()
    waits.clear()
    with pytest.raises(StorageUnavailableError, match="storage unavailable"):
        storage.create_exclusive("_lakeop/claims/j/00000001.json", b"x")
    assert waits == DEFAULT_RETRY.delays()
    proxy.up()
    assert storage.read_bytes("warm") == b"up"
