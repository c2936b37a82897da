"""``format: delta``: the run-id lookup and the status read a few log files, however many
versions the table has (no ``history()``, no walk over every commit file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltakit import duck_delta
from deltalake import DeltaTable

from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.formats.delta import DeltaFormat
from lakeop.storage import open_storage

SCHEMA = pa.schema([("id", pa.int64()), ("bucket", pa.int32())])


def _commit(fmt: DeltaFormat, lake: Path, i: int) -> None:
    path = f"bucket={i % 4}/part-run{i}.parquet"
    (lake / path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": [i]}, schema=pa.schema([("id", pa.int64())])), lake / path)
    files = [DataFile(path, f"bucket={i % 4}", 1, (lake / path).stat().st_size)]
    commit = Commit(f"run-{i}", "job", "2026-01-01T00:00:00Z", 0, 1, "append", files)
    _, created = fmt.commit(commit, SCHEMA)
    assert created


class Counting:
    """Counts lakeop's reads of Delta log files through the table's storage."""

    def __init__(self, read: Callable[[str], bytes | None]) -> None:
        self.read = read
        self.paths: list[str] = []

    def __call__(self, rel: str) -> bytes | None:
        if rel.startswith("_delta_log/"):
            self.paths.append(rel)
        return self.read(rel)


def _lookups(fmt: DeltaFormat, monkeypatch: pytest.MonkeyPatch, run_id: str) -> dict[str, Any]:
    """Find ``run_id`` and read the status, counting log reads; ``history()`` forbidden."""

    def no_history(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the lookup read the whole history")

    counting = Counting(fmt.storage.read_bytes)
    with monkeypatch.context() as m:
        m.setattr(DeltaTable, "history", no_history)
        m.setattr(fmt.storage, "read_bytes", counting)
        found = fmt.find(run_id)
        totals = fmt.totals()
        snap = fmt.snapshot()
    assert found is not None and found.run_id == run_id
    return {"reads": len(counting.paths), "totals": totals, "snapshot": snap, "found": found}


def test_lookups_read_the_same_few_files_at_10_and_at_130_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    fmt = DeltaFormat(open_storage("file://" + str(lake), {}))
    fmt.ensure(SCHEMA, ["bucket"])
    for i in range(10):
        _commit(fmt, lake, i)
    early = _lookups(fmt, monkeypatch, "run-0")
    for i in range(10, 130):
        _commit(fmt, lake, i)
    late = _lookups(fmt, monkeypatch, "run-0")  # the oldest run, 129 versions later
    assert late["reads"] == early["reads"] <= 3, (early, late)
    assert late["found"].seq == 1 and [f.path for f in late["found"].files] == [
        "bucket=0/part-run0.parquet"
    ]
    assert (lake / "_delta_log" / "_last_checkpoint").exists()  # totals through the checkpoint
    assert late["totals"]["rows"] == 130 and late["totals"]["files"] == 130
    assert late["totals"]["partitions"] == 4
    assert late["snapshot"].id == "130"
    newest = _lookups(fmt, monkeypatch, "run-129")
    assert newest["found"].seq == 130 and newest["reads"] == early["reads"]
    assert fmt.find("never-ran") is None
    assert duck_delta(lake, "SELECT count(*), count(DISTINCT id) FROM t") == [(130, 130)]
