"""The claim log of a job in storage: taking, adopting, releasing and compacting run inputs.

Claims live at ``<location>/_lakeop/claims/<job>/<seq, 8 digits>.json``, each created with
:meth:`~lakeop.storage.Storage.create_exclusive` (only if absent). ``<seq>.released`` next to
a claim marks it released (its inputs are free again). ``<seq>.lease`` holds the claim's
renewed lease expiry, rewritten whole by its run's heartbeat
(:class:`lakeop.engine.leases.Lease`: a PUT on S3, a write-then-rename locally, no in-place
update); a claimer that finds a live claim's lease lapsed marks it released
(:func:`take_over`), so every later decision is the one for a released claim. The decisions
are pure (:mod:`lakeop.core.lake.inputs`); this module reads and writes the objects and gathers the
facts (source listing, SQL bounds).

:func:`take` runs at the start of every run, after the commit log showed no commit of the run:
it adopts the run's claim if one exists (a retried pod, another share of a scaled-out run),
else computes the free inputs and creates the next claim; losing the race for a number it
re-reads the log and tries again. :func:`release` is for whoever gives a run up (the operator,
``lakeop ingest -f`` on failure). :func:`compact` runs after a commit and when a run found
nothing to do: it deletes the claims that can no longer matter
(:func:`lakeop.core.lake.claim_removal.removable`), each claim before its lease and
``released`` marker.

A run about to create a claim first writes an *intent*, ``intent-<ms, 13 digits>-<nonce>``,
and deletes it once its claim exists: compaction deletes nothing while a fresh intent is
listed. Without it a claimer that read the log long ago (a slow source listing or SQL bounds
query) could create a number that was created, then compacted, meanwhile, and claim inputs of
claims it never saw. A claimer re-reads under a renewed intent when its proposal took longer
than :data:`INTENT_RENEW_S`; compaction ignores (and deletes) intents older than
:data:`INTENT_MAX_AGE_MS` (left by a killed claimer).

The objects' layout and a claim's JSON encoding are :mod:`lakeop.engine.claimlog`'s.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping

from lakeop.core.lake import claim_removal
from lakeop.core.lake import inputs as core
from lakeop.core.lake.inputs import Claim, ClaimLog, LeaseTerms
from lakeop.core.runs.plan import RunPlan
from lakeop.core.spec.sources import SqlSourceSpec
from lakeop.engine.claimlog import (
    CLAIMS_DIR,
    INTENT,
    Listing,
    claim_path,
    committed_runs,
    lease_path,
    list_dir,
    read_lease,
    read_log,
    released_path,
    to_json,
)
from lakeop.engine.commitlog import COMMITS_DIR, CommitLog
from lakeop.engine.commits import Commit, last_watermark, taken_sources
from lakeop.engine.formats import detect
from lakeop.engine.watermarks import decode_watermark
from lakeop.errors import (
    LakeopError,
    SourceNotFoundError,
    StorageUnavailableError,
    TransientError,
)
from lakeop.sources.files import list_source_files
from lakeop.sources.sql import claim_sql
from lakeop.storage import Storage, open_storage

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 50
#: A claimer whose intent is older than this (by its own monotonic clock) re-reads the log
#: under a new intent before creating its claim.
INTENT_RENEW_S = 600.0
#: Compaction honours intents younger than this (by the intent's name and the compactor's
#: clock): a tolerance of 50 minutes of clock skew above :data:`INTENT_RENEW_S`.
INTENT_MAX_AGE_MS = 3600 * 1000


def sql_url(plan: RunPlan, source: SqlSourceSpec, env: Mapping[str, str]) -> str:
    """The SQL source's URL, passed to the pod from its secret in ``plan.sql_url_env``."""
    url = env.get(plan.sql_url_env)
    if not url:
        ref = source.url_secret_ref
        raise SourceNotFoundError(
            f"sql source: environment variable {plan.sql_url_env} (the URL from secret "
            f"{ref.name}/{ref.key}) is not set"
        )
    return url


# ------------------------------------------------------------------------------- reading


def fresh_commits(storage: Storage, known: list[Commit]) -> list[Commit]:
    """The commit log now, reading only the commits not in ``known``."""
    fmt = detect(storage)
    if fmt.name != "parquet":  # the format reads its own log
        return fmt.commits()
    have = {c.name: c for c in known}
    log = CommitLog(storage)
    out = []
    for name in log.names():
        if name in have:
            out.append(have[name])
            continue
        data = storage.read_bytes(f"{COMMITS_DIR}/{name}")
        if data is not None:
            out.append(Commit.from_json(data.decode()))
    return out


# ------------------------------------------------------------------------------- taking


def take(
    storage: Storage,
    plan: RunPlan,
    env: Mapping[str, str],
    commits: list[Commit],
    *,
    split: bool,
    now_ms: int,
    terms: LeaseTerms | None = None,
) -> Claim:
    """The run's claim: adopted if the run has one, else created from the free inputs.

    ``split``: the run is scaled out, so a SQL claim also records the split column's bounds.
    The proposals get the commit log as read after the claims (``commits`` may be older).
    ``terms``: the lease the claim is created with, and by which other claims lapse
    (:func:`lakeop.engine.leases.lease_terms`); None: no lease, nothing lapses.
    """
    if isinstance(plan.source, SqlSourceSpec):
        source = plan.source
        url = sql_url(plan, source, env)

        def propose(log: ClaimLog, commits: list[Commit]) -> Claim:
            committed = decode_watermark(last_watermark(commits, plan.job))
            adopted, seqs = core.orphan_intervals(log) if source.incremental_column else ((), ())
            sql = claim_sql(
                url,
                source.query,
                incremental_column=source.incremental_column,
                lower=core.next_lower(committed, log) if source.incremental_column else None,
                adopted=adopted,
                split_column=source.split_key if split else None,
            )
            return Claim(
                plan.run_id, log.next_seq(), now_ms, "sql", sql=sql, adopts=seqs, split=split
            )

    else:
        uri = plan.source.uri
        listing: list[tuple[str, int, str]] | None = None

        def propose(log: ClaimLog, commits: list[Commit]) -> Claim:
            nonlocal listing
            if listing is None:  # listed once, and only if the run has no claim yet
                found = list_source_files(uri, env, plan.source_env_prefix)
                listing = [f.identity for f in found]
            free = core.free_files(listing, taken_sources(commits, plan.job), log)
            return Claim(
                plan.run_id, log.next_seq(), now_ms, "files", files=tuple(free), split=split
            )

    return acquire(storage, plan.job, plan.run_id, commits, propose, terms=terms, retake=not split)


class Intent:
    """This claimer's announcement that it reads the log to create a claim (module doc)."""

    def __init__(self, storage: Storage, job: str) -> None:
        self.storage, self.job = storage, job
        self.path = ""
        self.since = 0.0
        self.renew()

    def renew(self) -> None:
        old = self.path
        name = f"{INTENT}{_now_ms():013d}-{secrets.token_hex(6)}"
        self.path = f"{CLAIMS_DIR}/{self.job}/{name}"
        self.since = time.monotonic()
        self.storage.write_bytes_atomic(self.path, b"{}")
        if old:
            self.storage.delete(old)

    def old(self) -> bool:
        return time.monotonic() - self.since > INTENT_RENEW_S

    def remove(self) -> None:
        try:
            self.storage.delete(self.path)
        except StorageUnavailableError as e:  # ignored by compaction once old
            logger.warning("could not remove %s: %s", self.path, e)


def acquire(
    storage: Storage,
    job: str,
    run_id: str,
    commits: list[Commit],
    propose: Callable[[ClaimLog, list[Commit]], Claim],
    *,
    terms: LeaseTerms | None = None,
    retake: bool = False,
) -> Claim:
    """Adopt ``run_id``'s claim, or create the one ``propose`` computes from the current log
    at its next seq; a number taken meanwhile means re-reading the log and proposing again.

    Creating happens under an :class:`Intent`, from a log listed after the intent was written
    and the commit log read after that (a claim compacted before the listing has its commit
    in it). A run found committed meanwhile (another share committed it) takes no new claim:
    the error makes the pod retry, and the retry reports the commit.

    With ``terms``, live claims of other runs whose lease lapsed are taken over first
    (:func:`take_over`) and the log read again; the new claim's lease ends ``terms.lease_s``
    after its creation. Without, no lease is written and nothing lapses.

    ``retake``: a run whose claim is marked released takes a new claim ``after`` it (a
    single writer retried under its run id); else it adopts the released claim, and refuses
    to commit at the end (the shares of a scaled-out run must all read one claim).
    """
    cache: dict[str, Claim] = {}
    log = read_log(storage, job, commits, cache)
    own = log.of_run(run_id)
    if own is not None and not (retake and own.seq in log.released):
        return own
    intent = Intent(storage, job)
    try:
        for attempt in range(MAX_ATTEMPTS):
            if intent.old():
                intent.renew()
            log = read_log(storage, job, commits, cache)
            own = log.of_run(run_id)
            if own is not None and not (retake and own.seq in log.released):
                return own
            commits = fresh_commits(storage, commits)
            if any(c.run_id == run_id for c in commits):
                raise TransientError(
                    f"run {run_id} committed meanwhile (another share of it); its retry "
                    "reports the commit",
                    reason="CommittedMeanwhile",
                    delay=1.0,
                )
            log = ClaimLog(log.claims, log.released, committed_runs(commits, job), log.leases)
            if terms is not None:
                dead = core.lapsed(log, _now_ms(), terms.skew_ms)
                if dead:
                    take_over(storage, job, dead, terms)
                    continue  # their markers are in the next listing
            claim = propose(log, commits)
            if intent.old() or not _still_there(storage, job, claim.adopts):
                continue  # too slow to trust the listing, or an adopted claim compacted
            if own is not None:  # a re-take of the run's released claim
                claim = dataclasses.replace(claim, after=own.seq)
            if terms is not None:
                claim = dataclasses.replace(claim, lease_until_ms=_now_ms() + terms.lease_ms)
            if storage.create_exclusive(claim_path(job, claim.seq), to_json(claim)):
                # the run's first claim: another share of the run may have won a lower number
                mine = read_log(storage, job, commits, cache).of_run(run_id)
                return claim if mine is None else mine
            time.sleep(random.uniform(0, 0.05 * min(attempt + 1, 10)))
    finally:
        intent.remove()
    raise StorageUnavailableError(
        f"claims of job {job}: run {run_id} found no free claim number after "
        f"{MAX_ATTEMPTS} attempts ({CLAIMS_DIR}/{job}/)",
        delay=5.0,
    )


def take_over(storage: Storage, job: str, dead: list[Claim], terms: LeaseTerms) -> None:
    """Mark claims whose lease lapsed released, so their inputs go to later claims.

    The marker is what the claim's run checks before committing. A run that renewed its lease
    (re-took its claim) after the caller judged it lapsed, and that passed its last marker
    check before the marker landed, may still commit until its renewed lease ends; so the
    caller then waits until that expiry (plus the skew bound) before reading the log again,
    which then shows the commit if there is one (a committed run's claim is never free).
    """
    for claim in dead:
        body = json.dumps(
            {
                "runId": claim.run_id,
                "seq": claim.seq,
                "releasedMs": _now_ms(),
                "reason": "LeaseExpired",
            }
        ).encode()
        if storage.create_exclusive(released_path(job, claim.seq), body):
            logger.info(
                "claim %s of run %s (%s): its lease lapsed, its inputs are free again",
                claim.seq,
                claim.run_id,
                job,
            )
    renewed = [read_lease(storage, job, c.seq) for c in dead]
    latest = max((t for t in renewed if t is not None), default=0)
    wait_s = (latest + terms.skew_ms - _now_ms()) / 1000
    if wait_s > 0:
        time.sleep(wait_s)


def _still_there(storage: Storage, job: str, seqs: tuple[int, ...]) -> bool:
    """A listing is no snapshot: a released claim seen while its adopters were compacted
    would look unadopted. Compaction deletes adopted claims first, so one still there after
    the listing had its adopters listed."""
    return all(storage.exists(claim_path(job, s)) for s in seqs)


# ------------------------------------------------------------------------------- releasing


def release_run(storage: Storage, job: str, run_id: str) -> bool:
    """Mark the run's claims released; False (nothing done) if it committed or has none."""
    if detect(storage).find(run_id) is not None:
        return False
    mine = [c for c in read_log(storage, job, []).claims if c.run_id == run_id]
    for claim in mine:
        body = json.dumps({"runId": run_id, "seq": claim.seq, "releasedMs": _now_ms()}).encode()
        storage.create_exclusive(released_path(job, claim.seq), body)  # False: released already
    return bool(mine)


def release(location: str, env: Mapping[str, str], prefix: str, job: str, run_id: str) -> bool:
    """Give up run ``run_id`` of ``job``: its claimed inputs become free for later runs.

    For the operator (a run recorded failed, cancelled or replaced) and ``lakeop ingest -f``.
    Idempotent; a no-op returning False when the run committed or never claimed anything.
    Call it only once the run can no longer commit (its pods are gone): a run finding its
    claim released refuses to commit, but one already past that check would still commit.
    """
    return release_run(open_storage(location, env, prefix), job, run_id)


# ------------------------------------------------------------------------------- compacting


def compact(storage: Storage, job: str, commits: list[Commit], now_ms: int) -> list[int]:
    """Delete the job's claims that can no longer matter; the seqs deleted.

    ``commits``: the commit log as the caller knows it; it is brought up to date after the
    listing (a commit missing would only keep its claim). Nothing is deleted while a
    claimer's fresh intent is listed, checked by a second listing after the decision. Each
    claim goes before its ``released`` marker, and in seq order (adopted claims before their
    adopters): a crash half-way leaves claims the rule still removes, and markers without a
    claim, which mean nothing and go next time.
    """
    first = list_dir(storage, job)
    if _fresh(first, now_ms):
        return []
    commits = fresh_commits(storage, commits)
    log = read_log(storage, job, commits, listing=first)
    watermark = decode_watermark(last_watermark(commits, job))
    seqs = claim_removal.removable(log, now_ms, watermark, taken_sources(commits, job))
    top = max((c.seq for c in log.claims), default=0)
    present = {c.seq for c in log.claims}
    stray = sorted(s for s in first.released if s not in present and s < top)
    stray_leases = sorted(  # of claims gone, or of claims no longer live: they mean nothing
        s
        for s in first.leases
        if (s not in present and s < top)
        or (s in present and s not in seqs and log.state(log.by_seq[s]) != "live")
    )
    stale = [path for path, ms in first.intents if now_ms - ms >= INTENT_MAX_AGE_MS]
    if not seqs and not stray and not stray_leases and not stale:
        return []
    if _fresh(list_dir(storage, job), now_ms):  # a claimer announced itself meanwhile
        return []
    for path in stale:
        storage.delete(path)
    for seq in seqs:
        storage.delete(claim_path(job, seq))
        if seq in first.leases:
            storage.delete(lease_path(job, seq))
        if seq in first.released:
            storage.delete(released_path(job, seq))
    for seq in stray:
        storage.delete(released_path(job, seq))
    for seq in stray_leases:
        storage.delete(lease_path(job, seq))
    return list(seqs)


def compact_quietly(storage: Storage, job: str, commits: list[Commit]) -> None:
    """:func:`compact` for a run that is done: a failure only leaves claims to the next run."""
    try:
        compact(storage, job, commits, _now_ms())
    except (LakeopError, OSError, ValueError) as e:
        logger.warning("could not compact the claims of %s: %s", job, e)


def _fresh(listing: Listing, now_ms: int) -> bool:
    return any(now_ms - ms < INTENT_MAX_AGE_MS for _, ms in listing.intents)


def _now_ms() -> int:
    return int(time.time() * 1000)
