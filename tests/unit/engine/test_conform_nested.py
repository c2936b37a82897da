"""conform: nulls below the top level where the type forbids them make their rows invalid."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakeop.arrow import to_arrow_schema
from lakeop.core.schema.parse import parse_fields
from lakeop.engine.conform import conform, nested_null_rows

STRICT_LIST = pa.list_(pa.field("item", pa.string(), nullable=False))
STRICT_MAP = pa.map_(pa.string(), pa.field("value", pa.int32(), nullable=False))
STRICT_STRUCT = pa.struct(
    [pa.field("os", pa.string(), nullable=False), pa.field("tags", STRICT_LIST)]
)


@pytest.mark.parametrize(
    ("values", "t", "expected"),
    [
        ([["a"], ["a", None], None, [], [None]], STRICT_LIST, {1: "c.<item>", 4: "c.<item>"}),
        ([[("k", 1)], [("k", None)], None], STRICT_MAP, {1: "c.<value>"}),
        (
            [
                {"os": "x", "tags": ["a"]},
                {"os": None, "tags": []},
                None,
                {"os": "y", "tags": [None]},
            ],
            STRICT_STRUCT,
            {1: "c.os", 3: "c.tags.<item>"},
        ),
        ([["a"], ["b"]], STRICT_LIST, {}),
        ([["a", None]], pa.list_(pa.string()), {}),  # nullable items: nothing to find
    ],
)
def test_nested_null_rows(values: list[object], t: pa.DataType, expected: dict[int, str]) -> None:
    assert nested_null_rows(pa.array(values, t), "c") == expected


def test_nested_null_rows_of_a_slice_count_from_the_slice() -> None:
    arr = pa.array([["a", None], ["b"], ["c", None], None, ["d"]], STRICT_LIST)
    assert nested_null_rows(arr.slice(1, 3), "c") == {1: "c.<item>"}
    struct = pa.array([{"os": None, "tags": []}, {"os": "x", "tags": [None]}], STRICT_STRUCT)
    assert nested_null_rows(struct.slice(1), "c") == {0: "c.tags.<item>"}


def test_conform_drops_the_rows_and_names_the_path() -> None:
    schema = parse_fields(
        [
            {"name": "id", "type": "long", "nullable": False},
            {"name": "tags", "type": "array", "items": "string", "itemsNullable": False},
        ]
    )
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array([1, 2, 3]), "tags": pa.array(['["a"]', '["a", null]', "[]"])}
    )
    out = conform(batch, schema, to_arrow_schema(schema))
    assert out.batch.column("id").to_pylist() == [1, 3]
    assert [(i.row, i.field, i.reason) for i in out.invalid] == [
        (1, "tags", "null in non-nullable field 'tags.<item>'")
    ]
