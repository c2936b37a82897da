"""``lakeop run`` turns its options and LAKEOP_* into the operator's Settings and kopf scope,
with nothing written back into the environment."""

from __future__ import annotations

import argparse

import pytest

from lakeop.cli.run import Scope, add_arguments, configure


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_all_namespaces_by_default() -> None:
    settings, scope = configure(parse(), {})
    assert scope == Scope(namespaces=(), clusterwide=True)
    assert settings.served_namespaces == ()
    assert settings.serves("anything")


def test_lakeop_namespace_env_scopes_the_operator() -> None:
    settings, scope = configure(parse("--standalone"), {"LAKEOP_NAMESPACE": "a,b"})
    assert scope == Scope(namespaces=("a", "b"), clusterwide=False, standalone=True)
    assert settings.served_namespaces == ("a", "b")
    assert not settings.serves("c")


def test_explicit_scope_and_kopf_options() -> None:
    env = {"LAKEOP_NAMESPACE": "ignored"}
    args = parse(
        "--standalone",
        "-n",
        "ns1",
        "--liveness",
        "http://0.0.0.0:8080/healthz",
        "--webhook-port",
        "9443",
        "--peering=lakeop",
        "--priority=5",
    )
    settings, scope = configure(args, env)
    assert scope == Scope(
        namespaces=("ns1",),
        clusterwide=False,
        standalone=True,
        peering_name="lakeop",
        priority=5,
        liveness_endpoint="http://0.0.0.0:8080/healthz",
    )
    assert settings.webhook_port == 9443
    assert env == {"LAKEOP_NAMESPACE": "ignored"}  # nothing travels through the environment


def test_webhook_port_from_the_environment_and_dev_priority() -> None:
    settings, scope = configure(parse("--dev", "-A"), {"LAKEOP_WEBHOOK_PORT": "8443"})
    assert settings.webhook_port == 8443
    assert scope.priority == 666
    assert scope.clusterwide


def test_served_namespaces_reach_the_settings() -> None:
    settings, _scope = configure(parse("--namespace", "team-*", "-n", "ops"), {})
    assert settings.served_namespaces == ("team-*", "ops")
    assert settings.serves("team-a")
    assert settings.serves("ops")
    assert not settings.serves("other")
    settings, _scope = configure(parse("--all-namespaces"), {})
    assert settings.serves("anything")


def test_namespace_and_all_namespaces_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        parse("-n", "a", "-A")
