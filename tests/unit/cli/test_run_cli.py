"""``lakeop run`` turns its options into a ``kopf run`` command line."""

from __future__ import annotations

from lakeop.cli.run import kopf_argv
from lakeop.config import Settings


def test_all_namespaces_by_default() -> None:
    assert kopf_argv([], {}) == ["run", "-m", "lakeop.handlers", "--all-namespaces"]


def test_lakeop_namespace_env_scopes_the_operator() -> None:
    argv = kopf_argv(["--standalone"], {"LAKEOP_NAMESPACE": "a,b"})
    assert argv == [
        "run",
        "-m",
        "lakeop.handlers",
        "--standalone",
        "--namespace",
        "a",
        "--namespace",
        "b",
    ]


def test_explicit_scope_and_kopf_options_pass_through() -> None:
    env: dict[str, str] = {"LAKEOP_NAMESPACE": "ignored"}
    argv = kopf_argv(
        [
            "--standalone",
            "-n",
            "ns1",
            "--liveness",
            "http://0.0.0.0:8080/healthz",
            "--webhook-port",
            "9443",
        ],
        env,
    )
    assert argv == [
        "run",
        "-m",
        "lakeop.handlers",
        "-m",
        "lakeop.handlers.webhook",
        "--standalone",
        "-n",
        "ns1",
        "--liveness",
        "http://0.0.0.0:8080/healthz",
    ]
    assert env["LAKEOP_WEBHOOK_PORT"] == "9443"


def test_served_namespaces_reach_the_settings() -> None:
    env: dict[str, str] = {}
    kopf_argv(["--namespace", "team-*", "-n=ops"], env)
    settings = Settings.from_env(env)
    assert settings.served_namespaces == ("team-*", "ops")
    assert settings.serves("team-a")
    assert settings.serves("ops")
    assert not settings.serves("other")
    kopf_argv(["--all-namespaces"], env)
    assert Settings.from_env(env).serves("anything")
