"""LAKEOP_WEBHOOK_MANAGED: in a cluster the webhook configuration comes with the manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeop.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("value", "managed"),
    [(None, True), ("", True), ("true", True), ("1", True), ("False", False), ("no", False)],
)
def test_webhook_managed(value: str | None, managed: bool, tmp_path: Path) -> None:
    env = {} if value is None else {"LAKEOP_WEBHOOK_MANAGED": value}
    assert Settings.from_env(env, cwd=tmp_path).webhook_managed is managed


def test_webhook_managed_rejects_other_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LAKEOP_WEBHOOK_MANAGED: expected true or false"):
        Settings.from_env({"LAKEOP_WEBHOOK_MANAGED": "maybe"}, cwd=tmp_path)
