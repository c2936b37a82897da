"""``Storage.create_exclusive``: racing creators, exactly one wins, content intact.

On local disk (hard link of a temporary file) and on the real MinIO of the engine tests
(a PUT with ``If-None-Match: *``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from engine_services import S3Server

from lakeop.storage import Storage, open_storage

RACERS = 8


def race(storage: Storage, rel: str) -> list[bool]:
    """RACERS threads create ``rel`` at once, each with its own content."""
    results: list[bool] = [False] * RACERS
    start = threading.Barrier(RACERS)

    def one(i: int) -> None:
        start.wait()
        results[i] = storage.create_exclusive(rel, f"creator {i} ".encode() * 1000)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def check(storage: Storage) -> None:
    for attempt in range(5):
        rel = f"_lakeop/claims/job/{attempt:08d}.json"
        results = race(storage, rel)
        assert results.count(True) == 1, results
        winner = results.index(True)
        assert storage.read_bytes(rel) == f"creator {winner} ".encode() * 1000
    assert storage.create_exclusive("_lakeop/claims/job/00000000.json", b"late") is False
    assert storage.read_bytes("_lakeop/claims/job/00000000.json") != b"late"
    assert storage.create_exclusive("_lakeop/claims/other/00000001.json", b"x") is True
    names = [e.path for e in storage.list_files("_lakeop/claims")]
    assert not [n for n in names if ".tmp-" in n]  # no temporaries left behind


def test_local_disk(tmp_path: Path) -> None:
    check(open_storage(f"file://{tmp_path}/lake"))


@pytest.mark.s3
def test_minio(s3: S3Server) -> None:
    fs = pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        endpoint_override=s3.endpoint.split("://")[1],
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir("exclusive")
    check(open_storage("s3://exclusive/lake", s3.env(), "LAKEOP_STORAGE_"))
