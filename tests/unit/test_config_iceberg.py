"""The Iceberg catalog settings: the operator's URL and the Secret Job pods read it from."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeop.config import ConfigError, Settings
from lakeop.core.spec.sources import SecretKeyRef


def test_no_catalog_by_default(tmp_path: Path) -> None:
    s = Settings.from_env({}, tmp_path)
    assert (s.iceberg_catalog_uri, s.iceberg_catalog_secret) == (None, None)


def test_url_and_secret(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "LAKEOP_ICEBERG_CATALOG_URI": "postgresql://u:pw@pg/lake",
            "LAKEOP_ICEBERG_CATALOG_SECRET": "lake-catalog/dsn",
        },
        tmp_path,
    )
    assert s.iceberg_catalog_uri == "postgresql://u:pw@pg/lake"
    assert s.iceberg_catalog_secret == SecretKeyRef("lake-catalog", "dsn")
    assert "pw@pg" not in repr(s)  # never in a repr (a log line of the settings)


def test_the_secret_key_defaults_to_uri(tmp_path: Path) -> None:
    s = Settings.from_env({"LAKEOP_ICEBERG_CATALOG_SECRET": "lake-catalog"}, tmp_path)
    assert s.iceberg_catalog_secret == SecretKeyRef("lake-catalog", "uri")


def test_a_url_without_a_secret_for_the_pods_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LAKEOP_ICEBERG_CATALOG_SECRET is not"):
        Settings.from_env({"LAKEOP_ICEBERG_CATALOG_URI": "sqlite:///x.db"}, tmp_path)


@pytest.mark.parametrize("raw", ["Lake_Catalog", "a/b/c", "a/", "/uri"])
def test_a_bad_secret_reference_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="LAKEOP_ICEBERG_CATALOG_SECRET"):
        Settings.from_env({"LAKEOP_ICEBERG_CATALOG_SECRET": raw}, tmp_path)
