"""Re-runs on demand, suspend/resume/cancel, and the stable identity of each run.

Users drive one-off IngestionJobs with annotations and ``spec.suspend`` rather than by
deleting and re-creating objects (which GitOps tools would fight):

* ``kubectl annotate ingestionjob NAME lakeop.io/rerun=<token> --overwrite`` asks for one more
  run. The operator remembers the last token it acted on in ``status.lastRerunToken``; a new
  token means a new run, the same token means nothing, so the request is idempotent and
  survives operator restarts.
* ``spec.suspend: true`` keeps runs from starting; a run already going finishes, unless the
  annotation ``lakeop.io/cancel`` is set too, which stops it (the Job is deleted, nothing is
  committed because the commit is the run's last step).

Run identities are derived, never random: run ``n`` of the IngestionJob with uid ``u`` always
gets the same run id and Job name, so a handler retried after a crash finds the Job it already
created instead of starting a second one. The naming itself is :mod:`lakeop.core.runs.jobs`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lakeop.core.constants import JobPhase
from lakeop.core.runs.jobs import job_name, run_id

RERUN_ANNOTATION = "lakeop.io/rerun"
CANCEL_ANNOTATION = "lakeop.io/cancel"
#: status key holding the rerun token the operator last acted on
RERUN_TOKEN_STATUS = "lastRerunToken"
_FALSE = frozenset({"false", "no", "0", "off"})
_FINISHED = frozenset({JobPhase.SUCCEEDED.value, JobPhase.FAILED.value, JobPhase.SCHEDULED.value})


def _annotation(annotations: Mapping[str, str] | None, key: str) -> str | None:
    value = (annotations or {}).get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def rerun_requested(
    annotations: Mapping[str, str] | None, status: Mapping[str, Any] | None
) -> str | None:
    """The rerun token to act on, or None when there is none or it was already handled.

    When a run starts for any reason, store the current token (if any) as
    ``status.lastRerunToken``: an annotation present at creation does not add a second run.
    """
    token = _annotation(annotations, RERUN_ANNOTATION)
    if token is None:
        return None
    handled = (status or {}).get(RERUN_TOKEN_STATUS)
    return None if handled == token else token


def can_rerun(phase: str | None) -> bool:
    """A rerun starts only once the previous run is over (else the token waits)."""
    return phase in _FINISHED


def cancel_requested(suspend: bool, annotations: Mapping[str, str] | None) -> bool:
    """``suspend: true`` together with ``lakeop.io/cancel`` (any value but false/no/0/off)."""
    value = _annotation(annotations, CANCEL_ANNOTATION)
    return suspend and value is not None and value.lower() not in _FALSE


class SuspendAction(StrEnum):
    PROCEED = "Proceed"  # not suspended: start runs as usual
    HOLD = "Hold"  # suspended: start nothing new; an active run finishes
    CANCEL = "Cancel"  # suspended and cancelled: delete the active run's Job


def suspend_action(
    suspend: bool, annotations: Mapping[str, str] | None, run_active: bool
) -> SuspendAction:
    """What ``spec.suspend`` and ``lakeop.io/cancel`` mean right now."""
    if not suspend:
        return SuspendAction.PROCEED
    if run_active and cancel_requested(suspend, annotations):
        return SuspendAction.CANCEL
    return SuspendAction.HOLD


# ------------------------------------------------------------------------------ identity


@dataclass(frozen=True)
class RunIdentity:
    """Run ``number`` (1-based) of the IngestionJob with ``uid``; ``run_id`` is stable."""

    uid: str
    number: int
    run_id: str

    def job_name(self, ingestion_job: str, parallelism: int = 1) -> str:
        """The run's Job name: :func:`lakeop.core.runs.jobs.job_name` when that is safe.

        An Indexed Job (``parallelism > 1``) gives its pods the hostname
        ``<job name>-<index>``, which must be a DNS label: at most 63 characters and no dots.
        For those the IngestionJob part is cut shorter and dots become dashes.
        """
        return job_name(ingestion_job, self.uid, self.number, parallelism)


def run_identity(ij_uid: str, run_number: int) -> RunIdentity:
    """Deterministic identity of run ``run_number`` (>= 1) of an IngestionJob."""
    if not ij_uid:
        raise ValueError("ij_uid must not be empty")
    if run_number < 1:
        raise ValueError(f"run_number must be >= 1, got {run_number}")
    return RunIdentity(ij_uid, run_number, run_id(ij_uid, run_number))


def next_run_number(status: Mapping[str, Any] | None) -> int:
    """The number of the next run: one past ``status.runs`` (0 when absent)."""
    runs = (status or {}).get("runs")
    return (runs if isinstance(runs, int) and not isinstance(runs, bool) else 0) + 1


# ------------------------------------------------------------------- one-off lifecycle decision


class OneOffAction(StrEnum):
    START = "Start"  # start run ``next_run_number(status)``; store ``rerun_token`` if set
    HOLD = "Hold"  # suspended: show phase Suspended (or let the active run finish)
    CANCEL = "Cancel"  # delete the active run's Job; record the run as Cancelled
    NOTHING = "Nothing"  # already ran (or is running) and no new rerun token


@dataclass(frozen=True)
class OneOffDecision:
    action: OneOffAction
    rerun_token: str | None = None  # write to status.lastRerunToken when starting


def one_off_decision(
    spec: Mapping[str, Any],
    annotations: Mapping[str, str] | None,
    status: Mapping[str, Any] | None,
    run_active: bool,
) -> OneOffDecision:
    """What to do with an IngestionJob without ``spec.schedule`` right now.

    Precedence: suspend (and cancel) first; then a run in flight is left alone; then a new
    rerun token after a finished run starts a run; a one-off that never ran starts.
    """
    status = status or {}
    token = _annotation(annotations, RERUN_ANNOTATION)
    suspended = suspend_action(bool(spec.get("suspend")), annotations, run_active)
    if suspended is SuspendAction.CANCEL:
        return OneOffDecision(OneOffAction.CANCEL)
    if suspended is SuspendAction.HOLD:
        return OneOffDecision(OneOffAction.HOLD)
    if run_active or status.get("currentRun"):
        return OneOffDecision(OneOffAction.NOTHING)
    if not status.get("lastRun"):
        return OneOffDecision(OneOffAction.START, token)  # the first run absorbs any token
    fresh = rerun_requested(annotations, status)
    if fresh is not None and can_rerun(status.get("phase")):
        return OneOffDecision(OneOffAction.START, fresh)
    return OneOffDecision(OneOffAction.NOTHING)
