"""A table's maintenance lock in storage: taking it, keeping it alive, fencing, releasing it.

Holds live at ``<location>/_lakeop/locks/<name>/<seq, 8 digits>.json``, each created with
:meth:`~lakeop.storage.Storage.create_exclusive`, beside its ``<seq>.lease`` (rewritten whole
by the holder's heartbeat every third of the lease) and ``<seq>.released``. Who holds the lock
is decided by :mod:`lakeop.core.lake.table_lock`.

It serialises what a table format's own commit check does not: two delta-rs
``optimize.compact`` on one table both commit, each over the other's rewrite, so every row
would be live twice. A run waits while another live run holds the lock (a waiting message
every renewal, up to ``wait_s``), takes it over once that run's lease lapsed (a killed
compaction), and adopts a hold that is its own (a retried pod of the same run id). The
holder calls :meth:`TableLock.check` right before each commit: a hold whose lease it could
not renew in time, or that a newer hold superseded, is refused there
(:class:`~lakeop.engine.leases.LeaseLostError`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TextIO

from lakeop.core.lake import inputs as core
from lakeop.core.lake.inputs import LeaseTerms
from lakeop.core.lake.table_lock import Hold, Step, decide, is_mine, superseded
from lakeop.engine.leases import LeaseLostError
from lakeop.engine.notes import say
from lakeop.errors import CommitConflictError, LakeopError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

LOCKS_DIR = "_lakeop/locks"


class TableLock:
    """Lock ``name`` of the table at ``storage``, for run ``run_id``; a context manager."""

    def __init__(
        self,
        storage: Storage,
        name: str,
        run_id: str,
        terms: LeaseTerms,
        *,
        wait_s: float,
        progress: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage, self.name, self.run_id, self.terms = storage, name, run_id, terms
        self.wait_s, self.progress, self.sleep, self.clock = wait_s, progress, sleep, clock
        self.seq = 0
        self.renewed_at = float("-inf")
        self.lost = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _path(self, seq: int, ext: str) -> str:
        return f"{LOCKS_DIR}/{self.name}/{seq:08d}.{ext}"

    def holds(self) -> list[Hold]:
        """The lock's holds as listed now (an unreadable hold counts, owned by nobody)."""
        entries = self.storage.list_files(f"{LOCKS_DIR}/{self.name}", recursive=False)
        names = {e.path.rsplit("/", 1)[-1] for e in entries}
        found: list[Hold] = []
        for n in names:
            stem, _, ext = n.partition(".")
            if ext != "json" or not stem.isdigit():
                continue
            seq = int(stem)
            run_id, created = _read_hold(self.storage.read_bytes(self._path(seq, "json")))
            expires = _read_expiry(self.storage.read_bytes(self._path(seq, "lease")))
            if expires is None:
                expires = created + self.terms.lease_ms
            found.append(Hold(seq, run_id, expires, f"{stem}.released" in names))
        return found

    def acquire(self) -> TableLock:
        """Take the lock (or adopt this run's own hold); wait while another run holds it."""
        deadline = self.clock() + self.wait_s
        while True:
            holds = self.holds()
            d = decide(holds, self.run_id, _now_ms(), self.terms.skew_ms)
            if d.step is Step.WAIT:
                assert d.holder is not None
                if self.clock() >= deadline:
                    raise CommitConflictError(
                        f"{self.storage.url}: {self.name} is held by run {d.holder.run_id} "
                        f"(hold {d.seq}), still renewed after {self.wait_s:.0f} s of waiting"
                    )
                say(
                    self.progress,
                    f"lakeop {self.name}: waiting for run {d.holder.run_id}, which holds "
                    f"the table's {self.name} lock",
                )
                self.sleep(min(self.terms.renew_s, max(0.0, deadline - self.clock())) or 0.1)
                continue
            if d.step is Step.TAKE:
                body = json.dumps({"runId": self.run_id, "createdMs": _now_ms()}).encode()
                if not self.storage.create_exclusive(self._path(d.seq, "json"), body):
                    continue  # another taker was first: read again
            self.seq, self.lost = d.seq, False
            self._renew()
            if is_mine(self.holds(), self.seq):
                break
            self._mark_released()  # a newer hold exists: this one never held the lock
        self._thread = threading.Thread(target=self._beat, name=f"lock-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> bool:
        with self._lock:
            if self.lost:
                return False
            if self.storage.exists(self._path(self.seq + 1, "json")):
                self.lost = True  # superseded: its lease had lapsed
                return False
            started = self.clock()
            body = json.dumps({"runId": self.run_id, "expiresMs": _now_ms() + self.terms.lease_ms})
            self.storage.write_bytes_atomic(self._path(self.seq, "lease"), body.encode())
            self.renewed_at = started
            return True

    def _beat(self) -> None:
        while not self._stop.wait(self.terms.renew_s):
            try:
                if not self._renew():
                    return
            except (LakeopError, OSError) as e:  # the next beat tries again; check() decides
                logger.warning("could not renew the %s lock of %s: %s", self.name, self.run_id, e)

    def check(self) -> None:
        """Refuse the commit unless the hold is still the lock's, with a margin left."""
        if not core.may_commit(self.renewed_at, self.clock(), self.terms):
            self._renew()
        if self.lost or not core.may_commit(self.renewed_at, self.clock(), self.terms):
            raise LeaseLostError(
                f"run {self.run_id}: its hold {self._path(self.seq, 'json')} of the table's "
                f"{self.name} lock was lost "
                f"({'taken over by another run' if self.lost else 'not renewed in time'}), "
                "so it does not commit"
            )

    def release(self) -> None:
        """Stop renewing, drop the superseded holds and mark this one released."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if not self.seq:
            return
        try:
            for seq in superseded(self.holds(), self.seq):
                for ext in ("json", "lease", "released"):
                    self.storage.delete(self._path(seq, ext))
            self._mark_released()
        except (LakeopError, OSError) as e:  # the lease lapses on its own
            logger.warning("could not release the %s lock of %s: %s", self.name, self.run_id, e)

    def _mark_released(self) -> None:
        self.storage.write_bytes_atomic(self._path(self.seq, "released"), b"{}")

    def __enter__(self) -> TableLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_hold(data: bytes | None) -> tuple[str, int]:
    try:
        doc = json.loads(data or b"")
        return str(doc["runId"]), int(doc["createdMs"])
    except (ValueError, KeyError, TypeError):
        return "", 0  # unreadable: nobody's, and lapsed unless its lease says otherwise


def _read_expiry(data: bytes | None) -> int | None:
    if data is None:
        return None
    try:
        return int(json.loads(data)["expiresMs"])
    except (ValueError, KeyError, TypeError):
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)
