"""LocationNotMounted: which file:// paths a Job pod's volumes cover."""

from __future__ import annotations

import pytest

from lakeop.core.runs.jobs import JobParams, build_job
from lakeop.core.runs.mounts import (
    LocationNotMountedError,
    covered,
    fixed_part,
    local_path,
    pod_mount_paths,
    require_mounted,
)
from lakeop.core.spec.podtemplate import parse_pod_template
from lakeop.core.spec.resources import ObjectKey


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///lake/analytics/events", "/lake/analytics/events"),
        ("file:///lake//a/../b/", "/lake/b"),
        ("file:///with%20space/x", "/with space/x"),
        ("/plain/abs", "/plain/abs"),
        ("s3://bucket/prefix", None),
        ("https://host/file.csv", None),
    ],
)
def test_local_path(url: str, path: str | None) -> None:
    assert local_path(url) == path


@pytest.mark.parametrize(
    ("path", "fixed"),
    [
        ("/landing/2026-*.csv", "/landing"),
        ("/landing/**/x.json", "/landing"),
        ("/landing/day=0?/a.csv", "/landing"),
        ("/landing/[ab].csv", "/landing"),
        ("/*.csv", "/"),
        ("/landing/a.csv", "/landing/a.csv"),
    ],
)
def test_fixed_part_stops_at_the_first_glob(path: str, fixed: str) -> None:
    assert fixed_part(path) == fixed


@pytest.mark.parametrize(
    ("path", "mounts", "expected"),
    [
        ("/lake/a", ["/lake"], True),
        ("/lake", ["/lake/"], True),
        ("/lakehouse/a", ["/lake"], False),  # a prefix of the name is not a parent
        ("/data/x", ["/lake", "/data"], True),
        ("/lake", ["/lake/a"], False),
        ("/x", [], False),
    ],
)
def test_covered(path: str, mounts: list[str], expected: bool) -> None:
    assert covered(path, mounts) is expected


def test_pod_mount_paths_are_the_lake_volume_and_the_templates() -> None:
    template = parse_pod_template(
        ObjectKey("IngestionJob", "analytics", "daily"),
        {
            "spec": {
                "volumes": [{"name": "landing", "persistentVolumeClaim": {"claimName": "in"}}],
                "containers": [
                    {"name": "ingest", "volumeMounts": [{"name": "landing", "mountPath": "/in"}]}
                ],
            }
        },
    )
    assert pod_mount_paths(template, "/lake") == ["/lake", "/in"]
    assert pod_mount_paths(None, None) == []


def test_a_path_no_mount_covers_is_named() -> None:
    with pytest.raises(LocationNotMountedError) as info:
        require_mounted(
            "IngestionJob analytics/daily",
            {"spec.source.uri": "file:///landing/2026-*.csv", "table location": "s3://lake/a"},
            ["/lake"],
        )
    assert info.value.reason == "LocationNotMounted"
    message = str(info.value)
    assert message.startswith(
        "IngestionJob analytics/daily: spec.source.uri file:///landing/2026-*.csv: "
        "no volume of the Job pods covers /landing (their mounts: /lake)"
    )


def test_mounted_paths_and_other_schemes_pass() -> None:
    require_mounted(
        "IngestionJob analytics/daily",
        {
            "spec.source.uri": "file:///in/x/*.csv",
            "table location": "file:///lake/analytics/events",
            "other": "s3://bucket/x",
            "absent": None,
        },
        ["/lake", "/in"],
    )


def test_with_no_mount_at_all_the_message_says_so() -> None:
    with pytest.raises(LocationNotMountedError, match="none besides lakeop's scratch directory"):
        require_mounted("Table analytics/events", {"location": "file:///var/lake/x"}, [])


def test_the_lake_volume_reaches_the_job_pod_at_its_path() -> None:
    params = JobParams(
        namespace="analytics",
        ingestion_job="daily",
        ingestion_job_uid="0000",
        run=1,
        table="events",
        plan_json="{}",
        image="lakeop:test",
        lake_volume={"persistentVolumeClaim": {"claimName": "lake"}},
        lake_mount_path="/var/lib/lakeop/lake",
    )
    pod = build_job(params)["spec"]["template"]["spec"]
    assert {"name": "lakeop-lake", "persistentVolumeClaim": {"claimName": "lake"}} in pod["volumes"]
    (ingest,) = pod["containers"]
    assert {"name": "lakeop-lake", "mountPath": "/var/lib/lakeop/lake"} in ingest["volumeMounts"]
    bare = build_job(JobParams(**{**params.__dict__, "lake_volume": None}))
    assert [v["name"] for v in bare["spec"]["template"]["spec"]["volumes"]] == ["scratch"]
