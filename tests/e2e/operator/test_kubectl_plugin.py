"""``kubectl lakeop``: each verb on the local cluster, through ``kubectl`` itself (the plugin
found on PATH as ``kubectl-lakeop``), with the namespace, context and KUBECONFIG as kubectl
takes them; outcomes checked through the API server and an independent DuckDB read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from operator_e2e import (
    ID_V_FIELDS,
    Operator,
    apply,
    get,
    ingestion_job,
    schema_version,
    table,
    wait_status,
)

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def plugin(kube: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``kubectl lakeop ARGS`` with KUBECONFIG set, as a user would run it."""
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [str(kube.kubectl_bin), "lakeop", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def succeeded(kube: Any, ns: str, operator: Operator, runs: int) -> dict[str, Any]:
    return wait_status(
        kube,
        ns,
        "ingestionjobs",
        "load",
        lambda s: s.get("runs") == runs and s.get("phase") == "Succeeded",
        what=f"run {runs} succeeded",
        timeout=180,
        operator=operator,
    )


def test_every_verb(kube: Any, operator: Operator, ns: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_text("id,v\n" + "".join(f"{i},x{i}\n" for i in range(7)))
    apply(
        kube,
        ns,
        table("ev"),
        schema_version("ev-v1", "ev", 1, ID_V_FIELDS),
        ingestion_job("load", "ev", f"{landing.as_uri()}/*.csv", options={"header": True}),
    )
    succeeded(kube, ns, operator, 1)

    out = plugin(kube, "status", "-n", ns).stdout
    assert "Table/ev" in out and "SchemaVersion/ev-v1" in out and "IngestionJob/load" in out
    assert "Succeeded" in out.split("IngestionJob/load", 1)[1].splitlines()[0]

    out = plugin(kube, "runs", "load", "-n", ns).stdout
    assert f"IngestionJob {ns}/load: phase Succeeded, 1 run (1 succeeded" in out
    assert "7 rows written" in out and "Succeeded" in out.splitlines()[-1]

    logs = plugin(kube, "logs", "load", "-n", ns, "--run", "1").stdout
    assert "7 rows written" in logs or '"rowsWritten": 7' in logs, logs
    assert plugin(kube, "logs", "load", "-n", ns, "--run", "5", check=False).returncode == 1

    history = json.loads(plugin(kube, "history", "ev", "-n", ns, "--output", "json").stdout)
    assert [(h["job"], h["rowsAdded"], h["operation"]) for h in history] == [("load", 7, "append")]

    location = Path(
        str(get(kube, ns, "tables", "ev")["status"]["location"]).removeprefix("file://")
    )
    sql = "SELECT count(*) AS n, sum(id) AS s FROM ev"
    out = plugin(kube, "query", "ev", sql, "-n", ns, "--output", "csv").stdout
    con = duckdb.connect()
    con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{location}/**/*.parquet')")
    n, s = con.sql(sql).fetchone() or (None, None)
    assert out == f"n,s\n{n},{s}\n" and n == 7
    # lakeop itself, --table NAMESPACE/NAME from the kubeconfig's current context
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    lakeop = [str(BIN / "lakeop")]
    direct = subprocess.run(
        [*lakeop, "query", "--table", f"{ns}/ev", sql, "--output", "csv"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert direct.stdout == out, direct.stderr
    direct = subprocess.run(
        [*lakeop, "history", "--table", f"{ns}/ev", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert json.loads(direct.stdout) == history, direct.stderr

    (landing / "b.csv").write_text("id,v\n100,y\n")
    assert "re-run requested" in plugin(kube, "rerun", "load", "-n", ns).stdout
    second = succeeded(kube, ns, operator, 2)
    assert second["lastRun"]["rowsWritten"] == 1
    assert "2 runs (2 succeeded" in plugin(kube, "runs", "load", "-n", ns).stdout

    plugin(kube, "suspend", "load", "-n", ns)
    assert get(kube, ns, "ingestionjobs", "load")["spec"]["suspend"] is True
    plugin(kube, "cancel", "load", "-n", ns)
    body = get(kube, ns, "ingestionjobs", "load")
    assert body["spec"]["suspend"] is True
    assert body["metadata"]["annotations"]["lakeop.io/cancel"] == "true"
    plugin(kube, "resume", "load", "-n", ns)
    body = get(kube, ns, "ingestionjobs", "load")
    assert body["spec"]["suspend"] is False
    assert "lakeop.io/cancel" not in (body["metadata"].get("annotations") or {})


def test_context_and_namespace_like_kubectl(kube: Any, operator: Operator, ns: str) -> None:
    apply(kube, ns, table("ctx"), schema_version("ctx-v1", "ctx", 1, ID_V_FIELDS))
    current = kube.kubectl("config", "current-context").stdout.strip()
    assert "Table/ctx" in plugin(kube, "--context", current, "-n", ns, "status").stdout
    wrong = plugin(kube, "status", "-n", ns, "--context", "no-such-context", check=False)
    assert wrong.returncode == 1 and "no-such-context" in wrong.stderr
    # no -n: the context's namespace (none set here), so "default", where nothing is
    assert "Table/ctx" not in plugin(kube, "status").stdout
    missing = plugin(kube, "runs", "nope", "-n", ns, check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
