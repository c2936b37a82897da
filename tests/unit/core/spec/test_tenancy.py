"""Per-namespace location fences: one row per rule of ``LAKEOP_ALLOWED_LOCATIONS``."""

from __future__ import annotations

import pytest

from lakeop.core.spec.tenancy import (
    AllowedLocation,
    AllowedLocations,
    InvalidAllowedLocationsError,
    LocationError,
    check_location,
    location_problem,
    normalise_location,
    parse_allowed_locations,
)

SETTING = """
    s3://lake/{namespace}/
    analytics=s3://warehouse/curated,
    ml=/data/ml/{namespace}
    s3://shared/public
"""


@pytest.mark.parametrize(
    ("namespace", "location", "allowed"),
    [
        ("a", "s3://lake/a/events", True),
        ("a", "s3://lake/a", True),
        ("a", "s3://lake/a/", True),
        ("a", "s3://lake//a///events/", True),
        ("a", "S3://lake/a/./events", True),
        ("a", "s3://lake/b/events", False),  # a cannot point into b's prefix
        ("b", "s3://lake/b/events", True),
        ("a", "s3://lake/ab/events", False),  # whole segments only
        ("a", "s3://lake/a/../b/events", False),  # traversal refused
        ("a", "s3://lake/a/%2e%2E/b", False),  # percent-encoded traversal refused
        ("a", "s3://lake/a/..", False),
        ("a", "s3://lake", False),
        ("a", "s3://lakehouse/a", False),
        ("analytics", "s3://warehouse/curated/t1", True),
        ("a", "s3://warehouse/curated/t1", False),  # entry restricted to analytics
        ("analytics", "s3://warehouse/raw", False),
        ("ml", "/data/ml/ml/features", True),
        ("ml", "file:///data/ml/ml/features", True),
        ("ml", "file:///data/ml/other", False),
        ("a", "/data/ml/a/features", False),  # the ml entry is ml's alone
        ("a", "s3://shared/public/x", True),
        ("a", "s3://shared/private/x", False),
        ("a", "relative/path", False),
        ("a", "s3:///no-bucket", False),
    ],
)
def test_check_location(namespace: str, location: str, allowed: bool) -> None:
    fence = parse_allowed_locations(SETTING)
    message = check_location(namespace, location, fence)
    assert (message is None) is allowed, message


def test_refusal_names_namespace_location_and_allowed_prefixes() -> None:
    fence = parse_allowed_locations("s3://lake/{namespace}/")
    message = check_location("a", "s3://lake/b/events", fence)
    assert message is not None
    assert "'a'" in message
    assert "'s3://lake/b/events'" in message
    assert "s3://lake/a" in message


def test_namespace_without_any_entry_is_told_so() -> None:
    fence = parse_allowed_locations("analytics=s3://warehouse/")
    message = check_location("other", "s3://warehouse/x", fence)
    assert message is not None
    assert "no location" in message


def test_traversal_message_says_why() -> None:
    fence = parse_allowed_locations("s3://lake/{namespace}")
    message = check_location("a", "s3://lake/a/../b", fence)
    assert message is not None
    assert "'..'" in message


@pytest.mark.parametrize("setting", [None, "", "  \n ", ","])
def test_unset_means_unrestricted(setting: str | None) -> None:
    fence = parse_allowed_locations(setting)
    assert fence.unrestricted
    assert check_location("a", "s3://anything/at/all", fence) is None


def test_parse_keeps_order_and_namespaces() -> None:
    fence = parse_allowed_locations("s3://x/{namespace}, team-1=s3://y/z, s3://q/a=b")
    assert fence.entries == (
        AllowedLocation("s3://x/{namespace}"),
        AllowedLocation("s3://y/z", namespace="team-1"),
        AllowedLocation("s3://q/a=b"),  # "=" inside a URL path is not a namespace restriction
    )
    assert fence.prefixes_for("team-1") == ["s3://x/team-1", "s3://y/z", "s3://q/a=b"]
    assert AllowedLocations().prefixes_for("a") == []


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("Bad_NS=s3://x/", "'Bad_NS' is not a namespace name"),
        ("a=", "empty prefix"),
        ("relative/prefix", "neither a URL"),
        ("s3://lake/../x", "'..' segment"),
        ("s3://", "no bucket"),
    ],
)
def test_parse_rejects_bad_entries(setting: str, fragment: str) -> None:
    with pytest.raises(InvalidAllowedLocationsError) as caught:
        parse_allowed_locations(setting)
    assert fragment in str(caught.value)
    assert caught.value.reason == "InvalidConfiguration"


@pytest.mark.parametrize(
    ("location", "normalised"),
    [
        ("s3://b/p/", "s3://b/p"),
        ("S3://b//p/./q", "s3://b/p/q"),
        ("/data/lake/", "file:///data/lake"),
        ("file:///data//lake", "file:///data/lake"),
        ("gs://bucket", "gs://bucket/"),
    ],
)
def test_normalise_location(location: str, normalised: str) -> None:
    assert normalise_location(location) == normalised


@pytest.mark.parametrize("location", ["x/y", "file://relative", "s3://b/a/../c"])
def test_normalise_refuses(location: str) -> None:
    with pytest.raises(LocationError):
        normalise_location(location)


# A symbolic link under an allowed prefix: /lake/a/escape -> /lake/b. ``resolve`` stands for
# the edge's realpath (lakeop.storage.real_location), here a fixed mapping.
LINKS = {
    "file:///lake/a/escape/t": "file:///lake/b/t",
    "file:///lake/a/t": "file:///lake/a/t",
    "file:///lake/a": "file:///lake/a",
    "file:///mnt/real/a/t": "file:///mnt/real/a/t",
}
LINKED = parse_allowed_locations("/lake/{namespace}")


def resolve(location: str) -> str:
    return LINKS.get(location, location)


def test_symbolic_link_out_of_the_prefix_is_refused() -> None:
    message = check_location("a", "/lake/a/escape/t", LINKED, resolve)
    assert message == (
        "location '/lake/a/escape/t' is not allowed for namespace 'a': it leads to "
        "'file:///lake/b/t' through a symbolic link, outside file:///lake/a"
    )
    assert check_location("a", "/lake/a/escape/t", LINKED) is None  # unresolved: looks fine
    assert check_location("a", "/lake/a/t", LINKED, resolve) is None


def test_a_prefix_that_is_itself_a_link_is_compared_resolved() -> None:
    # /data/a -> /mnt/real/a: a location under it leads under where the prefix leads
    links = {"file:///data/a": "file:///mnt/real/a", "file:///data/a/t": "file:///mnt/real/a/t"}
    allowed = parse_allowed_locations("/data/{namespace}")
    assert check_location("a", "/data/a/t", allowed, lambda p: links.get(p, p)) is None


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ("file://typo/lake", "'typo' would be read as a host name"),
        ("file:lake", "is neither a URL"),
        ("lake/t", "is neither a URL"),
        ("s3:///t", "has no bucket or host"),
        ("file:///a/%2e%2e/b", "contains a '..' segment"),
        ("gs://bucket/t", "the scheme must be file:// or s3://"),
    ],
)
def test_location_problem(location: str, fragment: str) -> None:
    problem = location_problem(location)
    assert problem is not None and fragment in problem and repr(location) in problem


@pytest.mark.parametrize("location", ["file:///lake/t", "/lake/t", "s3://bucket/t", "s3://b"])
def test_location_problem_accepts(location: str) -> None:
    assert location_problem(location) is None
