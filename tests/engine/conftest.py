"""Session-wide real services for engine tests (see services.py): PostgreSQL and MinIO."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_services import S3Server, minio, postgres
from enginekit import reap_spawned


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres() as url:
        yield url


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    with minio() as server:
        yield server


@pytest.fixture(autouse=True)
def _reap_spawned() -> Iterator[None]:
    yield
    reap_spawned()
