"""Read a table's committed data under one schema version (older files projected).

Files keep the schema they were written with. :func:`read_table` reads exactly the live files
of the table's current snapshot (the commit log, or a Delta table's log: a reader never sees
staged or replaced files, even mid-publish) and
presents each under the requested schema with :func:`lakeop.arrow.project_table`: promotions
are cast, columns the file lacks get their default or null, columns it has beyond the schema
are dropped. The Hive key columns (year=, bucket=, ...) are not part of the schema and are
not returned.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from lakeop.arrow import project_table, to_arrow_schema
from lakeop.core.schema.types import Schema
from lakeop.engine.formats import detect
from lakeop.storage import open_storage


def read_table(
    location: str,
    schema: Schema,
    env: Mapping[str, str] | None = None,
    prefix: str = "LAKEOP_STORAGE_",
) -> pa.Table:
    storage = open_storage(location, env, prefix)
    live = detect(storage).live_files()  # the commit log's, or the Delta snapshot's
    parts = []
    for path in sorted(live):
        with storage.open_input(path) as f:
            parts.append(project_table(pq.read_table(f), schema))
    if not parts:
        return to_arrow_schema(schema).empty_table()
    return pa.concat_tables(parts)
