"""Helpers for the operator's end-to-end tests: an operator subprocess and manifest builders.

Where the Job pods run
----------------------
By default the Job pods of every test run in real containers on the devcluster's real node,
``kubenode`` (kubelet + containerd, the project's image ``lakeop:<version>`` imported by
``make cluster-up``). The module's operator (``conftest.operator``, built by
:func:`make_operator` with :meth:`JobNode.operator_env`) is configured as a user's would be:

- ``LAKEOP_JOB_IMAGE``: the local image;
- ``LAKEOP_JOB_NODE_SELECTOR`` / ``LAKEOP_JOB_TOLERATIONS``: kubenode and its taint, for every
  Job pod (no test sets a template for that);
- ``LAKEOP_LAKE_VOLUME`` / ``LAKEOP_LAKE_MOUNT_PATH``: one hostPath folder, the session's
  :attr:`JobNode.shared` root, mounted at its own path in every Job pod. The module's ``lake``
  and every test's ``tmp_path`` (overridden in ``conftest.py``) live under it, so a source a
  test writes to ``tmp_path`` and a table the operator makes in the lake are where the pod
  looks for them. The operator runs with umask 0 so the folders it makes are writable by the
  pods' uid (65532); the tests' own files are readable by it.
- Services a pod reaches (PostgreSQL: ``postgres_url``; MinIO: ``minio_server``) listen on
  the pod bridge's gateway (:attr:`JobNode.host`) as well as on loopback.

A module that must keep its Job pods on the process node (``devnode``, pods as host processes)
says so with ``pytestmark = [pytest.mark.e2e, pytest.mark.process_node]`` and a reason in
its docstring; ``DEVCLUSTER_NODE=process`` (a cluster without kubenode) or
``LAKEOP_E2E_NODE=process`` (this session only) puts every module there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from held_source import HeldSource  # noqa: F401 (the tests import it from here)
from kubernetes import client

from lakeop import __version__
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
LAKEOP = Path(sys.executable).parent / "lakeop"

#: the devcluster's real node, the taint that keeps other pods off it, the Job pods' uid
REAL_NODE = "kubenode"
REAL_NODE_TAINT = "devcluster.lakeop.io/real-node"
POD_UID = 65532  # lakeop.core.runs.jobs.NON_ROOT_UID
IMAGE = f"lakeop:{__version__}"  # make image / cluster-up build and import it


class Cluster(Protocol):
    """What the tests use of the devcluster's ``kube`` fixture."""

    api: Any

    def env(self) -> dict[str, str]: ...

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True)
class JobNode:
    """Where a module's Job pods run: ``kubenode`` (``real``) or the process node."""

    real: bool
    #: the host's address as the pods see it (the bridge gateway); 127.0.0.1 on the process node
    host: str = "127.0.0.1"
    #: the folder mounted at its own path in every Job pod (the lake and tests' tmp_paths)
    shared: Path | None = None

    @property
    def name(self) -> str:
        return REAL_NODE if self.real else "devnode"

    def operator_env(self) -> dict[str, str]:
        """The operator's settings that send its Job pods to this node."""
        if not self.real or self.shared is None:
            return {}
        volume = {"hostPath": {"path": str(self.shared), "type": "Directory"}}
        return {
            "LAKEOP_JOB_IMAGE": IMAGE,
            "LAKEOP_JOB_NODE_SELECTOR": json.dumps({"kubernetes.io/hostname": REAL_NODE}),
            "LAKEOP_JOB_TOLERATIONS": json.dumps([toleration()]),
            "LAKEOP_LAKE_VOLUME": json.dumps(volume),
            "LAKEOP_LAKE_MOUNT_PATH": str(self.shared),
        }


def toleration() -> dict[str, str]:
    """The toleration of kubenode's taint."""
    return {"key": REAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}


def on_the_real_node() -> dict[str, Any]:
    """A ``spec.podTemplate`` that sends the pod to kubenode by itself."""
    return {
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": REAL_NODE},
            "tolerations": [toleration()],
        }
    }


def hand_over(path: Path) -> None:
    """Give ``path`` and everything under it to the Job pods' uid."""
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, POD_UID, POD_UID)
    os.chown(path, POD_UID, POD_UID)


def pod_logs(kube: Cluster, namespace: str, pod: str, container: str) -> str:
    """A container's output, from the kubelet that ran it (either node)."""
    out = kube.kubectl("logs", "-n", namespace, pod, "-c", container, check=False)
    return out.stdout


@dataclass
class Operator:
    """A ``lakeop run`` subprocess; ``start``/``kill``/``stop``, logs in ``log_path``."""

    kube: Cluster
    pattern: str
    lake: Path
    log_path: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    run_args: tuple[str, ...] = ("--standalone",)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **self.kube.env(),
            "LAKEOP_DEFAULT_LOCATION": self.lake.as_uri(),
            "LAKEOP_RESYNC_SECONDS": "5",
            **self.env_extra,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(LAKEOP), "run", *self.run_args, "--namespace", self.pattern],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            umask=0,  # the folders it makes in the lake: writable by the Job pods' uid
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers, no final patches — a crash."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


#: the running module's JobNode, set by conftest's autouse ``job_node`` fixture
_MODULE_NODE: list[JobNode] = [JobNode(real=False)]


def module_node() -> JobNode:
    """Where the running module's Job pods go (conftest's ``job_node``)."""
    return _MODULE_NODE[-1]


def set_module_node(node: JobNode | None) -> None:
    """``node`` for the module about to run; None when it is done."""
    if node is None:
        del _MODULE_NODE[1:]
    else:
        _MODULE_NODE.append(node)


def make_operator(
    kube: Cluster,
    module_tag: str,
    lake: Path,
    tmp: Path,
    node: JobNode | None = None,
    **env: str,
) -> Operator:
    """A module's operator: the settings of ``node`` (by default the module's, see the
    module docstring), then ``env`` (``""`` unsets one of them)."""
    settings = {**(node or module_node()).operator_env(), **env}
    return Operator(kube, f"{module_tag}-*", lake, tmp / "operator.log", settings)


# -- manifests -----------------------------------------------------------------------------


def table(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "Table",
        "metadata": {"name": name},
        "spec": spec,
    }


def schema_version(
    name: str, table_ref: str, version: int, fields: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "SchemaVersion",
        "metadata": {"name": name},
        "spec": {"tableRef": table_ref, "version": version, "fields": fields},
    }


def ingestion_job(
    name: str,
    table_ref: str,
    uri: str,
    fmt: str = "csv",
    *,
    options: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    source: dict[str, Any] = {"uri": uri, "format": fmt}
    if options:
        source["options"] = options
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": name},
        "spec": {"tableRef": table_ref, "source": source, **spec},
    }


def apply(
    kube: Cluster, namespace: str, *objs: dict[str, Any], check: bool = True
) -> subprocess.CompletedProcess[str]:
    text = yaml.safe_dump_all(list(objs))
    return kube.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=check)


def get(kube: Cluster, namespace: str, plural: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(kube.api).get_namespaced_custom_object(
        "lakeop.io", "v1alpha1", namespace, plural, name
    )
    return dict(obj)


def status_of(kube: Cluster, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return dict(get(kube, namespace, plural, name).get("status") or {})


def wait_status(
    kube: Cluster,
    namespace: str,
    plural: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    what: str,
    timeout: float = 60,
    operator: Operator | None = None,
) -> dict[str, Any]:
    """Wait until the object's status satisfies ``predicate``; show the operator log if not."""
    try:
        return wait_for(
            lambda: (s := status_of(kube, namespace, plural, name)) and predicate(s) and s,
            timeout=timeout,
            what=f"{plural}/{name}: {what}",
        )
    except AssertionError as exc:
        tail = operator.log_tail() if operator is not None else ""
        last = json.dumps(status_of(kube, namespace, plural, name), indent=1, default=str)
        raise AssertionError(f"{exc}\nlast status: {last}\noperator log:\n{tail}") from None


def ready(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def lakeop_jobs(kube: Cluster, namespace: str, ij: str) -> list[Any]:
    jobs = client.BatchV1Api(kube.api).list_namespaced_job(
        namespace, label_selector=f"lakeop.io/ingestionjob={ij}"
    )
    return list(jobs.items)


def settle(seconds: float) -> None:
    time.sleep(seconds)


# -- common setups -------------------------------------------------------------------------

#: the two-column schema most of these tests load
ID_V_FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "long", "nullable": False},
    {"name": "v", "type": "string"},
]


def table_with_v1(
    kube: Cluster,
    operator: Operator,
    namespace: str,
    name: str,
    fields: list[dict[str, Any]] = ID_V_FIELDS,
) -> Path:
    """Apply Table ``name`` and its SchemaVersion ``<name>-v1``; wait until v1 is current.

    Returns the table's location on local disk.
    """
    apply(kube, namespace, table(name), schema_version(f"{name}-v1", name, 1, fields))
    status = wait_status(
        kube,
        namespace,
        "tables",
        name,
        lambda s: s.get("currentSchemaVersion") == 1 and bool(s.get("location")),
        what="schema v1 current",
        operator=operator,
    )
    return Path(str(status["location"]).removeprefix("file://"))


def db_secret(kube: Cluster, namespace: str, url: str = "sqlite://") -> None:
    """Secret ``db`` whose key ``url`` is the SQL sources' SQLAlchemy URL."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}}
    apply(kube, namespace, {**secret, "stringData": {"url": url}})


def sql_job(
    name: str, table_ref: str, query: str, *, sql: Any = None, **spec: Any
) -> dict[str, Any]:
    """An IngestionJob reading ``query`` through secret ``db`` (``sql``: more source fields)."""
    source = {"urlSecretRef": {"name": "db", "key": "url"}, "query": query, **(sql or {})}
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": name},
        "spec": {"tableRef": table_ref, "source": {"sql": source}, **spec},
    }
