"""An ``overwrite-partitions`` run whose removals were read before a concurrent OPTIMIZE of
the same partition committed: its commit must fail and be made again over the compacted
files, never rebased by delta-rs with the stale removals (the compacted file would stay live
and the overwritten rows come back). The OPTIMIZE is placed deterministically, between the
run's reading of the partition's live files and its commit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from enginekit import (
    DAILY,
    MAINT_HEADER,
    csv_source,
    ingest_into,
    maint_rows,
    plan,
    read_rows,
    run,
    write_csv,
)

from lakeop.core.lake.inputs import LeaseTerms
from lakeop.engine.compaction import CompactionPolicy
from lakeop.engine.delta_maintenance import compact_delta
from lakeop.engine.formats import delta as delta_format
from lakeop.storage import open_storage


def test_an_overwrite_read_before_an_optimize_never_brings_old_rows_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc = tmp_path / "lake"
    for i in range(6):  # six small files in each of days 1..5
        ingest_into(tmp_path, loc, "delta", f"seed{i}", i * 50, 50)
    before = read_rows(loc, "delta")
    assert len(before) == 300

    real_live_in = delta_format._live_in
    optimized: list[int] = []

    def live_in_then_optimize(table: Any, partitions: Any) -> Any:
        removes = real_live_in(table, partitions)
        if not optimized:  # once: a compaction commits between the read and the commit
            storage = open_storage(f"file://{loc}", {}, "LAKEOP_STORAGE_")
            result = compact_delta(
                storage, CompactionPolicy(64 * 1024 * 1024, 2), "opt-1", LeaseTerms(30, 5)
            )
            optimized.append(result.files_before)
        return removes

    monkeypatch.setattr(delta_format, "_live_in", live_in_then_optimize)
    new_ids = range(10_000, 10_040)
    src = write_csv(tmp_path / "src" / "over.csv", MAINT_HEADER, maint_rows(10_000, 40, (1,)))
    p = plan(
        loc,
        csv_source(src),
        partitioning=DAILY,
        run_id="over-1",
        job="over",
        mode="overwrite-partitions",
        table_format="delta",
    )
    result = run(p)
    assert result.error is None, result.error
    assert optimized and optimized[0] >= 6, optimized  # the OPTIMIZE did rewrite files

    after = read_rows(loc, "delta")
    ids = Counter(r[0] for r in after)
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1][:10]
    day1_old = {r[0] for r in before if r[2].day == 1}
    assert not day1_old & set(ids), sorted(day1_old & set(ids))[:10]  # none comes back
    others = {r[0] for r in before if r[2].day != 1}
    assert set(ids) == others | set(new_ids)
