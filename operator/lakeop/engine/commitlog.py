"""The commit log under ``<location>/_lakeop/commits/``: what the table is made of.

One JSON object per committed run, named by its position in the log: ``<seq, 20 digits>.json``
(1, 2, 3, ... without gaps). Creating that object *only if absent*
(:meth:`Storage.create_exclusive`) is the commit point (docs/commit-protocol.md): before it the
run's files are invisible staged objects; after it they are part of the table, and publishing
them is roll-forward work any later run finishes. A committer creates ``seq`` only after it
has read every commit below it and found none of its run id, so however many processes with
one run id race, one commit of that run exists; the others read it and report it.

The live file set is ``added - removed`` folded over the commits in log order; overwrite
commits list exactly the files they replace. Tables written before the numbered log hold
``<ms, 13 digits>-<run id>.json`` commits: they are read first, in name order.

Reading stays bounded: every :data:`CHECKPOINT_INTERVAL` commits a *checkpoint*
(``_lakeop/checkpoints/<seq>.json``, the commits up to ``seq`` in one object) is written
after a commit, and ``_lakeop/checkpoints/_last.json`` names the newest. A reader takes the
checkpoint, then probes ``seq + 1, seq + 2, ...`` until one is missing; no listing. Commits
are immutable, so a process keeps what it read and only probes past it next time; what the
operator derives from a whole log (a Table's totals) it keeps per table and reuses while the
log's last commit is unchanged (:meth:`CommitLog.summary`).
Checkpoints are derived: a missing or torn one falls back to older ones or to the commits.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lakeop.core.constants import STORAGE_ENV_PREFIX
from lakeop.engine.commits import LOG_FORMAT, SEQ_DIGITS, Commit, seq_name, totals
from lakeop.errors import LakeopError
from lakeop.storage import Storage, open_storage

logger = logging.getLogger(__name__)

COMMITS_DIR = "_lakeop/commits"
CHECKPOINTS_DIR = "_lakeop/checkpoints"
LAST_CHECKPOINT = f"{CHECKPOINTS_DIR}/_last.json"
#: a checkpoint is written once this many commits follow the newest one
CHECKPOINT_INTERVAL = 50
#: checkpoints kept besides the newest (older ones are deleted after a new one is written)
CHECKPOINTS_KEPT = 2
#: tables whose read state a process keeps (the operator refreshes many)
CACHED_TABLES = 16
#: tables whose derived summary (the operator's status totals) a process keeps: small
#: entries, so every table an operator refreshes fits
SUMMARIZED_TABLES = 20_000
STAGING_DIR = "_lakeop/staging"
REJECTED_DIR = "_rejected"


def _is_seq_name(name: str) -> bool:
    return len(name) == SEQ_DIGITS + 5 and name.endswith(".json") and name[:SEQ_DIGITS].isdigit()


def _is_legacy_name(name: str) -> bool:
    return name.endswith(".json") and len(name) > 19 and name[:13].isdigit() and name[13] == "-"


@dataclass(frozen=True)
class _Snapshot:
    """What a process knows of one table's log: the commits in order (legacy ones first),
    the highest seq read, how many commits the checkpoint it started from held, and the raw
    bytes of commit ``high`` (re-read to check the table is still the one cached)."""

    commits: tuple[Commit, ...]
    high: int
    covered: int
    last_raw: bytes | None
    # compact JSON of the first len(texts) commits, kept for the next checkpoint
    texts: tuple[str, ...] = ()
    # run id -> its commit, over a prefix of ``commits`` (extended in place by _find: a
    # snapshot only ever grows, and one built from storage starts a new index)
    index: dict[str, Commit] = field(default_factory=dict, compare=False)
    indexed: list[int] = field(default_factory=lambda: [0], compare=False)


_LOCK = threading.Lock()
_CACHE: OrderedDict[str, _Snapshot] = OrderedDict()


@dataclass(frozen=True)
class _Summary:
    """Something derived from a whole log (``value``, made with ``key``), valid while the
    log still ends at commit ``high`` whose bytes are ``last_raw``."""

    high: int
    last_raw: bytes
    key: Any
    value: Any


_SUMMARIES: OrderedDict[str, _Summary] = OrderedDict()


class CommitLog:
    """A table's commit log; reads are cached per process (commits are immutable)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def commits(self) -> list[Commit]:
        return list(self._load().commits)

    def names(self) -> list[str]:
        return [c.name for c in self._load().commits]

    def find(self, run_id: str) -> Commit | None:
        """The commit of ``run_id``, None if it has none."""
        return _find(self._load(), run_id)

    def summary(self, key: Any, make: Callable[[list[Commit]], Any]) -> Any:
        """``make(commits)``, remembered per table: while the log still ends at the commit
        the remembered value was made from (that commit reads back the same, the next seq
        is absent: two small reads, whatever the length of the log), the value is reused
        without reading or folding the log again. ``key`` tells values made differently
        apart (a new key makes a new value)."""
        url = self.storage.url
        with _LOCK:
            memo = _SUMMARIES.get(url)
        if (
            memo is not None
            and memo.key == key
            and self._still_valid(memo.high, memo.last_raw)
            and self._read(seq_name(memo.high + 1)) is None
        ):
            with _LOCK:
                _SUMMARIES.move_to_end(url)
            return memo.value
        snap = self._load()
        value = make(list(snap.commits))
        if snap.high and snap.last_raw is not None:
            with _LOCK:
                _SUMMARIES[url] = _Summary(snap.high, snap.last_raw, key, value)
                _SUMMARIES.move_to_end(url)
                while len(_SUMMARIES) > SUMMARIZED_TABLES:
                    _SUMMARIES.popitem(last=False)
        return value

    def commit(
        self, commit: Commit, prepare: Callable[[list[Commit], Commit], Commit] | None = None
    ) -> tuple[Commit, bool]:
        """The commit point: append ``commit`` as the next seq, unless its run id committed.

        Returns the run's one commit and whether this call created it: ``commit`` (with its
        seq), or the one a racing process with the same run id (a zombie pod, another share)
        created. The next number is created only if absent, after reading every commit below
        it. ``prepare`` (an overwrite, a compaction) turns ``commit`` into what is written,
        from exactly the commits below its number (called again if the number was taken);
        it raises to refuse (a compaction whose inputs an overwrite removed).
        """
        snap = self._load()
        while True:
            mine = _find(snap, commit.run_id)
            if mine is not None:  # ours if a retried create had succeeded unanswered
                ours = mine.files == commit.files and mine.committed_ms == commit.committed_ms
                return mine, ours
            entry = replace(commit, seq=snap.high + 1)
            if prepare is not None:
                entry = replace(prepare(list(snap.commits), entry), seq=snap.high + 1)
            body = entry.to_json().encode()
            if self.storage.create_exclusive(f"{COMMITS_DIR}/{entry.name}", body):
                snap = replace(snap, commits=(*snap.commits, entry), high=entry.seq, last_raw=body)
                _remember(self.storage.url, snap)
                self._checkpoint_quietly(snap)
                return entry, True
            snap = self._load()  # the number was taken: read it and whatever follows

    # ------------------------------------------------------------------------ reading

    def _load(self) -> _Snapshot:
        url = self.storage.url
        with _LOCK:
            cached = _CACHE.get(url)
        if cached is None or not self._still_valid(cached.high, cached.last_raw):
            cached = self._base()
        snap = self._probe(cached)
        _remember(url, snap)
        self._checkpoint_quietly(snap)
        return snap

    def _still_valid(self, high: int, raw: bytes | None) -> bool:
        """A cached state is reused only while its last commit reads back the same (the
        table was not deleted and recreated meanwhile)."""
        if high == 0 or raw is None:
            return False
        return self._read(seq_name(high)) == raw

    def _read(self, name: str, where: str = COMMITS_DIR) -> bytes | None:
        return self.storage.read_bytes(f"{where}/{name}")

    def _probe(self, snap: _Snapshot) -> _Snapshot:
        """``snap`` extended by the commits after it: seq ``high + 1``, ``+ 2``, ... until one
        is missing (the log has no gaps: a number is created only after the one before)."""
        commits, high, raw = list(snap.commits), snap.high, snap.last_raw
        while True:
            data = self._read(seq_name(high + 1))
            if data is None:
                break
            high += 1
            commits.append(replace(Commit.from_json(data.decode()), seq=high))
            raw = data
        if high == snap.high:
            return snap
        return replace(snap, commits=tuple(commits), high=high, last_raw=raw)

    def _base(self) -> _Snapshot:
        """Where reading starts: the newest readable checkpoint, else the whole log."""
        pointer = self._read("_last.json", CHECKPOINTS_DIR)
        tried: set[str] = set()
        if pointer is not None:
            try:
                name = seq_name(int(json.loads(pointer)["seq"]))
            except (ValueError, KeyError, TypeError):
                name = ""
            found = self._checkpoint(name) if name else None
            if found is not None:
                return found
            tried.add(name)
        for name in reversed(self._listed(CHECKPOINTS_DIR)):
            if name not in tried and _is_seq_name(name):
                found = self._checkpoint(name)
                if found is not None:
                    return found
        legacy = []
        for name in self._listed(COMMITS_DIR):
            if _is_legacy_name(name):
                data = self._read(name)
                if data is not None:
                    legacy.append(Commit.from_json(data.decode()))
        return _Snapshot(tuple(legacy), 0, 0, None)

    def _listed(self, where: str) -> list[str]:
        entries = self.storage.list_files(where, recursive=False)
        return sorted(e.path.rsplit("/", 1)[-1] for e in entries)

    def _checkpoint(self, name: str) -> _Snapshot | None:
        """A checkpoint, if it is whole and consistent (else None: read an older one)."""
        data = self._read(name, CHECKPOINTS_DIR)
        if data is None:
            return None
        try:
            doc = json.loads(data)
            high = int(doc["seq"])
            commits = tuple(Commit.from_dict(c) for c in doc["commits"])
            last_raw = base64.b64decode(doc["lastRaw"]) if high else None
        except (ValueError, KeyError, TypeError):
            return None
        numbered = [c.seq for c in commits if c.seq]
        if numbered != list(range(1, high + 1)) or any(c.seq for c in commits[: -high or None]):
            return None
        return _Snapshot(commits, high, len(commits), last_raw)

    # ------------------------------------------------------------------------ checkpoints

    def checkpoint(self) -> bool:
        """Write a checkpoint of the whole log now (expiry); False if it is already the
        newest one or the log is empty."""
        snap = self._load()
        if snap.high == 0 or snap.covered == len(snap.commits):
            return False
        compact = functools.partial(json.dumps, separators=(",", ":"), default=str)
        texts = snap.texts + tuple(compact(c.to_dict()) for c in snap.commits[len(snap.texts) :])
        self._write_checkpoint(snap, texts)
        _remember(self.storage.url, replace(snap, covered=len(snap.commits), texts=texts))
        return True

    def _checkpoint_quietly(self, snap: _Snapshot) -> None:
        """Write a checkpoint if enough commits follow the one read; a failure only costs
        the next reader more reads."""
        if len(snap.commits) - snap.covered < CHECKPOINT_INTERVAL:
            return
        compact = functools.partial(json.dumps, separators=(",", ":"), default=str)
        texts = snap.texts + tuple(compact(c.to_dict()) for c in snap.commits[len(snap.texts) :])
        try:
            self._write_checkpoint(snap, texts)
        except (LakeopError, OSError) as e:
            logger.warning("could not write a commit log checkpoint: %s", e)
            return
        _remember(self.storage.url, replace(snap, covered=len(snap.commits), texts=texts))

    def _write_checkpoint(self, snap: _Snapshot, texts: tuple[str, ...]) -> None:
        """``texts``: each commit's JSON (serialised once per process, not per checkpoint)."""
        name = seq_name(snap.high)
        head = json.dumps(
            {
                "format": LOG_FORMAT,
                "seq": snap.high,
                "lastRaw": base64.b64encode(snap.last_raw or b"").decode(),
            }
        )
        body = f'{head[:-1]}, "commits": [{",".join(texts)}]}}'.encode()
        with _LOCK:  # threads of one process (the operator) share temporary names
            self.storage.write_bytes_atomic(f"{CHECKPOINTS_DIR}/{name}", body)
            pointer = json.dumps({"seq": snap.high}).encode()
            self.storage.write_bytes_atomic(LAST_CHECKPOINT, pointer)
        older = [n for n in self._listed(CHECKPOINTS_DIR) if _is_seq_name(n) and n < name]
        for old in older[: max(0, len(older) - CHECKPOINTS_KEPT)]:
            self.storage.delete(f"{CHECKPOINTS_DIR}/{old}")


def _find(snap: _Snapshot, run_id: str) -> Commit | None:
    """The first commit of ``run_id`` in the snapshot (an index, so that committing into a
    long log stays linear)."""
    with _LOCK:
        for c in snap.commits[snap.indexed[0] :]:
            snap.index.setdefault(c.run_id, c)
        snap.indexed[0] = len(snap.commits)
        return snap.index.get(run_id)


def _remember(url: str, snap: _Snapshot) -> None:
    if snap.high == 0:
        return  # only a numbered log can be checked for staleness
    with _LOCK:
        _CACHE[url] = snap
        _CACHE.move_to_end(url)
        while len(_CACHE) > CACHED_TABLES:
            _CACHE.popitem(last=False)


def forget(url: str) -> None:
    """Drop what this process cached of the table at ``url`` (it was deleted)."""
    with _LOCK:
        _CACHE.pop(url.rstrip("/"), None)
        _SUMMARIES.pop(url.rstrip("/"), None)


def table_totals(
    location: str,
    storage_env: Mapping[str, str] | None = None,
    prefix: str = STORAGE_ENV_PREFIX,
    small_below: float | None = None,
) -> dict[str, Any]:
    """Committed totals for the operator: rows, files, bytes, partitions, lastCommitTime
    (and smallFiles, with ``small_below``)."""
    return totals(CommitLog(open_storage(location, storage_env, prefix)).commits(), small_below)
