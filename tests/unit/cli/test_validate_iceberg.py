"""``lakeop validate`` checks ``spec.iceberg`` with the webhook's rule
(:func:`lakeop.core.runs.admission.check_table_iceberg`): identifiers fenced, the
catalogSecretRef's shape, and an s3:// Iceberg table with no catalog refused unless the
environment names an operator default."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeop.cli.crds import packaged_crds_dir
from lakeop.cli.validate import validate_paths

TABLE = """\
apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {{name: orders, namespace: shop}}
spec:
  format: iceberg
  location: {location}
{iceberg}
"""


def check(tmp_path: Path, location: str, iceberg: str = "", **env: str) -> list[str]:
    path = tmp_path / "table.yaml"
    path.write_text(TABLE.format(location=location, iceberg=iceberg))
    report = validate_paths([str(path)], str(packaged_crds_dir()), env)
    return [f"{p.field}: {p.message}" for p in report.problems]


def test_an_s3_table_without_a_catalog_is_a_problem(tmp_path: Path) -> None:
    (problem,) = check(tmp_path, "s3://lake/shop/orders")
    assert problem.startswith("spec.iceberg.catalogSecretRef: an s3:// Iceberg table needs")


@pytest.mark.parametrize(
    ("iceberg", "env"),
    [
        ("  iceberg: {catalogSecretRef: {name: lake-catalog, key: uri}}", {}),
        ("", {"LAKEOP_ICEBERG_CATALOG_SECRET": "lake-catalog/uri"}),
        ("", {"LAKEOP_ICEBERG_CATALOG_URI": "postgresql://pg/lake"}),
    ],
)
def test_a_catalog_makes_an_s3_table_valid(
    tmp_path: Path, iceberg: str, env: dict[str, str]
) -> None:
    assert check(tmp_path, "s3://lake/shop/orders", iceberg, **env) == []


def test_a_file_table_uses_the_embedded_catalog(tmp_path: Path) -> None:
    assert check(tmp_path, (tmp_path / "lake").as_uri()) == []


def test_an_s3_default_location_counts_too(tmp_path: Path) -> None:
    path = tmp_path / "table.yaml"
    path.write_text(TABLE.format(location="s3://x", iceberg="").replace("  location: s3://x\n", ""))
    env = {"LAKEOP_DEFAULT_LOCATION": "s3://lake"}
    (problem,) = validate_paths([str(path)], str(packaged_crds_dir()), env).problems
    assert "an s3:// Iceberg table needs a SQL catalog" in problem.message


@pytest.mark.parametrize(
    ("iceberg", "says"),
    [
        ("  iceberg: {namespace: ../etc}", "spec.iceberg"),
        ("  iceberg: {name: Orders}", "spec.iceberg"),
    ],
)
def test_bad_identifiers_are_problems(tmp_path: Path, iceberg: str, says: str) -> None:
    (problem,) = check(tmp_path, (tmp_path / "lake").as_uri(), iceberg)
    assert says in problem
