"""One share of a scaled-out run: pod ``i`` of an Indexed Job writes share ``i`` only.

With ``plan.parallelism`` N > 1 and ``JOB_COMPLETION_INDEX`` set (the Job controller sets it in
every pod of an Indexed Job), all pods work from the run's one *claim*
(:mod:`lakeop.engine.claims`: the first pod creates it, the others adopt it), so they split
the same input by construction:

* files: pod ``i`` takes :func:`lakeop.core.lake.sharding.shard_files` of the claimed files;
* SQL: the claim holds the split column's min and max over the claimed rows, read once by the
  claimer; pod ``i`` reads the claimed intervals within its range of
  :func:`lakeop.core.lake.sharding.shard_key_ranges` (first range open below with NULL keys, last
  open above), so every claimed row has exactly one reader.

A file or row arriving mid-run is simply not in the claim: the next run takes it. Each pod
writes its rows into the run's shared staging directory under file names carrying its share
(``part-<run>-s<i>-<n>.parquet``). The last thing it writes is its *share manifest*,
``_lakeop/staging/<run>/shards/<i>.json``: the basis (the claim), files, sources, counters.

A retried share first deletes its manifest; each attempt's files and quarantined records carry
its own tag (``part-<run>-s<i>-a<attempt>-<n>``, ``rejected-s<i>-a<attempt>-<n>.jsonl``) and a
manifest names only its attempt's, so an attempt never mixes with an earlier one and a
half-written share is never counted.

After writing its manifest a pod reads all manifests; when
:func:`lakeop.core.lake.sharding.ready_to_commit` says all N are there and agree on the basis,
it builds the run's one commit from them and writes it (its watermark is the highest of the
shares'). The commit is a pure function of the manifests (its time is the latest manifest's
finish time), so two pods finishing at the same moment build the same commit; the commit
point is an exclusive create of the log's next number, so one of them creates it and the
other finds the run's commit there and publishes it: the run commits once
(docs/commit-protocol.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakeop.core.lake import sharding
from lakeop.engine.commitlog import STAGING_DIR
from lakeop.engine.commits import Commit, DataFile, live_files
from lakeop.engine.watermarks import decode_watermark
from lakeop.errors import InvalidSpecError, TerminalError
from lakeop.sources.files import SourceFile
from lakeop.storage import Storage

INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass(frozen=True)
class Share:
    run_id: str
    index: int
    count: int

    @property
    def tag(self) -> str:
        """Put in the share's file names: ``part-<run>-s<i>-<n>.parquet``."""
        return f"-s{self.index}"

    @property
    def manifest_path(self) -> str:
        return f"{STAGING_DIR}/{self.run_id}/shards/{self.index}.json"


def share_of(run_id: str, parallelism: int, env: Mapping[str, str]) -> Share | None:
    """This process's share, or None for a single-writer run.

    Without ``JOB_COMPLETION_INDEX`` (``lakeop ingest -f`` on one machine) the run is written
    by this one process whatever the parallelism.
    """
    raw = env.get(INDEX_ENV)
    if parallelism <= 1 or raw is None or raw == "":
        return None
    try:
        index = int(raw)
    except ValueError:
        index = -1
    if not 0 <= index < parallelism:
        raise InvalidSpecError(
            f"environment variable {INDEX_ENV}={raw!r} is not a share index in "
            f"0..{parallelism - 1} (plan parallelism {parallelism})"
        )
    return Share(run_id, index, parallelism)


def select_files(files: list[SourceFile], share: Share) -> list[SourceFile]:
    """The share's files out of the run's claimed ones."""
    keyed = [sharding.SourceFile(f.uri, f.size) for f in files]
    mine = {f.path for f in sharding.shard_files(keyed, share.index, share.count)}
    return [f for f in files if f.uri in mine]


def reset(storage: Storage, share: Share) -> None:
    """Forget an earlier attempt of this share: its manifest. Its staged files and
    quarantined records stay: each attempt names its own apart (``part-<run>-s<i>-a<attempt>-``,
    ``rejected-s<i>-a<attempt>-``), a manifest names only its attempt's, and publishing the
    run's commit removes the rest. So a pod overlapping its own retry never deletes what the
    other attempt's manifest names."""
    storage.delete(share.manifest_path)


def totals_of(files: list[DataFile], rows_read: int, rows_rejected: int) -> dict[str, int]:
    return {
        "rowsRead": rows_read,
        "rowsWritten": sum(f.rows for f in files),
        "rowsRejected": rows_rejected,
        "bytesWritten": sum(f.bytes for f in files),
        "filesWritten": len(files),
    }


def write_manifest(storage: Storage, share: Share, manifest: Mapping[str, Any]) -> None:
    """The share's last write: its presence says the share is complete."""
    body = json.dumps({**manifest, "index": share.index, "count": share.count}, sort_keys=True)
    storage.write_bytes_atomic(share.manifest_path, body.encode())


def read_manifests(storage: Storage, run_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in storage.list_files(f"{STAGING_DIR}/{run_id}/shards"):
        name = entry.path.rsplit("/", 1)[-1]
        if name.startswith(".") or not name.endswith(".json"):
            continue
        data = storage.read_bytes(entry.path)
        if data is not None:
            out[name] = json.loads(data)
    return out


def readiness(manifests: Mapping[str, Mapping[str, Any]], count: int) -> sharding.CommitReadiness:
    results = [
        sharding.ShardResult(
            index=int(m["index"]),
            basis=str(m["basis"]),
            attempt=int(m.get("attempt", 0)),
            totals=dict(m.get("totals") or {}),
            manifest=name,
        )
        for name, m in manifests.items()
    ]
    state = sharding.ready_to_commit(results, count)
    if state.problems:
        raise TerminalError(
            "the shares of this run cannot be committed together: " + "; ".join(state.problems),
            reason="ShardsDisagree",
        )
    return state


def build_commit(
    *,
    run_id: str,
    job: str,
    schema_version: int,
    mode: str,
    chosen: Sequence[Mapping[str, Any]],
    commits: list[Commit],
    iso: Any,
) -> Commit:
    """The run's one commit, a pure function of the chosen manifests (and, for overwrites,
    of the commits before it)."""
    files = sorted(
        (DataFile(**f) for m in chosen for f in m.get("files") or []), key=lambda f: f.path
    )
    touched = {f.partition for f in files}
    removed: list[str] = []
    if mode == "overwrite-partitions":
        removed = sorted(p for p, f in live_files(commits).items() if f.partition in touched)
    finished = max(int(m.get("finishedMs", 0)) for m in chosen)
    watermarks = [m["watermark"] for m in chosen if m.get("watermark") is not None]
    watermark = max(watermarks, key=decode_watermark) if watermarks else None
    return Commit(
        run_id=run_id,
        job=job,
        committed_at=iso(finished / 1000),
        committed_ms=finished,
        schema_version=schema_version,
        mode=mode,
        files=files,
        removed=removed,
        sources=sorted(
            (s for m in chosen for s in m.get("sources") or []), key=lambda s: str(s["uri"])
        ),
        watermark=watermark,
        rows_read=sum(int(m.get("rowsRead", 0)) for m in chosen),
        rows_rejected=sum(int(m.get("rowsRejected", 0)) for m in chosen),
        extra_columns=sorted({c for m in chosen for c in m.get("extraColumns") or []}),
        shards=[{"index": int(m["index"]), **dict(m.get("totals") or {})} for m in chosen],
        quarantine=_quarantine_tags(chosen),
    )


def _quarantine_tags(chosen: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The attempts whose quarantined records are the run's: one per share (None: the run
    keeps none, or its manifests predate the tags)."""
    tags = [str(m["quarantine"]) for m in chosen if m.get("quarantine") is not None]
    return sorted(tags) if tags else None
