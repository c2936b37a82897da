"""The operator creates a table before its first run: an Iceberg table is registered in its
catalog once the Table has an Accepted SchemaVersion (so that engines see it, empty, at once),
and follows later Accepted versions. The same ``ensure`` a run calls, with the schema and
partition columns a run of that version would write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from lakeop.arrow import to_arrow_schema
from lakeop.core.lake.partitioning import column_problem
from lakeop.core.runs.plan import PlanTable
from lakeop.core.schema.parse import parse_fields
from lakeop.engine.formats import open_format, set_target
from lakeop.engine.partition import make_partitioner
from lakeop.errors import InvalidSpecError
from lakeop.storage import open_storage


def ensure_table(
    table: PlanTable,
    fields: Sequence[Mapping[str, Any]],
    storage_env: Mapping[str, str],
    prefix: str,
) -> None:
    """Create ``table`` (or evolve it) for the schema ``fields``; idempotent."""
    schema = parse_fields([dict(f) for f in fields])
    target = to_arrow_schema(schema)
    spec = table.partitioning
    column = schema.get(spec.column or "")
    problem = column_problem(spec, column.type.name if column is not None else None)
    if problem is not None:
        raise InvalidSpecError(
            f"Table {table.name}: partitioning.column {spec.column!r}: {problem}"
        )
    partitioner = make_partitioner(
        spec,
        target.field(column.name).type if column is not None else None,
        iceberg=table.format == "iceberg",
    )
    storage = open_storage(table.location, storage_env, prefix)
    set_target(storage, table, storage_env)
    fmt = open_format(storage, table.format)
    fmt.ensure(pa.schema([*target, *partitioner.keys]), partitioner.names)
