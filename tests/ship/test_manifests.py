"""The install manifests render with kustomize, grant least privilege and harden every pod.

``kubectl kustomize`` (the devcluster's kubectl, built by ``make cluster-bin``) renders each
overlay; the checks then read the rendered objects. The RBAC checks work both ways: the
ClusterRole must equal the table below, and every Kubernetes API call found in the operator's
code must be covered by it, so adding a call without a rule (or a rule without a call) fails.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".devcluster" / "bin" / "kubectl"
NAMESPACE = "lakeop-system"
LAKEOP_KINDS = ("tables", "schemaversions", "ingestionjobs")

Rule = tuple[str, str, str, str]  # apiGroup, resource, verb, resourceName ("" = any)

# The operator's whole permission set; docs/security.md says why each line is there.
EXPECTED_RULES: set[Rule] = {
    *{("lakeop.io", k, v, "") for k in LAKEOP_KINDS for v in ("get", "list", "watch", "patch")},
    *{("lakeop.io", f"{k}/status", "patch", "") for k in LAKEOP_KINDS},
    ("lakeop.io", "ingestionjobs/finalizers", "update", ""),
    *{("batch", "jobs", v, "") for v in ("create", "get", "list", "watch", "delete")},
    ("", "pods", "list", ""),
    ("", "pods/log", "get", ""),
    ("", "secrets", "get", ""),
    ("", "events", "create", ""),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list", ""),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch", ""),
    ("", "namespaces", "list", ""),
    ("", "namespaces", "watch", ""),
    ("kopf.dev", "clusterkopfpeerings", "list", ""),
    ("kopf.dev", "clusterkopfpeerings", "watch", ""),
    ("kopf.dev", "clusterkopfpeerings", "get", "lakeop"),
    ("kopf.dev", "clusterkopfpeerings", "patch", "lakeop"),
}

# kubernetes_asyncio method -> the (apiGroup, resource, verb) it needs. A call missing here
# fails test_every_api_call_in_the_code_is_allowed: add it here and to rbac.yaml.
CLIENT_CALLS: dict[str, list[tuple[str, str, str]]] = {
    "get_namespaced_custom_object": [("lakeop.io", k, "get") for k in LAKEOP_KINDS],
    "list_namespaced_custom_object": [("lakeop.io", k, "list") for k in LAKEOP_KINDS],
    "list_cluster_custom_object": [("lakeop.io", k, "list") for k in LAKEOP_KINDS],
    "patch_namespaced_custom_object": [("lakeop.io", k, "patch") for k in LAKEOP_KINDS],
    "patch_namespaced_custom_object_status": [
        ("lakeop.io", f"{k}/status", "patch") for k in LAKEOP_KINDS
    ],
    "get_namespaced_custom_object_status": [
        ("lakeop.io", f"{k}/status", "get") for k in LAKEOP_KINDS
    ],
    "create_namespaced_job": [("batch", "jobs", "create")],
    "read_namespaced_job": [("batch", "jobs", "get")],
    "list_namespaced_job": [("batch", "jobs", "list")],
    "list_job_for_all_namespaces": [("batch", "jobs", "list")],
    "delete_namespaced_job": [("batch", "jobs", "delete")],
    "patch_namespaced_job": [("batch", "jobs", "patch")],
    "list_namespaced_pod": [("", "pods", "list")],
    "read_namespaced_pod": [("", "pods", "get")],
    "read_namespaced_pod_log": [("", "pods/log", "get")],
    "read_namespaced_secret": [("", "secrets", "get")],
    "create_namespaced_event": [("", "events", "create")],
    "patch_namespaced_event": [("", "events", "patch")],
}


def kubectl() -> Path:
    assert KUBECTL.exists(), f"{KUBECTL} is missing: `make cluster-bin` builds it"
    return KUBECTL


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def self_signed_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of manifests/ and crds/ with certificates made by the overlay's own script."""
    tree = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "manifests", tree / "manifests")
    shutil.copytree(ROOT / "crds", tree / "crds")
    overlay = tree / "manifests" / "overlays" / "self-signed"
    subprocess.run(
        ["bash", str(overlay / "generate-certs.sh")], check=True, capture_output=True, timeout=60
    )
    yield overlay


@pytest.fixture(scope="module")
def overlays(self_signed_tree: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        "self-signed": render(self_signed_tree),
        "cert-manager": render(ROOT / "manifests" / "overlays" / "cert-manager"),
    }


OVERLAYS = ["self-signed", "cert-manager"]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def test_base_and_monitoring_render() -> None:
    base = render(ROOT / "manifests" / "base")
    assert one(base, "Deployment")["metadata"]["namespace"] == NAMESPACE
    monitor = one(render(ROOT / "manifests" / "monitoring"), "ServiceMonitor")
    service = one(base, "Service", "lakeop-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_holds_every_piece(overlays: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = overlays[overlay]
    crds = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert crds == {
        "tables.lakeop.io",
        "schemaversions.lakeop.io",
        "ingestionjobs.lakeop.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    for kind, name in [
        ("Namespace", NAMESPACE),
        ("ServiceAccount", "lakeop-operator"),
        ("ClusterRole", "lakeop-operator"),
        ("ClusterRoleBinding", "lakeop-operator"),
        ("Deployment", "lakeop-operator"),
        ("Service", "lakeop-webhook"),
        ("Service", "lakeop-metrics"),
        ("ValidatingWebhookConfiguration", "lakeop.io"),
        ("PodDisruptionBudget", "lakeop-operator"),
        ("ClusterKopfPeering", "lakeop"),
    ]:
        one(docs, kind, name)
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
        "ClusterKopfPeering",
    }
    for doc in docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]


def rules_of(role: dict[str, Any]) -> set[Rule]:
    out: set[Rule] = set()
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [""]:
                        out.add((group, resource, verb, name))
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_is_exactly_the_least_privilege_table(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = overlays[overlay]
    roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
    granted = set().union(*(rules_of(r) for r in roles))
    assert not [r for r in granted if "*" in "".join(r)], "wildcards in RBAC"
    assert granted == EXPECTED_RULES, (
        f"extra: {sorted(granted - EXPECTED_RULES)}\nmissing: {sorted(EXPECTED_RULES - granted)}"
    )
    binding = one(docs, "ClusterRoleBinding", "lakeop-operator")
    assert binding["roleRef"]["name"] == "lakeop-operator"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "lakeop-operator", "namespace": NAMESPACE}
    ]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "lakeop-operator"
    assert pod["automountServiceAccountToken"] is True


def operator_sources() -> str:
    package = ROOT / "operator" / "lakeop"
    return "\n".join(p.read_text() for p in sorted(package.rglob("*.py")))


def test_every_api_call_in_the_code_is_allowed() -> None:
    source = operator_sources()
    allowed = {(g, r, v) for g, r, v, name in EXPECTED_RULES if not name}
    calls = set(
        re.findall(
            r"\.((?:create|read|get|list|watch|patch|replace|delete)_\w*"
            r"(?:namespaced|for_all_namespaces|custom_object|cluster)\w*)\(",
            source,
        )
    )
    assert calls, "no Kubernetes API calls found: has lakeop.kube.client moved?"
    unknown = sorted(calls - CLIENT_CALLS.keys())
    assert not unknown, f"API calls without an RBAC mapping in this test: {unknown}"
    for call in sorted(calls):
        needs = CLIENT_CALLS[call]
        missing = [n for n in needs if n not in allowed]
        assert not missing, f"{call} needs {missing}: add them to manifests/base/rbac.yaml"
    # kopf watches whatever the handlers are registered for (list + watch; patch for state).
    for group, resource in re.findall(
        r"kopf\.(?:on\.\w+|timer|daemon|index)\(\s*\"([\w.]*)\",\s*\"\w+\",\s*\"(\w+)\"", source
    ):
        for verb in ("list", "watch"):
            assert (group, resource, verb) in allowed, (group, resource, verb)


def test_webhook_paths_match_the_handler_ids(overlays: dict[str, list[dict[str, Any]]]) -> None:
    handler_ids = set(
        re.findall(
            r"kopf\.on\.validate\([^)]*id=\"([\w-]+)\"",
            (ROOT / "operator" / "lakeop" / "handlers" / "webhook.py").read_text(),
        )
    )
    assert handler_ids, "no kopf.on.validate(..., id=...) handlers found"
    for docs in overlays.values():
        hooks = one(docs, "ValidatingWebhookConfiguration")["webhooks"]
        paths = {h["clientConfig"]["service"]["path"].lstrip("/") for h in hooks}
        assert paths == handler_ids
        service = one(docs, "Service", "lakeop-webhook")
        for hook in hooks:
            ref = hook["clientConfig"]["service"]
            assert (ref["name"], ref["namespace"]) == ("lakeop-webhook", NAMESPACE)
            assert ref["port"] == service["spec"]["ports"][0]["port"]
            assert hook["failurePolicy"] == "Ignore"
            assert hook["sideEffects"] == "None"


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_hardened(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    workloads = [d for d in overlays[overlay] if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert workloads
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        pod_ctx = pod.get("securityContext", {})
        mounts_tmp = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in containers(pod):
            ctx = {**pod_ctx, **container.get("securityContext", {})}
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert ctx.get("runAsNonRoot") is True, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("privileged", False) is False, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert "add" not in ctx.get("capabilities", {}), where
            assert ctx.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert container["resources"]["requests"].keys() >= {"cpu", "memory"}, where
            assert "memory" in container["resources"]["limits"], where
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and tmp[0]["name"] in mounts_tmp, f"{where}: no emptyDir at /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_deployment_peering_probe_and_services(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = overlays[overlay]
    deployment = one(docs, "Deployment", "lakeop-operator")
    assert deployment["spec"]["replicas"] == 2
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    (container,) = template["spec"]["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]
    args = script.split()
    assert args[:4] == ["exec", "lakeop", "run", "--all-namespaces"]
    assert "--peering=lakeop" in args
    assert "--liveness=http://0.0.0.0:8080/healthz" in args
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert ports[probe["port"]] == 8080
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LAKEOP_JOB_IMAGE"] == container["image"] == "lakeop:0.1.0"
    assert "POD_ID" in env
    assert ports["webhook"] == int(str(env["LAKEOP_WEBHOOK_PORT"]))
    assert ports["metrics"] == int(str(env["LAKEOP_METRICS_PORT"]))
    for service in [d for d in docs if d["kind"] == "Service"]:
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] == 1
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_replicas_get_distinct_peering_priorities(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    """Run the container's shell line (with lakeop replaced by echo) for two pod names."""
    (container,) = one(overlays["cert-manager"], "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    script = container["args"][0].replace("exec lakeop ", "exec echo ", 1)
    priorities = []
    for pod in ("lakeop-operator-7d9f8c6b5-abcde", "lakeop-operator-7d9f8c6b5-xyz12"):
        out = subprocess.run(
            [*container["command"], script],
            env={"POD_ID": pod, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out[:3] == ["run", "--all-namespaces", "--peering=lakeop"]
        (priority,) = [a.split("=", 1)[1] for a in out if a.startswith("--priority=")]
        assert 1 <= int(priority) <= 1_000_000
        priorities.append(int(priority))
    assert priorities[0] != priorities[1]


def tls_secret_name(docs: list[dict[str, Any]]) -> str:
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    (tls,) = [v for v in volumes if "secret" in v]
    return str(tls["secret"]["secretName"])


def test_self_signed_overlay_injects_its_ca(
    overlays: dict[str, list[dict[str, Any]]], self_signed_tree: Path
) -> None:
    docs = overlays["self-signed"]
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"] == tls_secret_name(docs)
    assert secret["metadata"]["name"].startswith("lakeop-webhook-tls-")
    assert secret["type"] == "kubernetes.io/tls"
    ca = (self_signed_tree / "ca.crt").read_bytes()
    assert base64.b64decode(secret["data"]["ca.crt"]) == ca
    for hook in one(docs, "ValidatingWebhookConfiguration")["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca
    # the serving certificate is valid for the Service name the API server calls
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(self_signed_tree / "tls.crt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:lakeop-webhook.lakeop-system.svc," in text
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.crt", "tls.crt"],
        cwd=self_signed_tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_cert_manager_overlay_wires_certificate_to_pods_and_webhook(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    docs = overlays["cert-manager"]
    assert not [d for d in docs if d["kind"] == "Secret"], "cert-manager makes the Secret"
    certificate = one(docs, "Certificate", "lakeop-webhook")
    issuer = one(docs, "Issuer")
    assert certificate["spec"]["issuerRef"] == {
        "kind": "Issuer",
        "name": issuer["metadata"]["name"],
    }
    assert certificate["spec"]["secretName"] == tls_secret_name(docs)
    assert "lakeop-webhook.lakeop-system.svc" in certificate["spec"]["dnsNames"]
    webhook = one(docs, "ValidatingWebhookConfiguration")
    annotation = webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/lakeop-webhook"


def test_managed_webhook_component_grants_only_its_own_configuration(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    shutil.copytree(ROOT / "crds", tmp_path / "crds")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../manifests/base]\n"
        "components: [../manifests/components/operator-managed-webhook]\n"
    )
    docs = render(tmp_path / "x")
    role = one(docs, "ClusterRole", "lakeop-operator-webhook")
    kinds = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
    group = "admissionregistration.k8s.io"
    assert rules_of(role) == {
        *{(group, k, "create", "") for k in kinds},
        *{(group, k, "patch", "lakeop.io") for k in kinds},
    }
    binding = one(docs, "ClusterRoleBinding", "lakeop-operator-webhook")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "lakeop-operator", "namespace": NAMESPACE}
    ]
