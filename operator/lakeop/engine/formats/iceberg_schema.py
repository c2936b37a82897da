"""An Iceberg table's schema and lakeop's: evolution by field id, field ids in the files."""

from __future__ import annotations

import time

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, ValidationError
from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import IcebergType, ListType, MapType, NestedField, StructType
from sqlalchemy.exc import OperationalError

from lakeop.errors import TerminalError

FIELD_ID = b"PARQUET:field_id"
ATTEMPTS = 10


def _same(a: IcebergType, b: IcebergType) -> bool:
    """Equal types, nested ones compared by shape (names, types, requiredness), not ids."""
    if isinstance(a, StructType) and isinstance(b, StructType):
        return len(a.fields) == len(b.fields) and all(
            x.name == y.name and x.required == y.required and _same(x.field_type, y.field_type)
            for x, y in zip(a.fields, b.fields, strict=True)
        )
    if isinstance(a, ListType) and isinstance(b, ListType):
        return _same(a.element_type, b.element_type)
    if isinstance(a, MapType) and isinstance(b, MapType):
        return _same(a.key_type, b.key_type) and _same(a.value_type, b.value_type)
    return a == b


def _changes(current: Schema, wanted: Schema) -> bool:
    for f in wanted.fields:
        try:
            have = current.find_field(f.name)
        except ValueError:
            return True
        if not _same(have.field_type, f.field_type) or (have.required and not f.required):
            return True
    return False


def evolve(table: Table, schema: pa.Schema, identifier: tuple[str, str]) -> Table:
    """Apply ``schema`` to the table by name (added columns, Iceberg's promotions, required
    columns made optional), keeping field ids; columns it lacks stay (old data reads them).
    A change Iceberg cannot make is terminal (``FormatCannotEvolve``): the SchemaVersion is
    refused before a run gets here."""
    wanted = _pyarrow_to_schema_without_ids(schema)
    for _ in range(ATTEMPTS):
        if not _changes(table.schema(), wanted):
            return table
        try:
            with table.update_schema(allow_incompatible_changes=False) as update:
                update.union_by_name(wanted)
        except (ValidationError, ValueError) as e:
            raise TerminalError(
                f"iceberg table {'.'.join(identifier)}: cannot evolve its schema: {e}",
                reason="FormatCannotEvolve",
            ) from e
        except (CommitFailedException, OperationalError):  # a racing evolution: re-read
            time.sleep(0.1)
        table = table.refresh()
    return table


def with_field_ids(schema: pa.Schema, iceberg: Schema) -> pa.Schema:
    """``schema`` with each field's Iceberg field id in its Parquet metadata."""
    return pa.schema([_field(f, iceberg.find_field(f.name)) for f in schema])


def _field(f: pa.Field, ice: NestedField) -> pa.Field:
    return pa.field(
        f.name, _type(f.type, ice.field_type), f.nullable, {FIELD_ID: str(ice.field_id).encode()}
    )


def _type(t: pa.DataType, ice: IcebergType) -> pa.DataType:
    if pa.types.is_struct(t) and isinstance(ice, StructType):
        by_name = {x.name: x for x in ice.fields}
        return pa.struct(
            [_field(t.field(i), by_name[t.field(i).name]) for i in range(t.num_fields)]
        )
    if pa.types.is_list(t) and isinstance(ice, ListType):
        item = t.value_field
        return pa.list_(
            pa.field(
                item.name,
                _type(item.type, ice.element_type),
                item.nullable,
                {FIELD_ID: str(ice.element_id).encode()},
            )
        )
    if pa.types.is_map(t) and isinstance(ice, MapType):
        key, item = t.key_field, t.item_field
        return pa.map_(
            pa.field(key.name, key.type, False, {FIELD_ID: str(ice.key_id).encode()}),
            pa.field(
                item.name,
                _type(item.type, ice.value_type),
                item.nullable,
                {FIELD_ID: str(ice.value_id).encode()},
            ),
        )
    return t
