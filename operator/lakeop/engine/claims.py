"""The claim log of a job in storage: taking, adopting and releasing a run's inputs.

Claims live at ``<location>/_lakeop/claims/<job>/<seq, 8 digits>.json``, each created with
:meth:`~lakeop.storage.Storage.create_exclusive` (only if absent), and are never deleted: a
claim stays as the record of what its run took. ``<seq>.released`` next to a claim marks it
released (its inputs are free again). The decisions are pure (:mod:`lakeop.core.claims`);
this module reads and writes the objects and gathers the facts (source listing, SQL bounds).

:func:`take` runs at the start of every run, after the commit log showed no commit of the run:
it adopts the run's claim if one exists (a retried pod, another share of a scaled-out run),
else computes the free inputs and creates the next claim; losing the race for a number it
re-reads the log and tries again. :func:`release` is for whoever gives a run up (the operator,
``lakeop ingest -f`` on failure).

A claim holds, as JSON::

    {"runId", "seq", "createdMs", "kind": "files" | "sql", "adopts": [seq, ...],
     "files": [[uri, size, version], ...],
     "sql": {"column", "intervals": [[lower, upper], ...], "splitColumn", "low", "high"}}

with SQL bounds encoded like watermarks (:func:`lakeop.sources.sql.encode_watermark`).
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from lakeop.core import claims as core
from lakeop.core.claims import Claim, ClaimLog, Interval, SqlClaim
from lakeop.core.plan import RunPlan
from lakeop.core.spec import SqlSourceSpec
from lakeop.engine.commitlog import Commit, CommitLog, last_watermark, taken_sources
from lakeop.errors import SourceNotFoundError, StorageUnavailableError
from lakeop.sources.files import list_source_files
from lakeop.sources.sql import claim_sql, decode_watermark, encode_watermark
from lakeop.storage import Storage, open_storage, retrying

CLAIMS_DIR = "_lakeop/claims"
MAX_ATTEMPTS = 50


def claim_path(job: str, seq: int) -> str:
    return f"{CLAIMS_DIR}/{job}/{seq:08d}.json"


def released_path(job: str, seq: int) -> str:
    return f"{CLAIMS_DIR}/{job}/{seq:08d}.released"


# ------------------------------------------------------------------------------- encoding


def to_json(claim: Claim) -> bytes:
    body: dict[str, Any] = {
        "runId": claim.run_id,
        "seq": claim.seq,
        "createdMs": claim.created_ms,
        "kind": claim.kind,
        "adopts": list(claim.adopts),
    }
    if claim.kind == "files":
        body["files"] = [list(f) for f in claim.files]
    if claim.sql is not None:
        sql = claim.sql
        body["sql"] = {
            "column": sql.column,
            "intervals": [
                [encode_watermark(i.lower), encode_watermark(i.upper)] for i in sql.intervals
            ],
            "splitColumn": sql.split_column,
            "low": encode_watermark(sql.low),
            "high": encode_watermark(sql.high),
        }
    return json.dumps(body, indent=1, sort_keys=True).encode()


def from_json(data: bytes) -> Claim:
    d = json.loads(data)
    sql = None
    if d.get("sql") is not None:
        s = d["sql"]
        sql = SqlClaim(
            column=s.get("column"),
            intervals=tuple(
                Interval(decode_watermark(lo), decode_watermark(hi)) for lo, hi in s["intervals"]
            ),
            split_column=s.get("splitColumn"),
            low=decode_watermark(s.get("low")),
            high=decode_watermark(s.get("high")),
        )
    return Claim(
        run_id=str(d["runId"]),
        seq=int(d["seq"]),
        created_ms=int(d.get("createdMs", 0)),
        kind="sql" if d.get("kind") == "sql" else "files",
        files=tuple((str(u), int(n), str(v)) for u, n, v in d.get("files") or []),
        sql=sql,
        adopts=tuple(int(s) for s in d.get("adopts") or []),
    )


def basis(claim: Claim) -> str:
    """What all shares of the run split (they adopt one claim, so they agree)."""
    return core.basis(claim, encode=encode_watermark)


# ------------------------------------------------------------------------------- reading


def read_log(
    storage: Storage, job: str, commits: list[Commit], cache: dict[str, Claim] | None = None
) -> ClaimLog:
    """The job's claims, released markers and committed runs. Claims never change once
    written, so ``cache`` (name -> claim) spares re-reading them across attempts."""
    cache = {} if cache is None else cache
    entries = retrying(lambda: storage.list_files(f"{CLAIMS_DIR}/{job}", recursive=False))
    released: set[int] = set()
    found: list[Claim] = []
    for entry in entries:
        name = entry.path.rsplit("/", 1)[-1]
        stem, _, ext = name.partition(".")
        if name.startswith(".") or not stem.isdigit():
            continue
        if ext == "released":
            released.add(int(stem))
        elif ext == "json":
            if name not in cache:
                data = retrying(functools.partial(storage.read_bytes, entry.path))
                if data is None:
                    continue
                cache[name] = from_json(data)
            found.append(cache[name])
    committed = frozenset(c.run_id for c in commits if c.job == job)
    return ClaimLog(tuple(found), frozenset(released), committed)


def is_released(storage: Storage, job: str, claim: Claim) -> bool:
    return bool(retrying(lambda: storage.exists(released_path(job, claim.seq))))


# ------------------------------------------------------------------------------- taking


def take(
    storage: Storage,
    plan: RunPlan,
    env: Mapping[str, str],
    commits: list[Commit],
    *,
    split: bool,
    now_ms: int,
) -> Claim:
    """The run's claim: adopted if the run has one, else created from the free inputs.

    ``split``: the run is scaled out, so a SQL claim also records the split column's bounds.
    """
    if isinstance(plan.source, SqlSourceSpec):
        source = plan.source
        url = env.get(plan.sql_url_env)
        if not url:
            ref = source.url_secret_ref
            raise SourceNotFoundError(
                f"sql source: environment variable {plan.sql_url_env} (the URL from secret "
                f"{ref.name}/{ref.key}) is not set"
            )
        committed = decode_watermark(last_watermark(commits, plan.job))

        def propose(log: ClaimLog) -> Claim:
            adopted, seqs = core.orphan_intervals(log) if source.incremental_column else ((), ())
            sql = claim_sql(
                url,
                source.query,
                incremental_column=source.incremental_column,
                lower=core.next_lower(committed, log) if source.incremental_column else None,
                adopted=adopted,
                split_column=source.split_key if split else None,
            )
            return Claim(plan.run_id, log.next_seq(), now_ms, "sql", sql=sql, adopts=seqs)

    else:
        uri = plan.source.uri
        listing: list[tuple[str, int, str]] | None = None
        taken = taken_sources(commits, plan.job)

        def propose(log: ClaimLog) -> Claim:
            nonlocal listing
            if listing is None:  # listed once, and only if the run has no claim yet
                found = retrying(lambda: list_source_files(uri, env, plan.source_env_prefix))
                listing = [f.identity for f in found]
            free = core.free_files(listing, taken, log)
            return Claim(plan.run_id, log.next_seq(), now_ms, "files", files=tuple(free))

    return acquire(storage, plan.job, plan.run_id, commits, propose)


def acquire(
    storage: Storage,
    job: str,
    run_id: str,
    commits: list[Commit],
    propose: Callable[[ClaimLog], Claim],
) -> Claim:
    """Adopt ``run_id``'s claim, or create the one ``propose`` computes from the current log
    at its next seq; a number taken meanwhile means re-reading the log and proposing again."""
    cache: dict[str, Claim] = {}
    for attempt in range(MAX_ATTEMPTS):
        log = read_log(storage, job, commits, cache)
        own = log.of_run(run_id)
        if own is not None:
            return own
        claim = propose(log)
        create = functools.partial(
            storage.create_exclusive, claim_path(job, claim.seq), to_json(claim)
        )
        if retrying(create):
            # the run's first claim: another share of the run may have won a lower number
            mine = read_log(storage, job, commits, cache).of_run(run_id)
            return claim if mine is None else mine
        time.sleep(random.uniform(0, 0.05 * min(attempt + 1, 10)))
    raise StorageUnavailableError(
        f"claims of job {job}: run {run_id} found no free claim number after "
        f"{MAX_ATTEMPTS} attempts ({CLAIMS_DIR}/{job}/)",
        delay=5.0,
    )


# ------------------------------------------------------------------------------- releasing


def release_run(storage: Storage, job: str, run_id: str) -> bool:
    """Mark the run's claims released; False (nothing done) if it committed or has none."""
    if CommitLog(storage).find(run_id) is not None:
        return False
    mine = [c for c in read_log(storage, job, []).claims if c.run_id == run_id]
    for claim in mine:
        body = json.dumps({"runId": run_id, "seq": claim.seq, "releasedMs": _now_ms()}).encode()
        create = functools.partial(storage.create_exclusive, released_path(job, claim.seq), body)
        retrying(create)  # False: released already
    return bool(mine)


def release(location: str, env: Mapping[str, str], prefix: str, job: str, run_id: str) -> bool:
    """Give up run ``run_id`` of ``job``: its claimed inputs become free for later runs.

    For the operator (a run recorded failed, cancelled or replaced) and ``lakeop ingest -f``.
    Idempotent; a no-op returning False when the run committed or never claimed anything.
    Call it only once the run can no longer commit (its pods are gone): a run finding its
    claim released refuses to commit, but one already past that check would still commit.
    """
    return release_run(open_storage(location, env, prefix), job, run_id)


def _now_ms() -> int:
    return int(time.time() * 1000)
