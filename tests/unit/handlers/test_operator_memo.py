"""lakeop.memo, the memo every handler gets: frozen, and kopf's per-object shallow copy
shares its clients and locks."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from fake_kube import FakeKube

from lakeop.config import Settings
from lakeop.memo import OperatorMemo


def test_kopfs_copy_shares_clients_and_run_locks() -> None:
    memo = OperatorMemo(settings=Settings(default_location="file:///lake"), kube=FakeKube())
    twin = copy.copy(memo)  # what kopf does for every object it serves
    assert twin.kube is memo.kube
    assert twin.metrics is memo.metrics
    assert twin.run_lock("ns", "a") is memo.run_lock("ns", "a")
    assert memo.run_lock("ns", "a") is not memo.run_lock("ns", "b")


def test_handlers_cannot_rebind_a_field() -> None:
    memo = OperatorMemo(settings=Settings(default_location="file:///lake"), kube=FakeKube())
    with pytest.raises(dataclasses.FrozenInstanceError):
        memo.kube = FakeKube()  # type: ignore[misc]
