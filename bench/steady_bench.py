"""Operator steady state with history: 1,000 Tables whose lakes hold 1,000 commits each.

The lakes are generated straight into storage with the engine's commit-log code (each commit
object as :class:`~lakeop.engine.commits.Commit` writes it, and the checkpoint
:class:`~lakeop.engine.commitlog.CommitLog` writes every 50 commits), not by running a
million ingestions (one lake written, the others hard links to its objects: each Table
has its own location, so nothing in the operator shares what it reads). Then, against the
local cluster (``make cluster-up``):

* Ready after a start: the Tables and their SchemaVersions are applied with no operator
  running, the operator starts, and the seconds until every Table is Ready with
  ``currentSchemaVersion`` 1 are measured (each Table's lake read from its checkpoint);
* idle, for ``--idle`` seconds after that (every Table refreshed at least once per 30 s):
  the operator's CPU (utime + stime, % of one core), its storage reads (read syscalls and
  bytes, ``/proc/<pid>/io``: the lakes are local directories), the API requests the API
  server counted (``apiserver_request_total``, all clients: the bench sends none meanwhile),
  all per minute, and the operator's RSS (current and peak).

Run it at two history lengths (``--commits 10`` and ``--commits 1000``): the figures must
not grow with history. Targets: idle CPU < 5% of one core, Ready within 60 s, RSS <= 300 MiB.

Usage: steady_bench.py [--tables N] [--commits C [C ...]] [--idle S]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from operator_bench import FIELDS, KUBECONFIG, LAKEOP, ROOT, converged, kubectl

from lakeop.engine.commitlog import CHECKPOINT_INTERVAL, CHECKPOINTS_DIR, COMMITS_DIR
from lakeop.engine.commits import LOG_FORMAT, Commit, DataFile, seq_name

TARGET_CPU = 5.0
TARGET_READY_S = 60.0
TARGET_RSS_MIB = 300.0


def commit(i: int) -> Commit:
    day = 1 + i % 28
    return Commit(
        run_id=f"r{i:06d}",
        job="load",
        committed_at="2026-01-01T00:00:00Z",
        committed_ms=1_767_225_600_000 + i,
        schema_version=1,
        mode="append",
        files=[DataFile(f"day={day}/part-r{i:06d}-00000.parquet", f"day={day}", 1000, 40_000)],
        sources=[{"uri": f"file:///landing/f{i:06d}.csv", "size": 50, "version": "1"}],
        rows_read=1000,
        seq=i + 1,
    )


def generate(lake: Path, commits: int) -> None:
    """A lake's commit log of ``commits`` commits, with the checkpoint the engine would have
    written at the last multiple of CHECKPOINT_INTERVAL (and the pointer to it)."""
    (lake / COMMITS_DIR).mkdir(parents=True, exist_ok=True)
    (lake / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    texts, raw = [], b""
    upto = commits - commits % CHECKPOINT_INTERVAL
    for i in range(commits):
        c = commit(i)
        raw = c.to_json().encode()
        (lake / COMMITS_DIR / seq_name(c.seq)).write_bytes(raw)
        if i < upto:
            texts.append(json.dumps(c.to_dict(), separators=(",", ":"), default=str))
        if i + 1 == upto:
            head = json.dumps(
                {"format": LOG_FORMAT, "seq": upto, "lastRaw": base64.b64encode(raw).decode()}
            )
            body = f'{head[:-1]}, "commits": [{",".join(texts)}]}}'
            (lake / CHECKPOINTS_DIR / seq_name(upto)).write_text(body)
            (lake / CHECKPOINTS_DIR / "_last.json").write_text(json.dumps({"seq": upto}))


def manifests(n: int, lakes: Path) -> str:
    docs: list[dict[str, Any]] = []
    for i in range(n):
        name = f"t{i:04d}"
        spec = {"location": (lakes / name).as_uri(), "partitioning": {"strategy": "none"}}
        docs.append({"apiVersion": "lakeop.io/v1alpha1", "kind": "Table",
                     "metadata": {"name": name}, "spec": spec})  # fmt: skip
        docs.append({"apiVersion": "lakeop.io/v1alpha1", "kind": "SchemaVersion",
                     "metadata": {"name": f"{name}-v1"},
                     "spec": {"tableRef": name, "version": 1, "fields": FIELDS}})  # fmt: skip
    return yaml.safe_dump_all(docs)


def proc_figures(pid: int) -> dict[str, float]:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    out = {"cpu_s": (int(stat[11]) + int(stat[12])) / ticks}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, value = line.split(":")
        out[key] = float(value)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return out


def api_requests() -> float:
    text = kubectl("get", "--raw", "/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure(n: int, commits: int, idle: float, timeout: float) -> dict[str, Any]:
    namespace = f"bench-steady-{uuid.uuid4().hex[:6]}"
    work = ROOT / ".bench" / "steady"
    lakes = work / f"lakes-{commits}"
    start = time.monotonic()
    if not (lakes / ".complete").exists() or len(list(lakes.glob("t*"))) != n:
        shutil.rmtree(lakes, ignore_errors=True)
        generate(lakes / "t0000", commits)
        for i in range(1, n):  # the same log in every lake: hard links, not copies
            shutil.copytree(lakes / "t0000", lakes / f"t{i:04d}", copy_function=os.link)
        (lakes / ".complete").write_text("")
    generated = time.monotonic() - start
    kubectl("apply", "-k", str(ROOT / "crds"))
    kubectl("create", "namespace", namespace)
    kubectl("apply", "-n", namespace, "-f", "-", stdin=manifests(n, lakes))
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG)}
    log = (work / "operator.log").open("wb")
    op = subprocess.Popen(
        [LAKEOP, "run", "--standalone", "--namespace", namespace],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        start = time.monotonic()
        done = (0, 0)
        while time.monotonic() - start < timeout and done != (n, n):
            time.sleep(1)
            done = converged(namespace, n)
        ready = time.monotonic() - start
        time.sleep(5)  # the burst of first status writes settles
        before, requests = proc_figures(op.pid), api_requests()
        time.sleep(idle)
        after, requests = proc_figures(op.pid), api_requests() - requests
        per_min = 60.0 / idle
        return {
            "tables": n,
            "commits": commits,
            "generate_s": generated,
            "ready": done[0],
            "ready_s": ready,
            "cpu_pct": 100.0 * (after["cpu_s"] - before["cpu_s"]) / idle,
            "read_calls_per_min": (after["syscr"] - before["syscr"]) * per_min,
            "read_mib_per_min": (after["rchar"] - before["rchar"]) * per_min / 2**20,
            "api_per_min": requests * per_min,
            "rss_mib": after["VmRSS"],
            "peak_rss_mib": after["VmHWM"],
        }
    finally:
        op.send_signal(signal.SIGTERM)
        try:
            op.wait(timeout=30)
        except subprocess.TimeoutExpired:
            op.kill()
        log.close()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--commits", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LAKEOP_RESYNC_SECONDS", "30")
    print(f"steady bench: {args.tables} Tables, idle {args.idle:.0f} s (figures per minute)")
    print(
        f"{'commits':>8} {'gen s':>6} {'Ready s':>8} {'CPU %':>6} {'read calls':>11} "
        f"{'read MiB':>9} {'API req':>8} {'RSS MiB':>8} {'peak MiB':>9}",
        flush=True,
    )
    ok = True
    for commits in args.commits:  # each row printed as soon as it is measured
        r = measure(args.tables, commits, args.idle, args.timeout)
        print(
            f"{r['commits']:>8} {r['generate_s']:>6.0f} {r['ready_s']:>8.1f} {r['cpu_pct']:>6.1f} "
            f"{r['read_calls_per_min']:>11.0f} {r['read_mib_per_min']:>9.1f} "
            f"{r['api_per_min']:>8.0f} {r['rss_mib']:>8.0f} {r['peak_rss_mib']:>9.0f}"
            f"  ({r['ready']}/{r['tables']} Ready)",
            flush=True,
        )
        ok &= (
            r["ready"] == r["tables"]
            and r["ready_s"] <= TARGET_READY_S
            and r["cpu_pct"] < TARGET_CPU
            and r["peak_rss_mib"] <= TARGET_RSS_MIB
        )
    print(
        f"  targets: Ready <= {TARGET_READY_S:.0f} s, idle CPU < {TARGET_CPU:.0f}% of a core, "
        f"RSS <= {TARGET_RSS_MIB:.0f} MiB: {'PASS' if ok else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
