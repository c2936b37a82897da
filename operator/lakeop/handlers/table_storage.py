"""Where a Table's data lives and how to reach it: resolved location and storage settings.

Shared by the Table handlers (prepare, refresh, delete), run starting (refuse a location
outside the allowed prefixes before any Job exists) and run recording (release claims, read a
commit, refresh totals). The storage Secret is read only for the operator's own use and never
logged.
"""

from __future__ import annotations

from typing import Any

from lakeop.config import Settings
from lakeop.core.constants import STORAGE_ENV_PREFIX, TABLES
from lakeop.core.lake import iceberg
from lakeop.core.lake.iceberg import CATALOG_ENV, CATALOG_SECRET_ENV
from lakeop.core.runs.admission import table_catalog_problem
from lakeop.core.spec.resources import TableSpec, parse_table
from lakeop.core.spec.sources import SecretKeyRef
from lakeop.core.spec.tenancy import LocationRefusedError, table_location
from lakeop.errors import InvalidSpecError
from lakeop.kube.client import Kube
from lakeop.storage import real_location

__all__ = [
    "LocationRefusedError",
    "catalog_problem",
    "has_default_catalog",
    "location_of",
    "pod_catalog_secret",
    "storage_env",
    "table_storage",
]


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


async def storage_env(kube: Kube, spec: TableSpec, settings: Settings) -> dict[str, str]:
    """The storage Secret's keys as LAKEOP_STORAGE_* names (only the operator's own use);
    an Iceberg table's catalog URL as LAKEOP_ICEBERG_CATALOG_URI: from its
    ``catalogSecretRef``, else the operator's settings (``LAKEOP_ICEBERG_CATALOG_URI``, or
    the Secret ``LAKEOP_ICEBERG_CATALOG_SECRET`` names in the Table's namespace). Never
    logged; Job pods get the same Secret by reference (:func:`pod_catalog_secret`)."""
    env: dict[str, str] = {}
    if spec.storage_secret_ref:
        env = await kube.read_secret(spec.namespace, spec.storage_secret_ref, STORAGE_ENV_PREFIX)
    if spec.format != "iceberg":
        return env
    ref = spec.iceberg.catalog_secret_ref
    field = "spec.iceberg.catalogSecretRef"
    if ref is None and settings.iceberg_catalog_uri:
        env[CATALOG_ENV] = settings.iceberg_catalog_uri
        return env
    if ref is None:
        ref, field = settings.iceberg_catalog_secret, f"the operator's {CATALOG_SECRET_ENV}"
    if ref is not None:
        data = await kube.read_secret(spec.namespace, ref.name)
        if not data.get(ref.key):
            raise InvalidSpecError(
                f"Table {spec.namespace}/{spec.name}: {field}: "
                f"Secret {spec.namespace}/{ref.name} has no key {ref.key!r}"
            )
        env[CATALOG_ENV] = data[ref.key]
    return env


def pod_catalog_secret(spec: TableSpec, settings: Settings) -> SecretKeyRef | None:
    """Where a Job pod of ``spec`` reads its catalog URL from: a secret reference, never a
    value (the Table's own, else the operator's default Secret)."""
    return iceberg.pod_catalog_secret(spec, settings.iceberg_catalog_secret)


def catalog_problem(spec: TableSpec, location: str, settings: Settings) -> str | None:
    """:func:`lakeop.core.runs.admission.table_catalog_problem` with the operator's defaults."""
    return table_catalog_problem(spec, location, default_catalog=has_default_catalog(settings))


def has_default_catalog(settings: Settings) -> bool:
    return bool(settings.iceberg_catalog_uri or settings.iceberg_catalog_secret)


async def table_storage(
    kube: Kube, settings: Settings, namespace: str, table_name: str
) -> tuple[dict[str, Any], str, dict[str, str]] | None:
    """The Table object, its prepared location and storage settings; None while it has none."""
    table = await kube.get_object(TABLES, namespace, table_name)
    location = ((table or {}).get("status") or {}).get("location")
    if table is None or not location:
        return None
    return table, str(location), await storage_env(kube, parse_table(table), settings)
