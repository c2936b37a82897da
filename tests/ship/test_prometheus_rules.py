"""The monitoring manifests under the Prometheus Operator: alerts tested by promtool, dashboard
queries that promtool parses and that name only series lakeop exports, honorLabels on.

``promtool`` comes from Debian's ``prometheus`` package, which ``devcluster/packages.sh``
installs (``make cluster-bin``). The PrometheusRule's ``spec.groups`` is exactly a Prometheus
rule file, so the test writes it out and runs ``promtool test rules`` on the synthetic series in
``data/prometheus/lakeop-rules.test.yaml``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakeop.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
RULE_TESTS = Path(__file__).parent / "data" / "prometheus" / "lakeop-rules.test.yaml"
KUBECTL = ROOT / ".devcluster" / "bin" / "kubectl"
# Grafana's variables, as a dashboard would expand them
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$namespace": "analytics|batch", "$table": ".*"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: devcluster/packages.sh installs Debian's prometheus"
    return found


def rule_groups() -> list[dict[str, Any]]:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def check(promtool: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_servicemonitor_honours_the_metrics_own_labels() -> None:
    monitor = yaml.safe_load((MONITORING / "servicemonitor.yaml").read_text())
    assert [e.get("honorLabels") for e in monitor["spec"]["endpoints"]] == [True]


def test_the_alerts_pass_promtools_unit_tests(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    assert "SUCCESS: 5 rules found" in check(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert "SUCCESS" in check(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)


def test_every_alert_is_seen_firing() -> None:
    """promtool fails on any alert a case does not list, so the other series are shown quiet."""
    alerts = {r["alert"] for g in rule_groups() for r in g["rules"]}
    assert alerts == {
        "LakeopRunFailing",
        "LakeopNoRecentSuccess",
        "LakeopQueueBackedUp",
        "LakeopRejectedRecordsHigh",
        "LakeopReconcileErrors",
    }
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert firing == alerts


def dashboard_queries() -> Iterator[tuple[str, str]]:
    board = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for panel in board["panels"]:
        for target in panel["targets"]:
            yield f"{panel['title']} {target['refId']}", target["expr"]


def expand(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def exported_series() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def test_the_dashboards_queries_parse_and_name_only_lakeops_series(
    promtool: str, tmp_path: Path
) -> None:
    queries = list(dashboard_queries())
    assert len(queries) >= 10
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expand(expr)}
        for i, (_, expr) in enumerate(queries)
    ]
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    out = check(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out
    known = exported_series()
    assert "lakeop_last_success_timestamp_seconds" in known
    for where, expr in queries:
        for name in re.findall(r"\blakeop_[a-z_]+", expr):
            assert name in known, f"{where}: {name} is not a series lakeop exports"


def test_the_rules_name_only_lakeops_series() -> None:
    known = exported_series()
    for group in rule_groups():
        for rule in group["rules"]:
            for name in re.findall(r"\blakeop_[a-z_]+", rule["expr"]):
                assert name in known, f"{rule['alert']}: {name} is not a series lakeop exports"


def test_kustomize_ships_the_rules_and_the_dashboard() -> None:
    assert KUBECTL.exists(), f"{KUBECTL} is missing: `make cluster-bin` builds it"
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(MONITORING)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(out)}
    assert set(docs) == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    board = docs["ConfigMap"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["lakeop.json"])["uid"] == "lakeop"
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"lakeop-system"}
