"""Handlers run against :class:`fake_kube.FakeKube`: a typed memo around it, Events recorded,
a local lake under ``tmp_path``, and builders for the three kinds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube
from handler_builders import Event

from lakeop.config import Settings
from lakeop.memo import OperatorMemo


@pytest.fixture
def fake() -> FakeKube:
    return FakeKube()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def settings(lake: Path) -> Settings:
    return Settings(default_location=lake.as_uri(), job_image="lakeop:test")


@pytest.fixture
def memo(fake: FakeKube, settings: Settings) -> OperatorMemo:
    return OperatorMemo(settings=settings, kube=fake)


@pytest.fixture(autouse=True)
def events(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """Every ``kopf.event(...)`` a handler posts, in order."""
    posted: list[Event] = []

    def record(obj: Mapping[str, Any], *, type: str, reason: str, message: str = "") -> None:
        meta = obj.get("metadata") or {}
        posted.append(Event(str(obj.get("kind")), str(meta.get("name")), type, reason, message))

    monkeypatch.setattr(kopf, "event", record)
    return posted
