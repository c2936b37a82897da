"""spec.source.sql.splitColumn: parsed, carried in plans, required to scale out a query
without incrementalColumn."""

from __future__ import annotations

from typing import Any

import pytest

from lakeop.core.spec.resources import parse_ingestion_job
from lakeop.core.spec.sources import SqlSourceSpec, parse_source_dict
from lakeop.errors import InvalidSpecError


def job(sql: dict[str, Any], parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "IngestionJob",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {
            "tableRef": "t",
            "source": {"sql": {"urlSecretRef": {"name": "pg", "key": "url"}, "query": "q", **sql}},
            "parallelism": parallelism,
        },
    }


def test_split_column_parsed_and_round_tripped() -> None:
    j = parse_ingestion_job(job({"splitColumn": "id"}, 3))
    assert isinstance(j.source, SqlSourceSpec)
    assert (j.source.split_column, j.source.split_key) == ("id", "id")
    assert parse_source_dict(j.source.to_dict()) == j.source
    inc = parse_ingestion_job(job({"incrementalColumn": "ts"}, 3)).source
    assert isinstance(inc, SqlSourceSpec) and inc.split_key == "ts"


def test_scaled_out_query_needs_a_split_key() -> None:
    with pytest.raises(InvalidSpecError) as err:
        parse_ingestion_job(job({}, 2))
    text = str(err.value)
    assert "IngestionJob shop/orders" in text
    assert "spec.source.sql.splitColumn" in text and "spec.parallelism 2" in text
    assert parse_ingestion_job(job({}, 1)).parallelism == 1


def test_split_column_must_be_a_string() -> None:
    with pytest.raises(InvalidSpecError, match="splitColumn"):
        parse_ingestion_job(job({"splitColumn": 5}, 2))
