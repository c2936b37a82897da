"""Helpers for the operator's end-to-end tests: an operator subprocess and manifest builders."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
import yaml
from kubernetes import client

from waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
LAKEOP = Path(sys.executable).parent / "lakeop"


class Cluster(Protocol):
    """What the tests use of the devcluster's ``kube`` fixture."""

    api: Any

    def env(self) -> dict[str, str]: ...

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]: ...


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


def make_operator(kube: Cluster, module_tag: str, lake: Path, tmp: Path, **env: str) -> Operator:
    return Operator(kube, f"{module_tag}-*", lake, tmp / "operator.log", dict(env))


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


class HeldSource:
    """A PostgreSQL table whose readers wait until the test lets them go.

    ``rows`` rows ``(id, v)`` go into table ``name``; then the test holds an ACCESS EXCLUSIVE
    lock on it in an open transaction, so a run's query (:attr:`query`, through secret ``db``
    with :attr:`url`) blocks inside PostgreSQL for as long as the test wants: a run that must
    outlive a schedule time, hold a queue slot or be cancelled mid-read does so by
    construction, not by being slow enough on this machine. :meth:`release` (or leaving the
    ``with`` block) commits the lock's transaction and the readers go on.
    """

    def __init__(self, url: str, name: str, rows: int) -> None:
        self.url, self.name, self.rows = url, name, rows
        self._engine = sa.create_engine(url)
        with self._engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE TABLE {name} (id bigint PRIMARY KEY, v text)"))
            conn.execute(
                sa.text(f"INSERT INTO {name} SELECT g, 'x' || g FROM generate_series(1, :n) g"),
                {"n": rows},
            )
        self._conn = self._engine.connect()
        self._txn = self._conn.begin()
        self._conn.execute(sa.text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))

    @property
    def query(self) -> str:
        return f"SELECT id, v FROM {self.name}"

    def waiting(self) -> int:
        """How many other sessions wait for the lock right now (the runs it holds)."""
        with self._engine.connect() as conn:
            count = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = :t AND NOT l.granted"
                ),
                {"t": self.name},
            ).scalar_one()
        return int(count)

    def release(self) -> None:
        if self._txn.is_active:
            self._txn.commit()
        self._conn.close()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def __enter__(self) -> HeldSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
