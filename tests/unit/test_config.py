"""Operator settings from LAKEOP_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeop.config import ConfigError, Settings


def test_defaults_put_the_lake_under_the_working_directory(tmp_path: Path) -> None:
    s = Settings.from_env({}, cwd=tmp_path)
    assert (
        s.default_location == f"file://{tmp_path.resolve()}/lake"
    )  # the CLI's default too (lakeop.cli.options)
    assert s.allowed_locations.unrestricted
    assert s.max_concurrent_runs == 10
    assert s.webhook_port is None
    assert s.namespaces == ()


def test_values_are_read_and_normalised(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "LAKEOP_DEFAULT_LOCATION": "s3://lake//root/",
            "LAKEOP_ALLOWED_LOCATIONS": "s3://lake/root/{namespace}",
            "LAKEOP_JOB_IMAGE": "registry/lakeop:1",
            "LAKEOP_MAX_CONCURRENT_RUNS": "3",
            "LAKEOP_NAMESPACE": "a, b",
            "LAKEOP_WEBHOOK_PORT": "9443",
            "LAKEOP_JOB_TTL_SECONDS": "60",
        },
        cwd=tmp_path,
    )
    assert s.default_location == "s3://lake/root"
    assert s.allowed_locations.prefixes_for("a") == ["s3://lake/root/a"]
    assert (s.job_image, s.max_concurrent_runs, s.webhook_port) == ("registry/lakeop:1", 3, 9443)
    assert s.namespaces == ("a", "b")
    assert s.job_ttl_seconds == 60
    assert Settings.from_env({}, cwd=tmp_path).job_claim_lease_seconds == 600
    lease = {"LAKEOP_JOB_CLAIM_LEASE_SECONDS": "900"}
    assert Settings.from_env(lease, cwd=tmp_path).job_claim_lease_seconds == 900


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LAKEOP_MAX_CONCURRENT_RUNS", "many"),
        ("LAKEOP_MAX_CONCURRENT_RUNS", "-1"),
        ("LAKEOP_DEFAULT_LOCATION", "relative/dir"),
        ("LAKEOP_JOB_CLAIM_LEASE_SECONDS", "0"),
        ("LAKEOP_JOB_CLAIM_LEASE_SECONDS", "soon"),
    ],
)
def test_bad_values_name_the_variable(key: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.from_env({key: value}, cwd=tmp_path)


def test_the_lake_volume_and_mount_checks(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "LAKEOP_LAKE_VOLUME": '{"persistentVolumeClaim": {"claimName": "lake"}}',
            "LAKEOP_LAKE_MOUNT_PATH": "/var/lib/lakeop/lake/",
        },
        cwd=tmp_path,
    )
    assert s.lake_volume == {"persistentVolumeClaim": {"claimName": "lake"}}
    assert s.lake_mount_path == "/var/lib/lakeop/lake"
    assert s.require_mounts is False  # outside a pod Job pods may share the filesystem
    in_pod = Settings.from_env({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, cwd=tmp_path)
    assert in_pod.require_mounts is True
    assert (in_pod.lake_volume, in_pod.lake_mount_path) == (None, None)
    forced = Settings.from_env(
        {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "LAKEOP_REQUIRE_MOUNTS": "false"}, cwd=tmp_path
    )
    assert forced.require_mounts is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEOP_LAKE_VOLUME": '{"emptyDir": {}}'}, "go together"),
        ({"LAKEOP_LAKE_MOUNT_PATH": "/lake"}, "go together"),
        ({"LAKEOP_LAKE_VOLUME": "{nope", "LAKEOP_LAKE_MOUNT_PATH": "/l"}, "not JSON"),
        (
            {"LAKEOP_LAKE_VOLUME": '{"name": "x", "emptyDir": {}}', "LAKEOP_LAKE_MOUNT_PATH": "/l"},
            "without a name",
        ),
        ({"LAKEOP_LAKE_VOLUME": '{"emptyDir": {}}', "LAKEOP_LAKE_MOUNT_PATH": "lake"}, "absolute"),
        ({"LAKEOP_LAKE_VOLUME": '{"emptyDir": {}}', "LAKEOP_LAKE_MOUNT_PATH": "/"}, "absolute"),
        ({"LAKEOP_REQUIRE_MOUNTS": "sometimes"}, "true or false"),
    ],
)
def test_bad_lake_settings_are_refused(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, cwd=tmp_path)
