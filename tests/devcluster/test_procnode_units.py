"""Unit tests of the process node's pure rules: environment, paths, termination messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from procnode import status
from procnode.envresolve import (
    ContainerConfigError,
    PathMap,
    container_argv,
    expand,
    field_value,
    resolve_env,
    resource_value,
    volume_env_name,
)
from procnode.logserver import tail_lines

POD: dict[str, Any] = {
    "metadata": {
        "name": "p1",
        "namespace": "ns1",
        "uid": "u-1",
        "labels": {"app": "demo", "tier": "x"},
        "annotations": {"batch.kubernetes.io/job-completion-index": "2"},
    },
    "spec": {"nodeName": "devnode", "serviceAccountName": "default"},
}
DATA = {
    ("ConfigMap", "ns1", "cm"): {"A": "1", "B": "2", "bad key": "skipped"},
    ("Secret", "ns1", "sec"): {"PASSWORD": "pw", "USER": "u"},
}


def lookup(kind: str, namespace: str, name: str) -> dict[str, str] | None:
    return DATA.get((kind, namespace, name))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)-x", "1-x"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("cost $5", "cost $5"),
        ("$(A", "$(A"),
        ("$(A)$(B)", "12"),
        ("", ""),
    ],
)
def test_expand(value: str, expected: str) -> None:
    assert expand(value, {"A": "1", "B": "2"}) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "p1"),
        ("metadata.namespace", "ns1"),
        ("metadata.uid", "u-1"),
        ("metadata.labels['app']", "demo"),
        ("metadata.annotations['batch.kubernetes.io/job-completion-index']", "2"),
        ("metadata.labels", 'app="demo"\ntier="x"'),
        ("spec.nodeName", "devnode"),
        ("spec.serviceAccountName", "default"),
        ("status.podIP", "127.0.0.1"),
        ("status.hostIP", "127.0.0.1"),
    ],
)
def test_field_value(path: str, expected: str) -> None:
    assert field_value(POD, path) == expected


def test_field_value_unsupported_path_names_it() -> None:
    with pytest.raises(ContainerConfigError, match=r"spec\.nope"):
        field_value(POD, "spec.nope")


def test_env_from_with_prefix_then_env_overrides_in_order() -> None:
    container = {
        "name": "c",
        "envFrom": [
            {"configMapRef": {"name": "cm"}, "prefix": "CM_"},
            {"secretRef": {"name": "sec"}},
        ],
        "env": [
            {"name": "USER", "value": "override"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "REF", "value": "$(POD)/$(CM_A)/$(NOPE)"},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "B"}}},
            {"name": "EMPTY"},
        ],
    }
    env = resolve_env(POD, container, lookup)
    assert env == {
        "CM_A": "1",
        "CM_B": "2",
        "PASSWORD": "pw",
        "USER": "override",
        "POD": "p1",
        "REF": "p1/1/$(NOPE)",
        "PW": "pw",
        "B": "2",
        "EMPTY": "",
    }


def test_service_env_is_visible_to_expansion_only() -> None:
    container = {"name": "c", "env": [{"name": "URL", "value": "https://$(HOST)"}]}
    assert resolve_env(POD, container, lookup, {"HOST": "h"}) == {"URL": "https://h"}


@pytest.mark.parametrize(
    "ref",
    [
        {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
        {"secretKeyRef": {"name": "sec", "key": "absent", "optional": True}},
        {"configMapKeyRef": {"name": "cm", "key": "absent", "optional": True}},
    ],
)
def test_optional_missing_reference_leaves_variable_unset(ref: dict[str, Any]) -> None:
    container = {"name": "c", "env": [{"name": "X", "valueFrom": ref}]}
    assert resolve_env(POD, container, lookup) == {}


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            {
                "name": "c",
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}],
            },
            'secret "gone" not found in namespace ns1',
        ),
        (
            {
                "name": "c",
                "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "Z"}}}
                ],
            },
            "couldn't find key Z in ConfigMap ns1/cm",
        ),
        ({"name": "c", "envFrom": [{"secretRef": {"name": "gone"}}]}, 'secret "gone" not found'),
    ],
)
def test_missing_reference_is_a_config_error(container: dict[str, Any], message: str) -> None:
    with pytest.raises(ContainerConfigError, match=message):
        resolve_env(POD, container, lookup)


def test_optional_env_from_is_skipped() -> None:
    container = {"name": "c", "envFrom": [{"secretRef": {"name": "gone", "optional": True}}]}
    assert resolve_env(POD, container, lookup) == {}


@pytest.mark.parametrize(
    ("resource", "divisor", "expected"),
    [
        ("limits.cpu", "1", "2"),
        ("requests.cpu", "1m", "500"),
        ("limits.memory", "1Mi", "64"),
        ("requests.memory", "1", "67108864"),
    ],
)
def test_resource_field_ref(resource: str, divisor: str, expected: str) -> None:
    container = {
        "resources": {"limits": {"cpu": "2", "memory": "64Mi"}, "requests": {"cpu": "500m"}}
    }
    ref = {"resource": resource, "divisor": divisor}
    assert resource_value(container, ref, {"cpu": "32"}) == expected


def test_path_map_rewrites_prefixes_longest_first() -> None:
    paths = PathMap({"/data": "/tmp/v1", "/data/deep": "/tmp/v2", "/dev/termination-log": "/tmp/t"})
    assert paths.rewrite("/data") == "/tmp/v1"
    assert paths.rewrite("/data/x/y.txt") == "/tmp/v1/x/y.txt"
    assert paths.rewrite("/data/deep/z") == "/tmp/v2/z"
    assert paths.rewrite("/database") == "/database"
    assert paths.rewrite("/dev/termination-log") == "/tmp/t"
    assert paths.rewrite("--out=/data/x") == "--out=/data/x"


def test_container_argv_expands_and_rewrites() -> None:
    container = {
        "name": "c",
        "command": ["lakeop", "ingest"],
        "args": ["--termination-log", "/dev/termination-log", "$(N)"],
    }
    argv = container_argv(container, {"N": "7"}, PathMap({"/dev/termination-log": "/tmp/t"}))
    assert argv == ["lakeop", "ingest", "--termination-log", "/tmp/t", "7"]


def test_container_without_command_is_rejected_with_its_name() -> None:
    with pytest.raises(ContainerConfigError, match="container web: no command"):
        container_argv({"name": "web", "image": "nginx"}, {}, PathMap({}))


def test_volume_env_name() -> None:
    assert volume_env_name("scratch-space.1") == "DEVNODE_VOLUME_SCRATCH_SPACE_1"


def test_exit_code_of_signal() -> None:
    assert status.exit_code_of(-15) == 143
    assert status.exit_code_of(-9) == 137
    assert status.exit_code_of(3) == 3


def test_termination_message_from_file_capped(tmp_path: Path) -> None:
    msg, logf = tmp_path / "msg", tmp_path / "log"
    msg.write_text("x" * 5000)
    assert len(status.termination_message(msg, logf, "File", 0)) == 4096


def test_fallback_to_logs_only_on_error_and_empty_file(tmp_path: Path) -> None:
    msg, logf = tmp_path / "msg", tmp_path / "log"
    msg.write_text("")
    logf.write_text("".join(f"line {i}\n" for i in range(200)))
    assert status.termination_message(msg, logf, "FallbackToLogsOnError", 0) == ""
    assert status.termination_message(msg, logf, "File", 1) == ""
    tail = status.termination_message(msg, logf, "FallbackToLogsOnError", 1)
    assert tail.endswith("line 199\n")
    assert tail.count("\n") == 80
    logf.write_text("y" * 3000)
    assert len(status.termination_message(msg, logf, "FallbackToLogsOnError", 1)) == 2048
    msg.write_text("from file")
    assert status.termination_message(msg, logf, "FallbackToLogsOnError", 1) == "from file"


def test_terminated_state_reason() -> None:
    ok = status.terminated(0, "t0", "process://1")["terminated"]
    bad = status.terminated(2, "t0", "", message="m")["terminated"]
    assert (ok["reason"], ok["containerID"], "message" in ok) == ("Completed", "process://1", False)
    assert (bad["reason"], bad["exitCode"], bad["message"]) == ("Error", 2, "m")


def test_tail_lines_for_kubectl_logs() -> None:
    data = b"a\nb\nc\n"
    assert tail_lines(data, 2) == b"b\nc\n"
    assert tail_lines(data, 10) == data
    assert tail_lines(data, 0) == b""
