"""A table's maintenance lock on real storage (engine.table_lock): waiting, take-over of a
lapsed hold, adoption by a retried run, fencing, and threads racing for it."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from lakeop.core.lake.inputs import LeaseTerms
from lakeop.engine.leases import LeaseLostError
from lakeop.engine.table_lock import LOCKS_DIR, TableLock
from lakeop.errors import CommitConflictError
from lakeop.storage import LocalStorage

TERMS = LeaseTerms(lease_s=3.0, skew_s=0.0)


def lock(storage: LocalStorage, run_id: str, terms: LeaseTerms = TERMS, **kw: object) -> TableLock:
    return TableLock(storage, "compaction", run_id, terms, wait_s=30.0, **kw)  # type: ignore[arg-type]


def pause(held: TableLock) -> None:
    """The holder stops renewing without releasing (a SIGSTOPped or killed process)."""
    held._stop.set()
    assert held._thread is not None
    held._thread.join()


def test_a_second_run_waits_for_the_holder_then_takes_the_lock(tmp_path: Path) -> None:
    storage = LocalStorage.at(str(tmp_path))
    a = lock(storage, "a").acquire()
    out = io.StringIO()
    b = lock(storage, "b", progress=out)
    got = threading.Event()
    t = threading.Thread(target=lambda: (b.acquire(), got.set()))
    t.start()
    assert not got.wait(1.5)  # a holds it, renewing
    assert "waiting for run a" in out.getvalue()
    a.release()
    assert got.wait(10)
    t.join()
    assert b.seq == 2
    b.check()
    b.release()
    names = sorted(p.name for p in (tmp_path / LOCKS_DIR / "compaction").iterdir())
    assert names == ["00000002.json", "00000002.lease", "00000002.released"]


def test_a_lapsed_hold_is_taken_over_and_its_holder_may_not_commit(tmp_path: Path) -> None:
    storage = LocalStorage.at(str(tmp_path))
    short = LeaseTerms(lease_s=0.6, skew_s=0.0)
    a = lock(storage, "a", short).acquire()
    pause(a)
    time.sleep(0.8)
    b = lock(storage, "b", short).acquire()
    assert b.seq == 2
    with pytest.raises(LeaseLostError, match="taken over"):
        a.check()
    b.check()
    b.release()
    a.release()  # late: marks its superseded hold, takes nothing away from b's
    c = lock(storage, "c", short).acquire()
    assert c.seq == 3


def test_a_retried_run_adopts_its_own_hold_at_once(tmp_path: Path) -> None:
    storage = LocalStorage.at(str(tmp_path))
    first = lock(storage, "compact-x").acquire()
    pause(first)  # killed
    sleeps: list[float] = []
    retry = lock(storage, "compact-x", sleep=sleeps.append).acquire()
    assert (retry.seq, sleeps) == (1, [])
    retry.check()
    retry.release()


def test_a_waiting_run_gives_up_naming_the_holder(tmp_path: Path) -> None:
    storage = LocalStorage.at(str(tmp_path))
    a = lock(storage, "holder-7").acquire()
    b = TableLock(storage, "compaction", "b", TERMS, wait_s=0.5)
    with pytest.raises(CommitConflictError, match="held by run holder-7"):
        b.acquire()
    a.release()


def test_an_unreadable_hold_does_not_block_the_lock_for_ever(tmp_path: Path) -> None:
    storage = LocalStorage.at(str(tmp_path))
    folder = tmp_path / LOCKS_DIR / "compaction"
    folder.mkdir(parents=True)
    (folder / "00000001.json").write_bytes(b"\xff\xfe not json")
    (folder / "00000001.lease").write_bytes(b'{"expiresMs": "soon"}')
    (folder / "notes.txt").write_text("ignored")
    a = lock(storage, "a").acquire()
    assert a.seq == 2
    a.release()
    assert not (folder / "00000001.json").exists()  # superseded, so dropped


def test_racing_threads_hold_the_lock_one_at_a_time(tmp_path: Path) -> None:
    storage = LocalStorage.at(str(tmp_path))
    inside: list[str] = []
    overlaps: list[list[str]] = []
    guard = threading.Lock()

    def work(k: int) -> None:
        with lock(storage, f"r{k}", sleep=lambda s: time.sleep(min(s, 0.05))) as held:
            with guard:
                inside.append(held.run_id)
                if len(inside) > 1:
                    overlaps.append(list(inside))
            time.sleep(0.05)
            held.check()
            with guard:
                inside.remove(held.run_id)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert overlaps == []
    assert not any(t.is_alive() for t in threads)
    left = sorted(p.name for p in (tmp_path / LOCKS_DIR / "compaction").iterdir())
    assert left[-1].endswith(".released") and len(left) <= 3 * 8
