"""The operator's location fence on a real filesystem: the Table reconciler's
``location_of`` and the validating webhook both resolve symbolic links before comparing
with ``LAKEOP_ALLOWED_LOCATIONS`` (the pure rule is table-tested in tests/unit/core)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import kopf
import pytest

from lakeop.config import Settings
from lakeop.core.spec.resources import parse_table
from lakeop.core.spec.tenancy import parse_allowed_locations
from lakeop.handlers.table import LocationRefusedError, location_of
from lakeop.handlers.webhook import validate_table
from lakeop.storage import real_location


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """<tmp>/allowed/a/ holds a link ``escape`` to <tmp>/outside."""
    (tmp_path / "allowed" / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "allowed" / "a" / "escape").symlink_to(tmp_path / "outside")
    return tmp_path


def settings(lake: Path) -> Settings:
    return Settings(
        default_location=f"file://{lake}/allowed",
        allowed_locations=parse_allowed_locations(f"file://{lake}/allowed/{{namespace}}"),
    )


def table(location: str) -> dict[str, object]:
    return {
        "apiVersion": "lakeop.io/v1alpha1",
        "kind": "Table",
        "metadata": {"name": "t", "namespace": "a"},
        "spec": {"location": location},
    }


def test_real_location_resolves_links_as_far_as_the_path_exists(lake: Path) -> None:
    assert real_location(f"file://{lake}/allowed/a/escape/t/x") == f"file://{lake}/outside/t/x"
    assert real_location(f"file://{lake}/allowed/a/new") == f"file://{lake}/allowed/a/new"
    assert real_location("s3://bucket/a/t") == "s3://bucket/a/t"


def test_reconciler_refuses_a_link_out_of_the_prefix(lake: Path) -> None:
    spec = parse_table(table(f"file://{lake}/allowed/a/escape/t"))
    with pytest.raises(LocationRefusedError) as e:
        location_of(spec, settings(lake))
    assert str(e.value) == (
        f"Table a/t: location 'file://{lake}/allowed/a/escape/t' is not allowed for namespace "
        f"'a': it leads to 'file://{lake}/outside/t' through a symbolic link, outside "
        f"file://{lake}/allowed/a"
    )
    good = parse_table(table(f"file://{lake}/allowed/a/t"))
    assert location_of(good, settings(lake)) == f"file://{lake}/allowed/a/t"


def test_webhook_refuses_a_link_out_of_the_prefix(lake: Path) -> None:
    memo = {"settings": settings(lake)}
    body = kopf.Body(table(f"file://{lake}/allowed/a/escape/t"))  # type: ignore[arg-type]
    with pytest.raises(kopf.AdmissionError, match="through a symbolic link"):
        asyncio.run(validate_table(body=body, memo=memo, name="t", namespace="a"))
    body = kopf.Body(table(f"file://{lake}/allowed/a/t"))  # type: ignore[arg-type]
    asyncio.run(validate_table(body=body, memo=memo, name="t", namespace="a"))
    assert list((lake / "outside").iterdir()) == []
