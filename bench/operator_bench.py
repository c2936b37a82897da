"""Operator scale: 300 Tables with a SchemaVersion each, applied at once.

Measures the seconds from ``kubectl apply`` until every Table is Ready with its
``currentSchemaVersion`` set and every SchemaVersion Accepted, and the operator's peak RSS
(``VmHWM`` of the ``lakeop run`` process). The anchor, measured in the same run, is how long
the API server alone takes to accept the same objects (``kubectl apply`` into a namespace no
operator watches), so the ratio says what reconciling adds on top of the control plane.
Targets: 60 s, 250 MiB.

Usage: operator_bench.py [--tables N] [--timeout S]   (needs the local cluster: make cluster-up)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = ROOT / ".devcluster" / "kubeconfig"
KUBECTL = ROOT / ".devcluster" / "bin" / "kubectl"
LAKEOP = str(Path(sys.executable).with_name("lakeop"))
TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 250.0
FIELDS = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "ts", "type": "timestamp"},
    {"name": "payload", "type": "string"},
]


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args[:3])} failed:\n{proc.stderr}")
    return proc.stdout


def manifests(n: int) -> str:
    docs: list[dict[str, Any]] = []
    for i in range(n):
        name = f"t{i:04d}"
        docs.append(
            {
                "apiVersion": "lakeop.io/v1alpha1",
                "kind": "Table",
                "metadata": {"name": name},
                "spec": {"partitioning": {"strategy": "date", "column": "ts"}},
            }
        )
        docs.append(
            {
                "apiVersion": "lakeop.io/v1alpha1",
                "kind": "SchemaVersion",
                "metadata": {"name": f"{name}-v1"},
                "spec": {"tableRef": name, "version": 1, "fields": FIELDS},
            }
        )
    return yaml.safe_dump_all(docs)


def converged(namespace: str, n: int) -> tuple[int, int]:
    """(Tables Ready with currentSchemaVersion 1, SchemaVersions Accepted)."""
    data = json.loads(kubectl("get", "ltbl,lsv", "-n", namespace, "-o", "json"))
    tables = versions = 0
    for item in data["items"]:
        status = item.get("status") or {}
        if item["kind"] == "Table":
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            tables += ready and status.get("currentSchemaVersion") == 1
        elif status.get("phase") == "Accepted":
            versions += 1
    return tables, versions


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def run(n: int, timeout: float) -> dict[str, Any]:
    namespace = f"bench-op-{uuid.uuid4().hex[:6]}"
    work = ROOT / ".bench" / "operator"
    work.mkdir(parents=True, exist_ok=True)
    kubectl("apply", "-k", str(ROOT / "crds"))
    kubectl(
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd/tables.lakeop.io",
        "crd/schemaversions.lakeop.io",
    )
    text = manifests(n)
    anchor_ns = f"{namespace}-anchor"
    kubectl("create", "namespace", anchor_ns)
    start = time.monotonic()
    kubectl("apply", "-n", anchor_ns, "-f", "-", stdin=text)
    anchor = time.monotonic() - start
    kubectl("delete", "namespace", anchor_ns, "--wait=false")
    kubectl("create", "namespace", namespace)
    env = {
        **os.environ,
        "KUBECONFIG": str(KUBECONFIG),
        "LAKEOP_DEFAULT_LOCATION": (work / "lake").resolve().as_uri(),
    }
    log = (work / "operator.log").open("wb")
    op = subprocess.Popen(
        [LAKEOP, "run", "--standalone", "--namespace", namespace],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(3)  # let the operator list and watch before the burst
        start = time.monotonic()
        kubectl("apply", "-n", namespace, "-f", "-", stdin=text)
        done = (0, 0)
        while time.monotonic() - start < timeout:
            done = converged(namespace, n)
            if done == (n, n):
                break
            time.sleep(1)
        seconds = time.monotonic() - start
        rss = peak_rss_mib(op.pid)
        return {
            "tables": n,
            "ready": done[0],
            "accepted": done[1],
            "seconds": seconds,
            "apply_seconds": anchor,
            "peak_rss_mib": rss,
            "ok": done == (n, n) and seconds <= TARGET_SECONDS and rss <= TARGET_RSS_MIB,
        }
    finally:
        kubectl(
            "delete", "ltbl", "--all", "-n", namespace, "--wait=true", "--timeout=300s", check=False
        )
        op.send_signal(signal.SIGTERM)
        try:
            op.wait(timeout=30)
        except subprocess.TimeoutExpired:
            op.kill()
        log.close()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    r = run(args.tables, args.timeout)
    print(f"operator bench: {r['tables']} Tables + {r['tables']} SchemaVersions applied at once")
    print(f"  anchor  kubectl apply, no operator:      {r['apply_seconds']:6.1f} s")
    print(
        f"  lakeop  all Ready/Accepted:              {r['seconds']:6.1f} s  "
        f"({r['seconds'] / max(r['apply_seconds'], 1e-9):.1f}x the anchor; target "
        f"{TARGET_SECONDS:.0f} s; {r['ready']}/{r['tables']} Ready, "
        f"{r['accepted']}/{r['tables']} Accepted)"
    )
    print(
        f"  lakeop  operator peak RSS:               {r['peak_rss_mib']:6.0f} MiB "
        f"(target {TARGET_RSS_MIB:.0f} MiB)"
    )
    print(f"  {'PASS' if r['ok'] else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
