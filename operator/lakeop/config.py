"""Operator settings from ``LAKEOP_*`` environment variables, read once at start-up.

The operator is configured the twelve-factor way: every knob is an environment variable with a
default that works on a laptop. :meth:`Settings.from_env` takes the environment and the working
directory as arguments, so tests build settings without touching the process environment.

| variable | default | meaning |
|---|---|---|
| LAKEOP_DEFAULT_LOCATION | ``file://<cwd>/lake`` | root for Tables without ``spec.location`` |
| LAKEOP_ALLOWED_LOCATIONS | (unrestricted) | prefixes Tables may use (core.spec.tenancy) |
| LAKEOP_JOB_IMAGE | ``lakeop:<version>`` | image of the ingestion Job pods |
| LAKEOP_MAX_CONCURRENT_RUNS | 10 | runs (Jobs) active at once per operator |
| LAKEOP_MAX_CONCURRENT_RUNS_PER_NAMESPACE | (unlimited) | runs active at once per namespace |
| LAKEOP_NAMESPACE | (none) | namespace(s) to watch when ``lakeop run`` gets no scope option |
| LAKEOP_RESYNC_SECONDS | 30 | how often Tables refresh totals and waiting objects re-check |
| LAKEOP_JOB_CPU_REQUEST | 100m | Job pod default CPU request (spec.resources wins) |
| LAKEOP_JOB_MEMORY_REQUEST | 256Mi | Job pod default memory request |
| LAKEOP_JOB_MEMORY_LIMIT | 1Gi | Job pod default memory limit |
| LAKEOP_JOB_TTL_SECONDS | (none) | ttlSecondsAfterFinished default for finished Jobs |
| LAKEOP_JOB_SERVICE_ACCOUNT | (none) | Job pods' service account (token never mounted) |
| LAKEOP_JOB_CLAIM_LEASE_SECONDS | 600 | Job pods' input-claim lease (docs/commit-protocol.md) |
| LAKEOP_JOB_NODE_SELECTOR | (none) | JSON object: every Job pod's nodeSelector (templates add) |
| LAKEOP_JOB_TOLERATIONS | (none) | JSON list: every Job pod's tolerations (a template appends) |
| LAKEOP_WEBHOOK_PORT | (none) | serve the validating webhook on this port (see ``lakeop run``) |
| LAKEOP_WEBHOOK_HOST | 127.0.0.1 | host name the API server uses to reach the webhook |
| LAKEOP_WEBHOOK_ADDR | 127.0.0.1 | address the webhook server listens on (0.0.0.0 in a pod) |
| LAKEOP_WEBHOOK_CERT_DIR | (none) | tls.crt/tls.key/ca.crt to serve with; else a self-signed CA |
| LAKEOP_WEBHOOK_CONFIGURATION | lakeop.io | managed ValidatingWebhookConfiguration (dotted) |
| LAKEOP_WEBHOOK_MANAGED | true | ``false``: leave the webhook configuration to the manifests |
| LAKEOP_METRICS_PORT | (none) | serve Prometheus metrics on this port |
| LAKEOP_LAKE_VOLUME | (none) | JSON volume source added to every Job pod as ``lakeop-lake`` |
| LAKEOP_LAKE_MOUNT_PATH | (none) | where that volume is mounted (the operator's own path too) |
| LAKEOP_REQUIRE_MOUNTS | true in a pod | ``file://`` paths must be mounted in the Job pods |
| LAKEOP_LOG_FORMAT | text | ``json``: one JSON object per log line, here and in the Job pods |
| LAKEOP_ICEBERG_CATALOG_URI | (none) | the operator's default Iceberg catalog (never logged) |
| LAKEOP_ICEBERG_CATALOG_SECRET | (none) | ``name/key``: Job pods' default catalog, by reference |
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeop import __version__
from lakeop.core.constants import GROUP, LOCAL_DEFAULT_ROOT
from lakeop.core.lake.iceberg import CATALOG_ENV, CATALOG_SECRET_ENV
from lakeop.core.runs.queue import limits_from_env
from lakeop.core.spec.sources import SecretKeyRef
from lakeop.core.spec.tenancy import AllowedLocations, normalise_location, parse_allowed_locations
from lakeop.errors import InvalidSpecError
from lakeop.logging_setup import log_format


class ConfigError(InvalidSpecError):
    """A LAKEOP_* variable has a value the operator cannot use."""

    reason = "InvalidConfiguration"


@dataclass(frozen=True)
class Settings:
    default_location: str
    allowed_locations: AllowedLocations = field(default_factory=AllowedLocations)
    job_image: str = f"lakeop:{__version__}"
    max_concurrent_runs: int = 10
    max_concurrent_runs_per_namespace: int | None = None
    namespaces: tuple[str, ...] = ()
    resync_seconds: float = 30.0
    job_cpu_request: str = "100m"
    job_memory_request: str = "256Mi"
    job_memory_limit: str = "1Gi"
    job_ttl_seconds: int | None = None
    job_service_account: str | None = None
    job_claim_lease_seconds: float = 600.0
    job_node_selector: Mapping[str, str] = field(default_factory=dict)
    job_tolerations: tuple[Mapping[str, Any], ...] = ()
    webhook_port: int | None = None
    webhook_host: str = "127.0.0.1"
    webhook_addr: str = "127.0.0.1"
    webhook_cert_dir: str | None = None
    webhook_configuration: str = GROUP
    webhook_managed: bool = True
    metrics_port: int | None = None
    log_format: str = "text"  # "json" or "text" (lakeop.logging_setup), passed to the Job pods
    served_namespaces: tuple[str, ...] = ()  # kopf --namespace patterns, set by `lakeop run`
    lake_volume: Mapping[str, Any] | None = None  # a core/v1 volume source, without the name
    lake_mount_path: str | None = None
    #: Job pods do not see the operator's filesystem (a pod's are its own): check file:// paths
    require_mounts: bool = False
    #: the default Iceberg catalog (a SQLAlchemy URL) for Tables without a catalogSecretRef:
    #: the operator's own use (status, ensure, deletion); never in a repr, a plan or a log
    iceberg_catalog_uri: str | None = field(default=None, repr=False)
    #: the Secret (in each Table's namespace) Job pods get that default from, by reference;
    #: without LAKEOP_ICEBERG_CATALOG_URI the operator reads the URL from it too
    iceberg_catalog_secret: SecretKeyRef | None = None

    def serves(self, namespace: str) -> bool:
        """Whether this operator is responsible for ``namespace`` (kopf glob patterns)."""
        if not self.served_namespaces:
            return True
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.served_namespaces)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        cwd = Path.cwd() if cwd is None else cwd
        default_root = (
            env.get("LAKEOP_DEFAULT_LOCATION") or (cwd.resolve() / LOCAL_DEFAULT_ROOT).as_uri()
        )
        try:
            default_root = normalise_location(default_root)
        except ValueError as exc:
            raise ConfigError(f"LAKEOP_DEFAULT_LOCATION: {exc}") from exc
        ttl = env.get("LAKEOP_JOB_TTL_SECONDS")
        port = env.get("LAKEOP_WEBHOOK_PORT")
        metrics = env.get("LAKEOP_METRICS_PORT")
        try:  # the queue's own parser: positive integers
            limits = limits_from_env(env, default_max_total=cls.max_concurrent_runs)
        except InvalidSpecError as exc:
            raise ConfigError(str(exc)) from exc
        return cls(
            default_location=default_root,
            allowed_locations=parse_allowed_locations(env.get("LAKEOP_ALLOWED_LOCATIONS")),
            job_image=env.get("LAKEOP_JOB_IMAGE") or cls.job_image,
            max_concurrent_runs=limits.max_total or cls.max_concurrent_runs,
            max_concurrent_runs_per_namespace=limits.per_namespace,
            namespaces=tuple(n for n in env.get("LAKEOP_NAMESPACE", "").replace(",", " ").split()),
            resync_seconds=float(_int(env, "LAKEOP_RESYNC_SECONDS", int(cls.resync_seconds))),
            job_cpu_request=env.get("LAKEOP_JOB_CPU_REQUEST") or cls.job_cpu_request,
            job_memory_request=env.get("LAKEOP_JOB_MEMORY_REQUEST") or cls.job_memory_request,
            job_memory_limit=env.get("LAKEOP_JOB_MEMORY_LIMIT") or cls.job_memory_limit,
            job_ttl_seconds=_int(env, "LAKEOP_JOB_TTL_SECONDS", 0) if ttl else None,
            job_service_account=env.get("LAKEOP_JOB_SERVICE_ACCOUNT") or None,
            job_claim_lease_seconds=_lease(env, cls.job_claim_lease_seconds),
            **_placement(env),
            webhook_port=_int(env, "LAKEOP_WEBHOOK_PORT", 0) if port else None,
            webhook_host=env.get("LAKEOP_WEBHOOK_HOST") or cls.webhook_host,
            webhook_addr=env.get("LAKEOP_WEBHOOK_ADDR") or cls.webhook_addr,
            webhook_cert_dir=env.get("LAKEOP_WEBHOOK_CERT_DIR") or None,
            webhook_configuration=env.get("LAKEOP_WEBHOOK_CONFIGURATION")
            or cls.webhook_configuration,
            webhook_managed=_bool(env, "LAKEOP_WEBHOOK_MANAGED", cls.webhook_managed),
            metrics_port=_int(env, "LAKEOP_METRICS_PORT", 0) if metrics else None,
            log_format=log_format(env),
            served_namespaces=tuple(
                n for n in env.get("LAKEOP_SERVED_NAMESPACES", "").split(",") if n
            ),
            **_lake_volume(env),
            **_iceberg_catalog(env),
        )


def _iceberg_catalog(env: Mapping[str, str]) -> dict[str, Any]:
    """LAKEOP_ICEBERG_CATALOG_URI and LAKEOP_ICEBERG_CATALOG_SECRET (``name/key``, key
    default ``uri``). A Job pod gets a catalog only by secret reference, so a URL without the
    Secret to hand to the pods is refused: the pods would silently use another catalog."""
    uri = (env.get(CATALOG_ENV) or "").strip() or None
    raw = (env.get(CATALOG_SECRET_ENV) or "").strip()
    secret = None
    if raw:
        name, slash, key = raw.partition("/")
        if not _DNS_NAME.fullmatch(name) or "/" in key or (slash and not key):
            raise ConfigError(
                f"{CATALOG_SECRET_ENV}: expected <secret name>/<key> (key default uri), got {raw!r}"
            )
        secret = SecretKeyRef(name, key or "uri")
    if uri is not None and secret is None:
        raise ConfigError(
            f"{CATALOG_ENV} is set but {CATALOG_SECRET_ENV} is not: Job pods get the catalog "
            "only by secret reference; name the Secret (in each Table's namespace) that holds it"
        )
    return {"iceberg_catalog_uri": uri, "iceberg_catalog_secret": secret}


_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {env.get(key)!r}")


def _lease(env: Mapping[str, str], default: float) -> float:
    key = "LAKEOP_JOB_CLAIM_LEASE_SECONDS"
    value = _int(env, key, int(default))
    if value == 0:
        raise ConfigError(f"{key}: must be at least 1 second, got {env.get(key)!r}")
    return float(value)


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key}: expected an integer, got {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{key}: must not be negative, got {raw!r}")
    return value


def _json(env: Mapping[str, str], key: str, example: str) -> Any:
    raw = env.get(key) or ""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{key}: not JSON ({exc}); expected e.g. {example}") from exc


def _placement(env: Mapping[str, str]) -> dict[str, Any]:
    """LAKEOP_JOB_NODE_SELECTOR and LAKEOP_JOB_TOLERATIONS: where every Job pod may run."""
    key, example = "LAKEOP_JOB_NODE_SELECTOR", '{"pool": "batch"}'
    selector = _json(env, key, example) or {}
    if not isinstance(selector, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in selector.items()
    ):
        raise ConfigError(f"{key}: expected a JSON object of strings, e.g. {example}")
    key, example = "LAKEOP_JOB_TOLERATIONS", '[{"key": "batch", "operator": "Exists"}]'
    tolerations = _json(env, key, example) or []
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        raise ConfigError(f"{key}: expected a JSON list of tolerations, e.g. {example}")
    return {"job_node_selector": selector, "job_tolerations": tuple(tolerations)}


def _lake_volume(env: Mapping[str, str]) -> dict[str, Any]:
    """LAKEOP_LAKE_VOLUME / _MOUNT_PATH (both or neither) and LAKEOP_REQUIRE_MOUNTS."""
    raw, path = env.get("LAKEOP_LAKE_VOLUME") or "", env.get("LAKEOP_LAKE_MOUNT_PATH") or ""
    if bool(raw) != bool(path):
        raise ConfigError("LAKEOP_LAKE_VOLUME and LAKEOP_LAKE_MOUNT_PATH go together: set both")
    volume: dict[str, Any] | None = None
    if raw:
        try:
            volume = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"LAKEOP_LAKE_VOLUME: not JSON: {exc}") from exc
        if not isinstance(volume, dict) or len(volume) != 1 or "name" in volume:
            raise ConfigError(
                "LAKEOP_LAKE_VOLUME: expected one volume source without a name, e.g. "
                '{"persistentVolumeClaim": {"claimName": "lake"}}, got ' + repr(raw)
            )
        if not path.startswith("/") or not path.strip("/"):
            raise ConfigError(f"LAKEOP_LAKE_MOUNT_PATH: must be an absolute path, got {path!r}")
    # In a pod, Job pods are other pods; elsewhere (a laptop, the devcluster's process node)
    # they may share the operator's filesystem.
    in_pod = bool(env.get("KUBERNETES_SERVICE_HOST"))
    return {
        "lake_volume": volume,
        "lake_mount_path": path.rstrip("/") or None,
        "require_mounts": _bool(env, "LAKEOP_REQUIRE_MOUNTS", in_pod),
    }
