"""The operator runs on the ServiceAccount and roles from ``manifests/``, not the admin
credential, through the whole flow: a one-off run, the webhook (schema and tenancy
refusals), Events, secrets by reference, and the metrics endpoint scraped afterwards.

The RBAC objects and the ValidatingWebhookConfiguration are rendered by ``kubectl kustomize``
from ``manifests/base``, as installed in a cluster: the operator does not manage the webhook
configuration (``LAKEOP_WEBHOOK_MANAGED=false``) and has no admissionregistration rights.
Only the webhook's ``clientConfig`` is changed, from the in-cluster Service to the operator
process on 127.0.0.1 with a CA made for the test. The operator authenticates with a token
issued for ``lakeop-system/lakeop-operator`` by the TokenRequest API; any call the
ClusterRole lacks shows up as a 403 in its log and fails the test.
"""

from __future__ import annotations

import base64
import csv
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
import yaml
from kubernetes import client
from operator_e2e import (
    ROOT,
    Operator,
    apply,
    ingestion_job,
    make_operator,
    ready,
    schema_version,
    table,
    wait_for,
    wait_status,
)

from lakeop.handlers._certs import write_self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SA_NAMESPACE, SA_NAME = "lakeop-system", "lakeop-operator"
RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
FIELDS = [{"name": "id", "type": "long", "nullable": False}, {"name": "city", "type": "string"}]
ROWS = 40
SECRET_VALUE = "s3cr3t-value"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rendered(tmp: Path) -> list[dict[str, Any]]:
    tree = tmp / "tree"
    shutil.copytree(ROOT / "manifests", tree / "manifests")
    shutil.copytree(ROOT / "crds", tree / "crds")
    (tree / "e2e").mkdir()
    (tree / "e2e" / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../manifests/base"],
            }
        )
    )
    kubectl = ROOT / ".devcluster" / "bin" / "kubectl"
    out = subprocess.run(
        [str(kubectl), "kustomize", str(tree / "e2e")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _token_kubeconfig(kube: Any, tmp: Path) -> Path:
    token = kube.kubectl(
        "create", "token", SA_NAME, "-n", SA_NAMESPACE, "--duration=2h"
    ).stdout.strip()
    admin = yaml.safe_load(Path(kube.kubeconfig).read_text())
    cluster = admin["clusters"][0]
    path = tmp / "operator.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": SA_NAME, "user": {"token": token}}],
                "contexts": [
                    {"name": "operator", "context": {"cluster": cluster["name"], "user": SA_NAME}}
                ],
                "current-context": "operator",
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _rendered(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def operator_kubeconfig(
    kube: Any, crds: None, rendered: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    # Everything the install ships except the workloads, which the operator subprocess
    # stands in for, and the webhook configuration (see static_webhook): RBAC, and kopf's
    # peering CRDs so its discovery sees them.
    wanted = [
        d
        for d in rendered
        if d["kind"] in RBAC_KINDS
        or (d["kind"] == "CustomResourceDefinition" and d["spec"]["group"] == "kopf.dev")
    ]
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wanted))
    # the optional managed-webhook component is not part of an in-cluster install
    for kind in ("clusterrolebinding", "clusterrole"):
        kube.kubectl("delete", kind, "lakeop-operator-webhook", "--ignore-not-found")
    return _token_kubeconfig(kube, tmp_path_factory.mktemp("rbac"))


@pytest.fixture(scope="module")
def webhook_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def webhook_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    certs = tmp_path_factory.mktemp("certs")
    write_self_signed(certs, "127.0.0.1")
    return certs


@pytest.fixture(scope="module")
def static_webhook(
    kube: Any,
    rendered: list[dict[str, Any]],
    webhook_port: int,
    webhook_certs: Path,
    module_tag: str,
) -> Iterator[str]:
    """The manifests' ValidatingWebhookConfiguration, pointed at the local operator."""
    (config,) = [d for d in rendered if d["kind"] == "ValidatingWebhookConfiguration"]
    name = f"lakeop-e2e-{module_tag}"
    config["metadata"] = {"name": name}
    ca = base64.b64encode((webhook_certs / "ca.crt").read_bytes()).decode()
    for hook in config["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{webhook_port}{path}", "caBundle": ca}
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    yield name
    kube.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def least_privilege_operator(  # noqa: PLR0917  (pytest passes fixtures positionally)
    kube: Any,
    operator_kubeconfig: Path,
    static_webhook: str,
    webhook_port: int,
    webhook_certs: Path,
    module_tag: str,
    lake: Path,
    metrics_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    op = make_operator(
        kube,
        module_tag,
        lake,
        tmp_path_factory.mktemp("operator"),
        KUBECONFIG=str(operator_kubeconfig),
        LAKEOP_WEBHOOK_PORT=str(webhook_port),
        LAKEOP_WEBHOOK_CERT_DIR=str(webhook_certs),
        LAKEOP_WEBHOOK_MANAGED="false",
        LAKEOP_METRICS_PORT=str(metrics_port),
        LAKEOP_ALLOWED_LOCATIONS=f"{lake.as_uri()}/{{namespace}}",
    )
    op.start()
    try:
        wait_for(
            lambda: _listening(webhook_port) and _listening(metrics_port),
            timeout=60,
            what="the operator's webhook and metrics ports",
        )
        yield op
    finally:
        op.stop()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def operator(least_privilege_operator: Operator) -> Operator:
    return least_privilege_operator


def _can_i(kube: Any, kubeconfig: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(kube.kubectl_bin), "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.stdout.strip()


def test_the_operator_credential_is_not_admin(kube: Any, operator_kubeconfig: Path) -> None:
    for denied in (
        ("delete", "secrets", "-A"),
        ("get", "configmaps", "-A"),
        ("list", "secrets", "-A"),
        ("create", "pods", "-A"),
        ("delete", "tables.lakeop.io", "-A"),
        ("patch", "validatingwebhookconfigurations/lakeop.io"),
        ("create", "validatingwebhookconfigurations"),
        ("*", "*"),
    ):
        assert _can_i(kube, operator_kubeconfig, *denied) == "no", denied
    for allowed in (
        ("create", "jobs.batch", "-n", "default"),
        ("delete", "jobs.batch", "-n", "default"),
        ("get", "secrets", "-n", "default"),
        ("patch", "tables.lakeop.io/status", "-n", "default"),
    ):
        assert _can_i(kube, operator_kubeconfig, *allowed) == "yes", allowed


def _write_csv(path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "city"])
        for i in range(ROWS):
            writer.writerow([i, ["Berlin", "Paris", "Lima"][i % 3]])


def _assert_job_pod_hardened(kube: Any, ns: str, ingestion_job_name: str) -> None:
    """The run's Job pod is hardened like the operator's own pods, and holds no secret."""
    (job,) = (
        client.BatchV1Api(kube.api)
        .list_namespaced_job(ns, label_selector=f"lakeop.io/ingestionjob={ingestion_job_name}")
        .items
    )
    pod = kube.api.sanitize_for_serialization(job.spec.template.spec)
    assert pod["automountServiceAccountToken"] is False
    scratch = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        ctx = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert ctx["runAsNonRoot"] is True
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        assert {m["name"] for m in container.get("volumeMounts", [])} & scratch
        for env in container.get("env", []):
            assert SECRET_VALUE not in str(env.get("value", ""))


def test_whole_flow_on_least_privilege(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, metrics_port: int
) -> None:
    _write_csv(tmp_path / "cities.csv")
    uri = (tmp_path / "cities.csv").as_uri()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "lake-creds"},
        "stringData": {"AWS_ACCESS_KEY_ID": "not-used", "AWS_SECRET_ACCESS_KEY": SECRET_VALUE},
    }
    apply(
        kube,
        ns,
        secret,
        table("cities", storageSecretRef={"name": "lake-creds"}),
        schema_version("cities-v1", "cities", 1, FIELDS),
        ingestion_job("once", "cities", uri, options={"header": True}),
    )
    once = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "once",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="the one-off run to finish",
        timeout=120,
        operator=operator,
    )
    assert once["phase"] == "Succeeded", once
    assert once["lastRun"]["rowsWritten"] == ROWS
    tbl = wait_status(
        kube,
        ns,
        "tables",
        "cities",
        lambda s: s.get("rows") == ROWS,
        what="table totals",
        operator=operator,
    )
    assert ready(tbl)

    # the data is really there
    dataset = ds.dataset(
        str(operator.lake / ns / "cities"),
        format="parquet",
        partitioning="hive",
        exclude_invalid_files=True,
        ignore_prefixes=["_", "."],
    )
    assert dataset.count_rows() == ROWS

    _assert_job_pod_hardened(kube, ns, "once")

    # the webhook refuses an incompatible version and a location in another tenant's prefix
    breaking = schema_version(
        "cities-v2",
        "cities",
        2,
        [*FIELDS, {"name": "zip", "type": "string", "nullable": False}],
    )
    refused = apply(kube, ns, breaking, check=False)
    assert refused.returncode != 0
    assert "zip" in refused.stderr, refused.stderr
    intruder = table("intruder", location=f"{operator.lake.as_uri()}/someone-else/t")
    refused = apply(kube, ns, intruder, check=False)
    assert refused.returncode != 0
    assert "not allowed" in refused.stderr, refused.stderr

    # Events were posted with the operator's credential; the secret value went nowhere
    events = client.CoreV1Api(kube.api).list_namespaced_event(ns).items
    assert {"JobCreated", "Succeeded"} <= {e.reason for e in events}
    assert not [e for e in events if SECRET_VALUE in (e.message or "")]
    for kind, name in (("tables", "cities"), ("ingestionjobs", "once")):
        assert SECRET_VALUE not in kube.kubectl("get", kind, name, "-n", ns, "-o", "yaml").stdout
    log = operator.log_path.read_text(errors="replace")
    assert SECRET_VALUE not in log
    assert "Reconfiguring the validating webhook" not in log  # left to the manifests
    forbidden = [line for line in log.splitlines() if " 403" in line or "Forbidden" in line]
    assert not forbidden, "\n".join(forbidden[:20])

    # metrics, scraped after the flow
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    labels = f'namespace="{ns}",table="cities"'

    def sample(name: str) -> float:
        for line in text.splitlines():
            if line.startswith(f"{name}{{{labels}}} "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name}{{{labels}}} not in /metrics:\n{text}")

    assert sample("lakeop_runs_started_total") == 1
    assert sample("lakeop_runs_succeeded_total") == 1
    assert sample("lakeop_rows_written_total") == ROWS
    assert sample("lakeop_bytes_written_total") > 0
    assert sample("lakeop_run_duration_seconds_count") == 1
    # the run was admitted at once, so nothing of this namespace waits
    assert f'lakeop_queue_length{{namespace="{ns}"}} 0.0' in text


def test_scheduled_run_on_least_privilege(
    kube: Any, operator: Operator, ns: str, tmp_path: Path
) -> None:
    _write_csv(tmp_path / "cities.csv")
    uri = (tmp_path / "cities.csv").as_uri()
    apply(
        kube,
        ns,
        table("cities"),
        schema_version("cities-v1", "cities", 1, FIELDS),
        ingestion_job("minutely", "cities", uri, options={"header": True}, schedule="* * * * *"),
    )
    scheduled = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "minutely",
        lambda s: (s.get("succeededRuns") or 0) >= 1,
        what="a scheduled run to succeed",
        timeout=100,
        operator=operator,
    )
    assert scheduled["lastRun"]["rowsWritten"] == ROWS
    log = operator.log_path.read_text(errors="replace")
    assert "Forbidden" not in log
