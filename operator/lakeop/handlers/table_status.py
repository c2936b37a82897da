"""The one writer of ``Table.status``.

Four places learn something about a table — its reconciler (prepared or refused), its refresh
timer (totals), a recorded run (new totals) and an accepted SchemaVersion (a newer current
version) — and all of them hand their facts to :func:`write_table_status`, which computes the
patch with :func:`lakeop.core.runs.status.table_status` (changed keys only) and sends it
through the API client. No handler patches a Table's status any other way, so the rules for
conditions, totals and ``currentSchemaVersion`` live in one pure function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakeop.core.constants import TABLES
from lakeop.core.runs import status as st
from lakeop.handlers._common import generation, now
from lakeop.kube.client import Kube


async def write_table_status(
    kube: Kube, table: Mapping[str, Any], facts: st.TableFacts
) -> dict[str, Any]:
    """Patch ``table``'s status (a body or an object read from the API) to match ``facts``.

    Returns the patch sent ({} when nothing changed: no API call).
    """
    meta = table.get("metadata") or {}
    update = st.table_status(
        table.get("status") or {}, facts, generation=generation(table), now=now()
    )
    if update:
        await kube.patch_status(TABLES, str(meta["namespace"]), str(meta["name"]), update)
    return update
