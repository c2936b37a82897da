"""What every Job the operator starts takes from its settings, for ingestion and maintenance.

The image, default resources, ServiceAccount, log format, the lake volume, the pods' node
placement and the finished Jobs' TTL are the operator's (``LAKEOP_*``), whoever owns the Job;
the fields of :class:`~lakeop.core.runs.jobs.JobParams` that depend on the run come from its
caller.
"""

from __future__ import annotations

from typing import Any

from lakeop.config import Settings


def operator_job_params(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of :class:`~lakeop.core.runs.jobs.JobParams` from ``settings``."""
    return {
        "image": settings.job_image,
        "default_resources": {
            "requests": {"cpu": settings.job_cpu_request, "memory": settings.job_memory_request},
            "limits": {"memory": settings.job_memory_limit},
        },
        "ttl_seconds_after_finished": settings.job_ttl_seconds,
        "service_account": settings.job_service_account,
        "log_format": settings.log_format if settings.log_format != "text" else None,
        "lake_volume": settings.lake_volume,
        "lake_mount_path": settings.lake_mount_path,
        "node_selector": settings.job_node_selector,
        "tolerations": settings.job_tolerations,
    }
