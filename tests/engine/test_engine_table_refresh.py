"""The operator's Table refresh stays flat in a table's history: the status of an unchanged
table costs two small reads (its last commit, the probe for the next), whether its log holds
10 commits or 300, and however many tables the operator refreshes (more than the commit
cache holds); a new commit is seen at the next refresh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lakeop.core.constants import STORAGE_ENV_PREFIX
from lakeop.engine import commitlog
from lakeop.engine.commitlog import CommitLog, table_totals
from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.formats import table_status
from lakeop.storage import LocalStorage, open_storage

TABLES = commitlog.CACHED_TABLES + 4  # more than the commit cache keeps


def synthetic(i: int) -> Commit:
    return Commit(
        run_id=f"r{i}",
        job="job",
        committed_at=f"2026-03-01T00:00:{i % 60:02d}Z",
        committed_ms=1_772_323_200_000 + i,
        schema_version=1,
        mode="append",
        files=[DataFile(f"d={i % 3}/part-r{i}.parquet", f"d={i % 3}", i + 1, 100 + i)],
        sources=[{"uri": f"file:///in/{i}.csv", "size": i, "version": "1"}],
    )


def status(location: str) -> dict[str, Any]:
    return table_status(location, {}, STORAGE_ENV_PREFIX, "parquet", 150.0)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"n": 0}
    for name in ("read_bytes", "list_files", "list_dirs", "exists", "open_input"):
        method: Callable[..., Any] = getattr(LocalStorage, name)

        def counted(self: LocalStorage, *a: Any, _m: Callable[..., Any] = method, **k: Any) -> Any:
            counts["n"] += 1
            return _m(self, *a, **k)

        monkeypatch.setattr(LocalStorage, name, counted)
    return counts


@pytest.mark.parametrize("commits", [10, 300])
def test_refreshing_unchanged_tables_reads_two_objects_each(
    tmp_path: Path, reads: dict[str, int], commits: int
) -> None:
    locations = [f"file://{tmp_path}/t{t}" for t in range(TABLES)]
    for location in locations:
        storage = open_storage(location)
        for i in range(commits):
            CommitLog(storage).commit(synthetic(i))
    for location in locations:  # a fresh operator: every table read once
        commitlog.forget(location)
        first = status(location)
        truth = table_totals(location, small_below=150.0)
        assert {k: first[k] for k in truth} == truth
        assert first["rows"] == sum(i + 1 for i in range(commits))
        assert first["snapshot"] == {"id": str(commits), "timestamp": truth["lastCommitTime"]}
    reads["n"] = 0
    again = [status(location) for location in locations]
    assert reads["n"] == 2 * TABLES
    assert again[0] == status(locations[0])
    CommitLog(open_storage(locations[0])).commit(synthetic(commits))
    after = status(locations[0])
    assert after["rows"] == again[0]["rows"] + commits + 1
    assert after["files"] == again[0]["files"] + 1
    assert after["snapshot"]["id"] == str(commits + 1)
