"""``LAKEOP_LOG_FORMAT=json``: the operator and the Job pods it creates log one JSON shape.

A real ``lakeop run`` subprocess with the variable set: after start-up every operator line is
a JSON object of lakeop's shape (kopf's lines too); the run's Job carries the format in its
container env, and the pod's log (``kubectl logs``, from the node that ran it) holds nothing
but such objects, the engine's own messages included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from operator_e2e import (
    Operator,
    apply,
    ingestion_job,
    lakeop_jobs,
    make_operator,
    pod_logs,
    schema_version,
    table,
    wait_status,
)

from lakeop.core.spec.podtemplate import MAIN_CONTAINER

pytestmark = pytest.mark.e2e

FIELDS = [{"name": "id", "type": "long", "nullable": False}, {"name": "v", "type": "string"}]
SHAPE = {"time", "level", "logger", "message"}


@pytest.fixture(scope="module")
def json_operator(
    kube: Any, crds: None, module_tag: str, lake: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    op = make_operator(
        kube, module_tag, lake, tmp_path_factory.mktemp("operator"), LAKEOP_LOG_FORMAT="json"
    )
    op.start()
    yield op
    op.stop()


def pod_lines(kube: Any, ns: str, job: Any) -> list[str]:
    pods = client.CoreV1Api(kube.api).list_namespaced_pod(
        ns, label_selector=f"job-name={job.metadata.name}"
    )
    return [
        line
        for pod in pods.items
        for line in pod_logs(kube, ns, pod.metadata.name, MAIN_CONTAINER).splitlines()
        if line.strip()
    ]


def test_operator_and_pods_log_one_json_shape(
    kube: Any, json_operator: Operator, ns: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_text("id,v\n" + "".join(f"{i},x{i}\n" for i in range(40)))
    apply(
        kube,
        ns,
        table("events"),
        schema_version("events-v1", "events", 1, FIELDS),
        ingestion_job("load", "events", f"{landing.as_uri()}/*.csv", options={"header": True}),
    )

    def finished(runs: int) -> dict[str, Any]:
        return wait_status(
            kube,
            ns,
            "ingestionjobs",
            "load",
            lambda s: s.get("runs") == runs and s.get("phase") in ("Succeeded", "Failed"),
            what=f"run {runs} finished",
            timeout=120,
            operator=json_operator,
        )

    first = finished(1)
    assert first["phase"] == "Succeeded" and first["lastRun"]["rowsWritten"] == 40, first
    # a re-run with nothing new: the engine says so, in the pod's log
    kube.kubectl("annotate", "lij", "load", "-n", ns, "lakeop.io/rerun=again")
    second = finished(2)
    assert second["phase"] == "Succeeded" and second["lastRun"]["rowsWritten"] == 0, second

    jobs = sorted(lakeop_jobs(kube, ns, "load"), key=lambda j: j.metadata.creation_timestamp)
    assert len(jobs) == 2
    for job in jobs:
        (container,) = [c for c in job.spec.template.spec.containers if c.name == MAIN_CONTAINER]
        assert {e.name: e.value for e in container.env}["LAKEOP_LOG_FORMAT"] == "json"
    lines = pod_lines(kube, ns, jobs[1])
    entries = [json.loads(line) for line in lines]  # nothing but JSON objects
    logged = [e for e in entries if "runId" not in e]  # the summary goes to stdout as JSON
    assert logged and all(e.keys() >= SHAPE for e in logged), lines
    assert any(
        e["logger"] == "lakeop.engine.run" and e["message"] == "nothing new since the last commit"
        for e in logged
    ), lines

    # the operator: from its start-up line on, every line is lakeop's JSON shape
    text = json_operator.log_text().splitlines()
    (start,) = [i for i, line in enumerate(text) if "lakeop operator started" in line]
    after = [json.loads(line) for line in text[start:] if line.strip()]
    assert all(e.keys() >= SHAPE for e in after), text[start:][:5]
    assert any(e["logger"].startswith("kopf") for e in after)  # kopf's lines share it
    refs = [e for e in after if e.get("namespace") == ns and e.get("name") == "load"]
    assert refs and all(e["kind"] for e in refs)
