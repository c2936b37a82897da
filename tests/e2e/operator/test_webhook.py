"""The validating webhook, served by the operator with its own CA, refuses bad objects at
``kubectl apply`` with the violation list."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from operator_e2e import (
    Operator,
    apply,
    get,
    ingestion_job,
    make_operator,
    schema_version,
    table,
    wait_for,
    wait_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIELDS = [{"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "string"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def webhook_operator(
    kube: Any, crds: None, module_tag: str, lake: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    config_name = f"e2e-{uuid.uuid4().hex[:6]}.lakeop.io"  # webhook names: <handler>.<this>
    op = make_operator(
        kube,
        module_tag,
        lake,
        tmp_path_factory.mktemp("operator"),
        LAKEOP_WEBHOOK_PORT=str(_free_port()),
        LAKEOP_WEBHOOK_CONFIGURATION=config_name,
        LAKEOP_ALLOWED_LOCATIONS=f"{lake.as_uri()}/{{namespace}}",
    )
    admission = client.AdmissionregistrationV1Api(kube.api)
    op.start()
    try:
        wait_for(
            lambda: admission.read_validating_webhook_configuration(config_name),
            timeout=60,
            what="the ValidatingWebhookConfiguration",
        )
        yield op
    finally:
        op.stop()
        try:
            admission.delete_validating_webhook_configuration(config_name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(scope="module")
def operator(webhook_operator: Operator) -> Operator:
    return webhook_operator


def test_kubectl_apply_refuses_incompatible_and_duplicate_versions(
    kube: Any, operator: Operator, ns: str
) -> None:
    apply(kube, ns, table("hooked"), schema_version("hooked-v1", "hooked", 1, FIELDS))
    wait_status(
        kube,
        ns,
        "schemaversions",
        "hooked-v1",
        lambda s: s.get("phase") == "Accepted",
        what="v1 Accepted",
        operator=operator,
    )
    narrowed = [
        {"name": "id", "type": "int", "nullable": False},
        {"name": "extra", "type": "string", "nullable": False},
    ]
    refused = apply(kube, ns, schema_version("hooked-v2", "hooked", 2, narrowed), check=False)
    assert refused.returncode != 0, refused.stdout
    assert "denied the request" in refused.stderr
    assert "incompatible under BACKWARD" in refused.stderr
    assert "id: " in refused.stderr
    assert "extra: " in refused.stderr
    duplicate = apply(kube, ns, schema_version("hooked-one", "hooked", 1, FIELDS), check=False)
    assert duplicate.returncode != 0
    assert "already taken by SchemaVersion 'hooked-v1'" in duplicate.stderr
    fine = apply(
        kube,
        ns,
        schema_version("hooked-v2", "hooked", 2, [*FIELDS, {"name": "note", "type": "string"}]),
    )
    assert "created" in fine.stdout


def test_table_outside_allowed_locations_is_refused(kube: Any, operator: Operator, ns: str) -> None:
    other = operator.lake / "someone-else" / "t"
    refused = apply(kube, ns, table("stray", location=other.as_uri()), check=False)
    assert refused.returncode != 0
    assert "is not allowed for namespace" in refused.stderr
    inside = apply(kube, ns, table("mine", location=(operator.lake / ns / "mine").as_uri()))
    assert "created" in inside.stdout


def test_pod_template_taking_over_the_run_is_refused(
    kube: Any, operator: Operator, ns: str
) -> None:
    """The API server keeps the template's unknown fields for the webhook, which refuses them."""
    container: dict[str, Any] = {"name": "ingest", "command": ["sh", "-c", "true"]}
    job = ingestion_job("hooked-job", "hooked", "file:///data/a.csv")
    job["spec"]["podTemplate"] = {"spec": {"containers": [container]}}
    refused = apply(kube, ns, job, check=False)
    assert refused.returncode != 0, refused.stdout
    assert "denied the request" in refused.stderr
    assert "spec.podTemplate.spec.containers[0].command: cannot be set" in refused.stderr
    container.pop("command")
    container["env"] = [{"name": "LAKEOP_PLAN", "value": "{}"}]
    refused = apply(kube, ns, job, check=False)
    assert refused.returncode != 0, refused.stdout
    assert "spec.podTemplate.spec.containers[0].env[0].name: lakeop sets" in refused.stderr
    container["env"] = [{"name": "TZ", "value": "UTC"}]
    assert "created" in apply(kube, ns, job).stdout
    stored = get(kube, ns, "ingestionjobs", "hooked-job")
    assert stored["spec"]["podTemplate"]["spec"]["containers"][0]["env"] == container["env"]
