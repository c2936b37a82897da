"""``spec.partitioning`` is immutable once set: the validating webhook compares the old and
the new value as parsed, so spelling a default out (or leaving it out) or reordering keys
is no change, and any change of the layout is refused with both values named."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube

from lakeop.config import Settings
from lakeop.handlers.webhook import validate_table
from lakeop.memo import OperatorMemo

DAY = {"strategy": "date", "column": "ts"}


def table(partitioning: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if partitioning is not None:
        spec["partitioning"] = partitioning
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "Table",
        "metadata": {"name": "t", "namespace": "a"},
        "spec": spec,
    }


def update(tmp_path: Path, before: Any, after: Any) -> None:
    memo = OperatorMemo(settings=Settings(default_location=tmp_path.as_uri()), kube=FakeKube())
    body = kopf.Body(table(after))  # type: ignore[arg-type]
    asyncio.run(validate_table(body=body, memo=memo, name="t", namespace="a", old=table(before)))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (DAY, {**DAY, "granularity": "day"}),  # the default spelled out
        ({**DAY, "granularity": "day"}, DAY),  # and left out again
        ({"column": "ts", "strategy": "date"}, DAY),  # keys in another order
        ({"strategy": "list", "column": "c", "values": {"eu": ["DE", "FR"]}},) * 2,
        (None, DAY),  # not set before
    ],
    ids=["default-added", "default-dropped", "key-order", "same-list", "first-set"],
)
def test_the_same_layout_written_otherwise_is_no_change(
    tmp_path: Path, before: Any, after: Any
) -> None:
    update(tmp_path, before, after)


@pytest.mark.parametrize(
    "after",
    [
        {**DAY, "granularity": "hour"},
        {"strategy": "date", "column": "other"},
        {"strategy": "hash", "column": "ts", "buckets": 8},
        None,
        {"strategy": "date"},  # does not parse: compared as written
    ],
    ids=["granularity", "column", "strategy", "removed", "unparsable"],
)
def test_a_change_of_layout_is_refused(tmp_path: Path, after: Any) -> None:
    with pytest.raises(kopf.AdmissionError) as e:
        update(tmp_path, DAY, after)
    assert str(e.value).startswith("Table a/t: spec.partitioning is immutable once set (was ")
