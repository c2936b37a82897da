"""Operator start-up: kopf's settings (persistence, posting, timeouts) and the webhook server.

Settings, the API client and metrics are not made here: ``lakeop run`` builds them into a
typed :class:`~lakeop.memo.OperatorMemo` before the operator starts, passes it as kopf's
``memo`` and closes the client when the operator stops (:mod:`lakeop.cli.run`).
kopf's own bookkeeping goes to ``kopf.lakeop.io/*`` annotations and the ``lakeop.io/finalizer``.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

import kopf

from lakeop.config import Settings
from lakeop.core.constants import FINALIZER, GROUP
from lakeop.handlers._certs import write_self_signed
from lakeop.handlers.freshness import refresh_forever
from lakeop.logging_setup import JSON, configure
from lakeop.memo import OperatorMemo

log = logging.getLogger("lakeop")
KOPF_PREFIX = f"kopf.{GROUP}"


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: OperatorMemo, **_: Any) -> None:
    config = memo.settings
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
        # outside kopf's handlers, which peering pauses on the standby: both replicas export it
        memo.background.append(
            asyncio.create_task(
                refresh_forever(memo.kube, memo.metrics, config), name="lakeop-freshness"
            )
        )
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
async def cleanup(memo: OperatorMemo, **_: Any) -> None:
    for task in memo.background:
        task.cancel()
