"""Storage reads per run start and per Table refresh as a table's commit log grows.

A table's log is built with 10, 1,000 and 10,000 commits through the real commit path
(:meth:`lakeop.engine.commitlog.CommitLog.commit`: exclusive creates, checkpoints), each
commit one file of one source file, as an incremental job leaves them. Then, counting every
read the storage layer sends to the table's location (GET, LIST, HEAD: the bench wraps the
:class:`~lakeop.storage.Storage` methods, production code is not instrumented):

* run start: a real ``run_plan`` of the job that finds nothing new (the state the issue
  measured: 15,005 reads at 5,001 commits before checkpoints), in a fresh process state;
* Table refresh, cold: ``table_totals`` as a freshly started operator does it;
* Table refresh, warm: the next refresh of the same operator (commits cached).

The anchor is the number of commits. Prints one table; ``--sizes`` changes the sizes.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lakeop.core.runs.plan import PlanTable, RunPlan
from lakeop.core.spec.layout import parse_partitioning
from lakeop.core.spec.resources import ObjectKey
from lakeop.core.spec.sources import SourceSpec
from lakeop.engine import commitlog
from lakeop.engine.commitlog import CommitLog, table_totals
from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.run import run_plan
from lakeop.sources.files import list_source_files
from lakeop.storage import Storage, open_storage

READS = ("read_bytes", "list_files", "list_dirs", "exists", "open_input")
FIELDS = ({"name": "id", "type": "long"}, {"name": "ts", "type": "timestamp"})


@contextmanager
def counting(url: str) -> Iterator[dict[str, int]]:
    """Count the reads Storage sends under ``url`` while the block runs."""
    counts = dict.fromkeys(READS, 0)
    saved = {name: getattr(Storage, name) for name in READS}

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def counted(self: Storage, *args: Any, **kwargs: Any) -> Any:
            if self.url.startswith(url):
                counts[name] += 1
            return method(self, *args, **kwargs)

        return counted

    for name, method in saved.items():
        setattr(Storage, name, wrap(name, method))
    try:
        yield counts
    finally:
        for name, method in saved.items():
            setattr(Storage, name, method)


def synthetic(i: int, landed: dict[str, Any]) -> Commit:
    """Commit ``i`` of the job; commit 0 took the one file in the landing folder."""
    day = 1 + i % 28
    taken = (
        landed if i == 0 else {"uri": f"file:///landing/f{i:06d}.csv", "size": 50, "version": "1"}
    )
    return Commit(
        run_id=f"r{i:06d}",
        job="load",
        committed_at="2026-01-01T00:00:00Z",
        committed_ms=1_767_225_600_000 + i,
        schema_version=1,
        mode="append",
        files=[DataFile(f"day={day}/part-r{i:06d}-00000.parquet", f"day={day}", 1000, 40_000)],
        sources=[taken],
        rows_read=1000,
    )


def build(location: str, count: int, landed: dict[str, Any]) -> float:
    start = time.monotonic()
    storage = open_storage(location)
    for i in range(count):
        CommitLog(storage).commit(synthetic(i, landed))
    return time.monotonic() - start


def run_start(location: str, landing: Path) -> int:
    commitlog.forget(location)
    part = parse_partitioning(ObjectKey("Table", "b", "t"), None)
    plan = RunPlan(
        namespace="b",
        job="load",
        run_id="start-probe",
        table=PlanTable("t", location, "snappy", part),
        schema_version=1,
        schema_fields=FIELDS,
        source=SourceSpec(f"file://{landing}/*.csv", "csv", {}),
    )
    with counting(location) as counts:
        result = run_plan(plan, dict(os.environ), progress=None)
    assert result.rows_written == 0
    return sum(counts.values())


def refresh(location: str, *, cold: bool) -> int:
    if cold:
        commitlog.forget(location)
    with counting(location) as counts:
        table_totals(location, {})
    return sum(counts.values())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10_000])
    args = parser.parse_args(argv)
    print(
        f"checkpoint every {commitlog.CHECKPOINT_INTERVAL} commits; reads = GET + LIST + HEAD "
        "on the table's location"
    )
    print(f"{'commits':>8} {'build s':>8} {'run start':>10} {'refresh cold':>13} {'warm':>5}")
    with tempfile.TemporaryDirectory(prefix="lakeop-log-bench-") as tmp:
        landing = Path(tmp) / "landing"
        landing.mkdir()
        (landing / "f.csv").write_text("id,ts\n1,2026-01-01T00:00:00Z\n")
        (landed,) = list_source_files(f"file://{landing}/*.csv", {}, "")
        for n in args.sizes:
            location = f"file://{tmp}/t{n}"
            seconds = build(location, n, landed.to_dict())
            start = run_start(location, landing)
            cold = refresh(location, cold=True)
            warm = refresh(location, cold=False)
            print(f"{n:>8} {seconds:>8.1f} {start:>10} {cold:>13} {warm:>5}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
