"""Operator start-up and clean-up: settings, API client and metrics in ``memo``; kopf settings.

Clients live in kopf's ``memo`` (created here, closed in cleanup) rather than in module
globals, so every handler gets them as an argument and tests can run operators side by side.
kopf's own bookkeeping goes to ``kopf.lakeop.io/*`` annotations and the ``lakeop.io/finalizer``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import kopf

from lakeop.config import Settings
from lakeop.core.constants import FINALIZER, GROUP
from lakeop.handlers._certs import write_self_signed
from lakeop.kube.client import Kube
from lakeop.logging_setup import JSON, configure
from lakeop.metrics import Metrics, MetricsServer, start_metrics_server

log = logging.getLogger("lakeop")
KOPF_PREFIX = f"kopf.{GROUP}"


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    config = Settings.from_env()
    memo["settings"] = config
    memo["kube"] = await Kube.connect()
    memo["metrics"] = Metrics()
    memo["run_locks"] = {}
    settings.persistence.finalizer = FINALIZER
    # kopf ignores annotations under its own prefix when it diffs objects, so its bookkeeping
    # must not share ``lakeop.io/`` with user-facing annotations such as lakeop.io/rerun.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # Events come from lakeop's own kopf.event() calls; kopf's log lines (e.g. every retry
    # of a waiting object) stay in the log instead of becoming API writes.
    settings.posting.loggers = False
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    if config.metrics_port is not None:
        memo["metrics_server"] = start_metrics_server(config.metrics_port, memo["metrics"])
    if config.webhook_port is not None:
        _webhook(settings, config)
    if config.log_format == JSON:  # the one JSON shape of operator and pods, not kopf's own
        configure(json=True, level=logging.getLogger().level)
    log.info(
        "lakeop operator started: default location %s, job image %s, max %d concurrent runs",
        config.default_location,
        config.job_image,
        config.max_concurrent_runs,
    )


def _webhook(settings: kopf.OperatorSettings, config: Settings) -> None:
    """Serve validating admission over TLS and let kopf keep the webhook config current."""
    if config.webhook_cert_dir:
        certs = Path(config.webhook_cert_dir)
        ca, cert, key = certs / "ca.crt", certs / "tls.crt", certs / "tls.key"
    else:
        ca, cert, key = write_self_signed(
            Path(tempfile.mkdtemp(prefix="lakeop-webhook-")), config.webhook_host
        )
    settings.admission.server = kopf.WebhookServer(
        addr=config.webhook_addr,
        port=config.webhook_port,
        host=config.webhook_host,
        certfile=str(cert),
        pkeyfile=str(key),
        cafile=str(ca),
    )
    # In a cluster the configuration comes with the manifests (a Service, cert-manager's CA);
    # kopf manages one (a URL and its own CA) only for an operator running outside.
    settings.admission.managed = config.webhook_configuration if config.webhook_managed else None


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    kube = memo.get("kube")
    if isinstance(kube, Kube):
        await kube.close()
    server = memo.get("metrics_server")
    if isinstance(server, MetricsServer):
        server.stop()
