"""A job's claim log as objects in storage: where they live, how a claim is encoded, and
reading the log back (:mod:`lakeop.engine.claims` takes, releases and compacts claims).

Claims live at ``<location>/_lakeop/claims/<job>/<seq, 8 digits>.json``; ``<seq>.released``
next to a claim marks it released, ``<seq>.lease`` holds its renewed lease expiry, and
``intent-<ms, 13 digits>-<nonce>`` announces a claimer about to create a claim.

A claim holds, as JSON::

    {"runId", "seq", "createdMs", "leaseUntilMs", "kind": "files" | "sql", "adopts": [seq, ...],
     "split", "files": [[uri, size, version], ...],
     "sql": {"column", "intervals": [[lower, upper], ...], "splitColumn", "low", "high"}}

with SQL bounds encoded like watermarks (:func:`lakeop.engine.watermarks.encode_watermark`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from lakeop.core.lake import inputs as core
from lakeop.core.lake.inputs import Claim, ClaimLog, Interval, SqlClaim
from lakeop.engine.commits import Commit
from lakeop.engine.formats import detect
from lakeop.engine.watermarks import decode_watermark, encode_watermark
from lakeop.storage import Storage

CLAIMS_DIR = "_lakeop/claims"
INTENT = "intent-"


def claim_path(job: str, seq: int) -> str:
    return f"{CLAIMS_DIR}/{job}/{seq:08d}.json"


def released_path(job: str, seq: int) -> str:
    return f"{CLAIMS_DIR}/{job}/{seq:08d}.released"


def lease_path(job: str, seq: int) -> str:
    return f"{CLAIMS_DIR}/{job}/{seq:08d}.lease"


def to_json(claim: Claim) -> bytes:
    body: dict[str, Any] = {
        "runId": claim.run_id,
        "seq": claim.seq,
        "createdMs": claim.created_ms,
        "kind": claim.kind,
        "adopts": list(claim.adopts),
    }
    if claim.split is not None:
        body["split"] = claim.split
    if claim.lease_until_ms is not None:
        body["leaseUntilMs"] = claim.lease_until_ms
    if claim.after is not None:
        body["after"] = claim.after
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
        split=None if d.get("split") is None else bool(d["split"]),
        lease_until_ms=None if d.get("leaseUntilMs") is None else int(d["leaseUntilMs"]),
        after=None if d.get("after") is None else int(d["after"]),
    )


def basis(claim: Claim) -> str:
    """What all shares of the run split (they adopt one claim, so they agree)."""
    return core.basis(claim, encode=encode_watermark)


@dataclasses.dataclass(frozen=True)
class Listing:
    """One listing of a job's claims directory: claim, marker and lease seqs, intents
    (name, ms)."""

    claims: dict[str, str]  # claim object name -> path
    released: frozenset[int]
    intents: tuple[tuple[str, int], ...]
    leases: frozenset[int] = frozenset()


def list_dir(storage: Storage, job: str) -> Listing:
    entries = storage.list_files(f"{CLAIMS_DIR}/{job}", recursive=False)
    found: dict[str, str] = {}
    released: set[int] = set()
    leases: set[int] = set()
    intents: list[tuple[str, int]] = []
    for entry in entries:
        name = entry.path.rsplit("/", 1)[-1]
        if name.startswith(INTENT):
            ms = name[len(INTENT) :].split("-", 1)[0]
            intents.append((entry.path, int(ms) if ms.isdigit() else 0))
            continue
        stem, _, ext = name.partition(".")
        if name.startswith(".") or not stem.isdigit():
            continue
        if ext == "released":
            released.add(int(stem))
        elif ext == "lease":
            leases.add(int(stem))
        elif ext == "json":
            found[name] = entry.path
    return Listing(found, frozenset(released), tuple(intents), frozenset(leases))


def read_log(
    storage: Storage,
    job: str,
    commits: list[Commit],
    cache: dict[str, Claim] | None = None,
    listing: Listing | None = None,
) -> ClaimLog:
    """The job's claims, released markers, committed runs and the leases of unmarked claims.
    Claims never change once written, so ``cache`` (name -> claim) spares re-reading them
    across attempts; leases do change, and are read each time."""
    cache = {} if cache is None else cache
    listing = list_dir(storage, job) if listing is None else listing
    found: list[Claim] = []
    for name, path in listing.claims.items():
        if name not in cache:
            data = storage.read_bytes(path)
            if data is None:  # compacted since the listing
                continue
            cache[name] = from_json(data)
        found.append(cache[name])
    committed = committed_runs(commits, job)
    leases: dict[int, int] = {}
    for c in found:
        if c.seq in listing.leases and c.seq not in listing.released and c.run_id not in committed:
            until = read_lease(storage, job, c.seq)
            if until is not None:
                leases[c.seq] = until
    return ClaimLog(tuple(found), listing.released, committed, leases)


def read_lease(storage: Storage, job: str, seq: int) -> int | None:
    """The expiry (ms) a claim's lease object holds; None if there is none (or unreadable:
    the claim's own ``leaseUntilMs`` then counts, which only ends the lease sooner)."""
    data = storage.read_bytes(lease_path(job, seq))
    if data is None:
        return None
    try:
        return int(json.loads(data)["expiresMs"])
    except (ValueError, KeyError, TypeError):
        return None


def committed_runs(commits: list[Commit], job: str) -> frozenset[str]:
    return frozenset(c.run_id for c in commits if c.job == job)


def is_released(storage: Storage, job: str, claim: Claim) -> bool:
    """Whether the run must not commit this claim: it is marked released, or it is gone (only
    a committed, released or empty claim is ever compacted) and the run did not commit.
    The marker is checked first: compaction deletes a claim before its marker."""
    if storage.exists(released_path(job, claim.seq)):
        return True
    if storage.exists(claim_path(job, claim.seq)):
        return False
    return detect(storage).find(claim.run_id) is None
