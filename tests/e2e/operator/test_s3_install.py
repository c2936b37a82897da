"""The S3/MinIO install component end to end: the operator configured from
``manifests/components/storage-s3`` writes a run's rows to MinIO, read back with DuckDB.

The component is rendered as a user's overlay would render it (the cert-manager overlay plus
the component); the operator then runs with exactly what the Deployment would give it: the
generated ConfigMap's ``LAKEOP_*`` values (default location ``s3://lake``, each namespace
fenced to its own prefix) and the ``lakeop-storage`` Secret's keys, filled in from the
component's example env file with the suite's MinIO (tests/engine/engine_services.py). The
Table names a Secret of its namespace with the same keys in ``spec.storageSecretRef``, as the
component's comments tell the user, so the Job pod gets the credentials too.

MinIO listens on 127.0.0.1: the run's Job pod runs on the devcluster's process node, which
shares the host's network (the real node's pods, behind a bridge, are not used here).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import yaml
from operator_e2e import (
    ROOT,
    Operator,
    apply,
    ingestion_job,
    make_operator,
    schema_version,
    table,
    wait_status,
)

from lakeop.duckext import extension_path

# Job pods on the process node: they share the host's loopback, where this test's MinIO listens
pytestmark = [pytest.mark.e2e, pytest.mark.process_node]

COMPONENT = ROOT / "manifests" / "components" / "storage-s3"
ROWS = 250


def _services() -> Any:
    services = sys.modules.get("engine_services")
    if services is None:
        path = ROOT / "tests" / "engine" / "engine_services.py"
        spec = importlib.util.spec_from_file_location("engine_services", path)
        assert spec is not None and spec.loader is not None
        services = sys.modules["engine_services"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(services)
    return services


@pytest.fixture(scope="module")
def minio_server() -> Iterator[Any]:
    with _services().minio() as server:
        boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
        ).create_bucket(Bucket="lake")
        yield server


def render_component(kube: Any, tmp: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of an overlay: ../cert-manager plus the storage-s3 component."""
    shutil.copytree(ROOT / "manifests", tmp / "manifests")
    shutil.copytree(ROOT / "crds", tmp / "crds")
    mine = tmp / "manifests" / "overlays" / "mine"
    mine.mkdir()
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../cert-manager"],
        "components": ["../../components/storage-s3"],
    }
    (mine / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    out = kube.kubectl("kustomize", str(mine))
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def storage_secret(server: Any) -> dict[str, str]:
    """The example env file's keys, filled in as the install docs say (for this MinIO)."""
    values = {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
    }
    keys = [
        line.split("=", 1)[0]
        for line in (COMPONENT / "storage-secret.example.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    assert sorted(keys) == sorted(values)
    return {k: values[k] for k in keys}


def operator_env(docs: list[dict[str, Any]], secret: dict[str, str]) -> dict[str, str]:
    """What the rendered Deployment's operator container gets: its ConfigMap and Secret."""
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"
    ]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            (config,) = [
                d
                for d in docs
                if d["kind"] == "ConfigMap"
                and d["metadata"]["name"] == source["configMapRef"]["name"]
            ]
            env.update(config["data"])
        elif source.get("secretRef", {}).get("name") == "lakeop-storage":
            env.update(secret)
    assert env["LAKEOP_DEFAULT_LOCATION"] == "s3://lake"
    assert set(secret) <= set(env)
    return env


@pytest.fixture(scope="module")
def operator(
    kube: Any,
    crds: None,
    module_tag: str,
    minio_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    docs = render_component(kube, tmp_path_factory.mktemp("render"))
    env = operator_env(docs, storage_secret(minio_server))  # its default location wins
    scratch = tmp_path_factory.mktemp("operator")
    op = make_operator(kube, module_tag, scratch / "unused", scratch, **env)
    op.start()
    yield op
    op.stop()


def test_a_run_lands_in_minio_under_the_components_default_location(
    kube: Any, operator: Operator, ns: str, tmp_path: Path, minio_server: Any
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "lake-s3"},
        "stringData": storage_secret(minio_server),
    }
    fields = [{"name": "id", "type": "long"}, {"name": "v", "type": "string"}]
    apply(
        kube,
        ns,
        secret,
        table("events", storageSecretRef={"name": "lake-s3"}),
        schema_version("events-v1", "events", 1, fields),
    )
    tstatus = wait_status(
        kube,
        ns,
        "tables",
        "events",
        lambda s: s.get("currentSchemaVersion") == 1 and bool(s.get("location")),
        what="ready in s3",
        operator=operator,
        timeout=90,
    )
    location = str(tstatus["location"]).rstrip("/")
    assert location == f"s3://lake/{ns}/events"  # the component's default, fenced per namespace
    source = tmp_path / "events.csv"
    source.write_text("id,v\n" + "".join(f"{i},row {i}\n" for i in range(ROWS)))
    apply(kube, ns, ingestion_job("load", "events", source.as_uri(), options={"header": True}))
    status = wait_status(
        kube,
        ns,
        "ingestionjobs",
        "load",
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
        what="the run ended",
        timeout=240,
        operator=operator,
    )
    assert status["phase"] == "Succeeded", status
    assert status["lastRun"]["rowsWritten"] == ROWS

    con = duckdb.connect()
    con.execute(f"LOAD '{extension_path('httpfs')}'")
    con.execute(
        "CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?, URL_STYLE 'path', "
        "USE_SSL false, REGION 'us-east-1')",
        [
            minio_server.access_key,
            minio_server.secret_key,
            minio_server.endpoint.removeprefix("http://"),
        ],
    )
    rows = con.execute(
        "select count(*), count(distinct id), min(id), max(id) "
        f"from read_parquet('{location}/**/*.parquet')"
    ).fetchall()
    assert rows == [(ROWS, ROWS, 0, ROWS - 1)]
