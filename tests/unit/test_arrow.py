"""The Arrow adapter: schema round trips, and old files read under the current schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from lakeop.arrow import from_arrow_schema, project_table, to_arrow_schema, type_to_arrow
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.errors import IncompatibleSchemaError, InvalidRecordsError


def s(text: str) -> Schema:
    return parse_fields(yaml.safe_load(text))


ALL_TYPES = s(
    """
    - {name: b, type: boolean, nullable: false}
    - {name: i, type: int}
    - {name: l, type: long}
    - {name: f, type: float}
    - {name: d, type: double}
    - {name: s, type: string}
    - {name: bin, type: binary}
    - {name: day, type: date}
    - {name: ts, type: timestamp}
    - {name: amount, type: decimal, precision: 12, scale: 2}
    - {name: props, type: map, values: string, valuesNullable: false}
    - {name: tags, type: array, items: long, itemsNullable: false}
    - name: device
      type: struct
      fields: [{name: os, type: string, nullable: false}, {name: n, type: array, items: int}]
    """
)


def test_schema_round_trip() -> None:
    arrow = to_arrow_schema(ALL_TYPES)
    assert arrow.field("ts").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("amount").type == pa.decimal128(12, 2)
    assert arrow.field("b").nullable is False
    assert from_arrow_schema(arrow) == ALL_TYPES


def test_round_trip_through_parquet(tmp_path: Path) -> None:
    path = tmp_path / "all.parquet"
    pq.write_table(pa.Table.from_pylist([], schema=to_arrow_schema(ALL_TYPES)), path)
    assert from_arrow_schema(pq.read_schema(path)) == ALL_TYPES


def test_arrow_only_types_map_to_the_nearest_lakeop_type() -> None:
    schema = pa.schema(
        [
            ("small", pa.int16()),
            ("big", pa.uint64()),
            ("text", pa.large_string()),
            ("cat", pa.dictionary(pa.int32(), pa.string())),
            ("ns", pa.timestamp("ns")),
        ]
    )
    assert [f.type.render() for f in from_arrow_schema(schema).fields] == [
        "int",
        "long",
        "string",
        "string",
        "timestamp",
    ]


V1 = s(
    """
    - {name: id, type: int, nullable: false}
    - {name: reading, type: float}
    - {name: day, type: date}
    - {name: dropped_later, type: string}
    """
)
V2 = s(
    """
    - {name: id, type: long, nullable: false}
    - {name: reading, type: double}
    - {name: day, type: timestamp}
    - {name: country, type: string}
    - {name: source, type: string, nullable: false, default: legacy}
    - {name: price, type: decimal, precision: 8, scale: 2, default: "1.50"}
    """
)


def v1_table() -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"id": 1, "reading": 0.5, "day": dt.date(2026, 1, 1), "dropped_later": "x"},
            {"id": 2, "reading": None, "day": None, "dropped_later": None},
        ],
        schema=to_arrow_schema(V1),
    )


def test_project_old_table_to_new_schema() -> None:
    out = project_table(v1_table(), V2)
    assert out.schema == to_arrow_schema(V2)
    assert out.to_pylist() == [
        {
            "id": 1,
            "reading": 0.5,
            "day": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "country": None,
            "source": "legacy",
            "price": Decimal("1.50"),
        },
        {
            "id": 2,
            "reading": None,
            "day": None,
            "country": None,
            "source": "legacy",
            "price": Decimal("1.50"),
        },
    ]


def test_old_and_new_files_read_as_the_new_schema(tmp_path: Path) -> None:
    # issue 4: v1 (int, float) and v2 (long, double, new nullable column) both have data
    pq.write_table(v1_table(), tmp_path / "v1.parquet")
    v2_rows = [
        {
            "id": 2**40,
            "reading": 1.25,
            "day": dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC),
            "country": "DE",
            "source": "api",
            "price": Decimal("2.00"),
        }
    ]
    pq.write_table(
        pa.Table.from_pylist(v2_rows, schema=to_arrow_schema(V2)), tmp_path / "v2.parquet"
    )

    tables = [project_table(pq.read_table(p), V2) for p in sorted(tmp_path.glob("*.parquet"))]
    combined = pa.concat_tables(tables)
    assert combined.schema == to_arrow_schema(V2)
    assert combined.column("id").to_pylist() == [1, 2, 2**40]
    assert combined.column("country").to_pylist() == [None, None, "DE"]

    con = duckdb.connect()
    rel = con.sql(
        f"select id, reading, country from read_parquet('{tmp_path}/*.parquet', union_by_name=true)"
        " order by id"
    )
    assert [str(t) for t in rel.types] == ["BIGINT", "DOUBLE", "VARCHAR"]
    assert rel.fetchall() == [(1, 0.5, None), (2, None, None), (2**40, 1.25, "DE")]


def test_nested_struct_evolution() -> None:
    old = s(
        """
        - name: device
          type: struct
          fields: [{name: os, type: string}, {name: build, type: int}, {name: gone, type: int}]
        - name: events
          type: array
          items: {type: struct, fields: [{name: n, type: int}]}
        - {name: props, type: map, values: int}
        """
    )
    new = s(
        """
        - name: device
          type: struct
          fields:
            - {name: os, type: string}
            - {name: build, type: long}
            - {name: model, type: string, default: unknown}
        - name: events
          type: array
          items: {type: struct, fields: [{name: n, type: long}, {name: tag, type: string}]}
        - {name: props, type: map, values: double}
        """
    )
    table = pa.Table.from_pylist(
        [
            {
                "device": {"os": "linux", "build": 7, "gone": 1},
                "events": [{"n": 1}, {"n": 2}],
                "props": [("a", 1)],
            },
            {"device": None, "events": None, "props": None},
        ],
        schema=to_arrow_schema(old),
    )
    out = project_table(table, new)
    assert out.schema == to_arrow_schema(new)
    assert out.to_pylist() == [
        {
            "device": {"os": "linux", "build": 7, "model": "unknown"},
            "events": [{"n": 1, "tag": None}, {"n": 2, "tag": None}],
            "props": [("a", 1.0)],
        },
        {"device": None, "events": None, "props": None},
    ]


def test_incompatible_file_is_refused() -> None:
    with pytest.raises(IncompatibleSchemaError, match="reading: TypeNarrowed float→int"):
        project_table(v1_table(), s("[{name: id, type: long}, {name: reading, type: int}]"))


def test_null_in_non_null_column_is_refused() -> None:
    table = pa.table({"id": pa.array([1, None], type=pa.int64())})
    with pytest.raises(InvalidRecordsError, match="id: 1 null value"):
        project_table(table, s("[{name: id, type: long, nullable: false}]"))


def test_type_to_arrow_nested() -> None:
    t = ALL_TYPES.by_name()["props"].type
    assert type_to_arrow(t) == pa.map_(pa.string(), pa.field("value", pa.string(), False))
