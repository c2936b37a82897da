"""The holder's side of claim leases: settings, the heartbeat, the check before committing.

A run's claim (:mod:`lakeop.engine.claims`) is a lease: :class:`Lease` rewrites its
``<seq>.lease`` object every third of the lease from a daemon thread while the run is alive,
and :meth:`Lease.check` refuses the commit point once the lease is lost (taken over by a
claimer after it lapsed, or not renewed in time). :class:`Heartbeat` is a run's hold on it,
from taking the claim to the end of the run. The argument is in docs/commit-protocol.md.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping

from lakeop.core.lake import inputs as core
from lakeop.core.lake.inputs import Claim, LeaseTerms
from lakeop.engine.claimlog import claim_path, is_released, lease_path
from lakeop.engine.claims import compact_quietly
from lakeop.engine.commits import Commit
from lakeop.errors import InvalidSpecError, LakeopError, TerminalError
from lakeop.storage import Storage

logger = logging.getLogger(__name__)

LEASE_ENV = "LAKEOP_CLAIM_LEASE_SECONDS"
SKEW_ENV = "LAKEOP_CLAIM_CLOCK_SKEW_SECONDS"
#: A Job pod's lease: long enough for a retried pod that is slow to be scheduled, pull its
#: image and start to find its claim still its own.
POD_LEASE_S = 600.0
#: ``lakeop ingest -f``'s lease: a killed local run's inputs are free again half a minute on.
CLI_LEASE_S = 30.0
#: The bound assumed on the difference between two writers' wall clocks.
CLOCK_SKEW_S = 5.0


def lease_terms(env: Mapping[str, str], default_s: float = POD_LEASE_S) -> LeaseTerms:
    """The lease length and clock-skew bound from ``env`` (``LAKEOP_CLAIM_LEASE_SECONDS``,
    ``LAKEOP_CLAIM_CLOCK_SKEW_SECONDS``), else ``default_s`` and :data:`CLOCK_SKEW_S`."""

    def get(name: str, default: float) -> float:
        text = env.get(name)
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value > 0 or value == float("inf"):
            raise InvalidSpecError(
                f"environment variable {name}: {text!r} is not a positive number of seconds"
            )
        return value

    return LeaseTerms(lease_s=get(LEASE_ENV, default_s), skew_s=get(SKEW_ENV, CLOCK_SKEW_S))


class LeaseLostError(TerminalError):
    """The run's claim lease lapsed, or its claim was taken over: it must not commit."""

    reason = "LeaseLost"


class Lease:
    """The heartbeat of a run's claim: rewrites ``<seq>.lease`` every ``terms.renew_s``.

    :meth:`start` renews once before returning (an adopted claim may be near its end), then a
    daemon thread renews until :meth:`stop`. A renewal first checks that the claim is not
    released (:func:`is_released`: its marker, or the claim compacted after a take-over):
    once it is, the claim is lost for good and the heartbeat stops. Every share of
    a scaled-out run holds one (each rewrites the same object; any live share keeps the claim).
    :meth:`check` is the last step before the commit point.
    """

    def __init__(
        self,
        storage: Storage,
        job: str,
        claim: Claim,
        terms: LeaseTerms,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage, self.job, self.claim, self.terms = storage, job, claim, terms
        self.clock = clock
        self.renewed_at = float("-inf")  # monotonic start of the last successful renewal
        self.lost = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Lease:
        self.renew()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{self.claim.seq}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Lease:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def renew(self) -> bool:
        """Push the expiry ``terms.lease_s`` ahead; False once the claim is released."""
        with self._lock:
            if self.lost:
                return False
            if is_released(self.storage, self.job, self.claim):
                self.lost = True
                return False
            started = self.clock()
            body = json.dumps(
                {
                    "runId": self.claim.run_id,
                    "seq": self.claim.seq,
                    "expiresMs": _now_ms() + self.terms.lease_ms,
                }
            ).encode()
            path = lease_path(self.job, self.claim.seq)
            self.storage.write_bytes_atomic(path, body)
            self.renewed_at = started
            return True

    def _beat(self) -> None:
        while not self._stop.wait(self.terms.renew_s):
            try:
                if not self.renew():
                    return
            except (LakeopError, OSError) as e:  # the next beat tries again; check() decides
                logger.warning("could not renew the lease of claim %s: %s", self.claim.seq, e)

    def check(self, run_id: str) -> None:
        """Refuse to commit unless the lease has at least ``terms.margin_s`` left (renewing
        it now if not, which re-takes a lapsed claim nobody took over)."""
        if not core.may_commit(self.renewed_at, self.clock(), self.terms):
            self.renew()
        if self.lost or not core.may_commit(self.renewed_at, self.clock(), self.terms):
            raise LeaseLostError(
                f"run {run_id}: the lease of its claim "
                f"{claim_path(self.job, self.claim.seq)} was lost "
                f"({'taken over by another run' if self.lost else 'not renewed in time'}), "
                "so it does not commit"
            )


class Heartbeat:
    """A run's hold on its claim's lease, from the moment it has a claim until it ends.

    :func:`lakeop.engine.run.run_plan` creates one per run and stops it on every exit path;
    :meth:`hold` starts the :class:`Lease` once the claim is taken, :meth:`check` guards the
    commit point. A run that never got a claim (a retry of a committed one) holds nothing.
    """

    def __init__(self, terms: LeaseTerms) -> None:
        self.terms = terms
        self.lease: Lease | None = None

    def hold(self, storage: Storage, job: str, claim: Claim) -> None:
        """Start renewing ``claim``'s lease; not for an empty claim of a single writer, which
        holds nothing (the shares of a scaled-out run must all find even an empty claim)."""
        self.stop()
        if claim.empty and claim.split is False:
            return
        self.lease = Lease(storage, job, claim, self.terms).start()

    def check(self, run_id: str) -> None:
        if self.lease is not None:
            self.lease.check(run_id)

    def stop(self) -> None:
        if self.lease is not None:
            self.lease.stop()

    def compact(self, storage: Storage, job: str, commits: list[Commit]) -> None:
        """The run is done with its claim: stop renewing (no lease object written after its
        claim is compacted), then :func:`compact_quietly`."""
        self.stop()
        compact_quietly(storage, job, commits)


def _now_ms() -> int:
    return int(time.time() * 1000)
