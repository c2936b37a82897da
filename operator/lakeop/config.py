"""Operator settings from ``LAKEOP_*`` environment variables, read once at start-up.

The operator is configured the twelve-factor way: every knob is an environment variable with a
default that works on a laptop. :meth:`Settings.from_env` takes the environment and the working
directory as arguments, so tests build settings without touching the process environment.

| variable | default | meaning |
|---|---|---|
| LAKEOP_DEFAULT_LOCATION | ``file://<cwd>/.lake`` | root for Tables without ``spec.location`` |
| LAKEOP_ALLOWED_LOCATIONS | (unrestricted) | prefixes Tables may use (core.spec.tenancy) |
| LAKEOP_JOB_IMAGE | ``lakeop:<version>`` | image of the ingestion Job pods |
| LAKEOP_MAX_CONCURRENT_RUNS | 10 | runs (Jobs) active at once per operator |
| LAKEOP_NAMESPACE | (none) | namespace(s) to watch when ``lakeop run`` gets no scope option |
| LAKEOP_RESYNC_SECONDS | 30 | how often Tables refresh totals and waiting objects re-check |
| LAKEOP_JOB_CPU_REQUEST | 100m | Job pod default CPU request (spec.resources wins) |
| LAKEOP_JOB_MEMORY_REQUEST | 256Mi | Job pod default memory request |
| LAKEOP_JOB_MEMORY_LIMIT | 1Gi | Job pod default memory limit |
| LAKEOP_JOB_TTL_SECONDS | (none) | ttlSecondsAfterFinished default for finished Jobs |
| LAKEOP_JOB_SERVICE_ACCOUNT | (none) | Job pods' service account (token never mounted) |
| LAKEOP_JOB_CLAIM_LEASE_SECONDS | 600 | Job pods' input-claim lease (docs/commit-protocol.md) |
| LAKEOP_WEBHOOK_PORT | (none) | serve the validating webhook on this port (see ``lakeop run``) |
| LAKEOP_WEBHOOK_HOST | 127.0.0.1 | host name the API server uses to reach the webhook |
| LAKEOP_WEBHOOK_ADDR | 127.0.0.1 | address the webhook server listens on (0.0.0.0 in a pod) |
| LAKEOP_WEBHOOK_CERT_DIR | (none) | tls.crt/tls.key/ca.crt to serve with; else a self-signed CA |
| LAKEOP_WEBHOOK_CONFIGURATION | lakeop.io | managed ValidatingWebhookConfiguration (dotted) |
| LAKEOP_WEBHOOK_MANAGED | true | ``false``: leave the webhook configuration to the manifests |
| LAKEOP_METRICS_PORT | (none) | serve Prometheus metrics on this port |
| LAKEOP_LOG_FORMAT | text | ``json``: one JSON object per log line, here and in the Job pods |
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lakeop import __version__
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
    namespaces: tuple[str, ...] = ()
    resync_seconds: float = 30.0
    job_cpu_request: str = "100m"
    job_memory_request: str = "256Mi"
    job_memory_limit: str = "1Gi"
    job_ttl_seconds: int | None = None
    job_service_account: str | None = None
    job_claim_lease_seconds: float = 600.0
    webhook_port: int | None = None
    webhook_host: str = "127.0.0.1"
    webhook_addr: str = "127.0.0.1"
    webhook_cert_dir: str | None = None
    webhook_configuration: str = "lakeop.io"
    webhook_managed: bool = True
    metrics_port: int | None = None
    log_format: str = "text"  # "json" or "text" (lakeop.logging_setup), passed to the Job pods
    served_namespaces: tuple[str, ...] = ()  # kopf --namespace patterns, set by `lakeop run`

    def serves(self, namespace: str) -> bool:
        """Whether this operator is responsible for ``namespace`` (kopf glob patterns)."""
        if not self.served_namespaces:
            return True
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.served_namespaces)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        cwd = Path.cwd() if cwd is None else cwd
        default_root = env.get("LAKEOP_DEFAULT_LOCATION") or (cwd.resolve() / ".lake").as_uri()
        try:
            default_root = normalise_location(default_root)
        except ValueError as exc:
            raise ConfigError(f"LAKEOP_DEFAULT_LOCATION: {exc}") from exc
        ttl = env.get("LAKEOP_JOB_TTL_SECONDS")
        port = env.get("LAKEOP_WEBHOOK_PORT")
        metrics = env.get("LAKEOP_METRICS_PORT")
        return cls(
            default_location=default_root,
            allowed_locations=parse_allowed_locations(env.get("LAKEOP_ALLOWED_LOCATIONS")),
            job_image=env.get("LAKEOP_JOB_IMAGE") or cls.job_image,
            max_concurrent_runs=_int(env, "LAKEOP_MAX_CONCURRENT_RUNS", cls.max_concurrent_runs),
            namespaces=tuple(n for n in env.get("LAKEOP_NAMESPACE", "").replace(",", " ").split()),
            resync_seconds=float(_int(env, "LAKEOP_RESYNC_SECONDS", int(cls.resync_seconds))),
            job_cpu_request=env.get("LAKEOP_JOB_CPU_REQUEST") or cls.job_cpu_request,
            job_memory_request=env.get("LAKEOP_JOB_MEMORY_REQUEST") or cls.job_memory_request,
            job_memory_limit=env.get("LAKEOP_JOB_MEMORY_LIMIT") or cls.job_memory_limit,
            job_ttl_seconds=_int(env, "LAKEOP_JOB_TTL_SECONDS", 0) if ttl else None,
            job_service_account=env.get("LAKEOP_JOB_SERVICE_ACCOUNT") or None,
            job_claim_lease_seconds=_lease(env, cls.job_claim_lease_seconds),
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
        )


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
