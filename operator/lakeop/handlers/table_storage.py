"""Where a Table's data lives and how to reach it: resolved location and storage settings.

Shared by the Table handlers (prepare, refresh, delete), run starting (refuse a location
outside the allowed prefixes before any Job exists) and run recording (release claims, read a
commit, refresh totals). The storage Secret is read only for the operator's own use and never
logged.
"""

from __future__ import annotations

import os
from typing import Any

from lakeop.config import Settings
from lakeop.core.constants import STORAGE_ENV_PREFIX, TABLES
from lakeop.core.lake.iceberg import CATALOG_ENV
from lakeop.core.spec.resources import TableSpec, parse_table
from lakeop.core.spec.tenancy import LocationRefusedError, table_location
from lakeop.errors import InvalidSpecError
from lakeop.kube.client import Kube
from lakeop.storage import real_location

__all__ = ["LocationRefusedError", "location_of", "storage_env", "table_storage"]


def location_of(spec: TableSpec, settings: Settings) -> str:
    """The table's resolved location, or LocationRefusedError under LAKEOP_ALLOWED_LOCATIONS
    (:func:`lakeop.core.spec.tenancy.table_location`, symbolic links followed)."""
    return table_location(
        spec.namespace,
        spec.name,
        spec.location,
        settings.default_location,
        allowed=settings.allowed_locations,
        resolve=real_location,
    )


async def storage_env(kube: Kube, spec: TableSpec) -> dict[str, str]:
    """The storage Secret's keys as LAKEOP_STORAGE_* names (only the operator's own use);
    an Iceberg table's catalog URL as LAKEOP_ICEBERG_CATALOG_URI, from its
    ``catalogSecretRef`` or the operator's own environment (never logged)."""
    env: dict[str, str] = {}
    if spec.storage_secret_ref:
        env = await kube.read_secret(spec.namespace, spec.storage_secret_ref, STORAGE_ENV_PREFIX)
    if spec.format == "iceberg":
        ref = spec.iceberg.catalog_secret_ref
        if ref is not None:
            data = await kube.read_secret(spec.namespace, ref.name)
            if ref.key not in data:
                raise InvalidSpecError(
                    f"Table {spec.namespace}/{spec.name}: spec.iceberg.catalogSecretRef: "
                    f"Secret {ref.name} has no key {ref.key!r}"
                )
            env[CATALOG_ENV] = data[ref.key]
        elif os.environ.get(CATALOG_ENV):
            env[CATALOG_ENV] = os.environ[CATALOG_ENV]
    return env


async def table_storage(
    kube: Kube, namespace: str, table_name: str
) -> tuple[dict[str, Any], str, dict[str, str]] | None:
    """The Table object, its prepared location and storage settings; None while it has none."""
    table = await kube.get_object(TABLES, namespace, table_name)
    location = ((table or {}).get("status") or {}).get("location")
    if table is None or not location:
        return None
    return table, str(location), await storage_env(kube, parse_table(table))
