"""The command line as a person meets it: ``--version``, help without the pods' options,
``lakeop run``'s own help, one local default location, YAML errors at a line, plurals."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeop import __version__
from lakeop.cli import build_parser, main
from lakeop.cli.manifests import ManifestError, load_file
from lakeop.cli.options import counted, local_root
from lakeop.config import Settings

POD_FLAGS = ("--plan-env", "--termination-log", "--run-id")


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"lakeop {__version__}"


@pytest.mark.parametrize("command", ["ingest", "compact", "expire"])
def test_pod_only_flags_are_hidden_but_accepted(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(capsys, command)
    assert "--default-location" in text and "./lake" in text
    for flag in POD_FLAGS:
        assert flag not in text, text
    args = build_parser(command).parse_args(
        [command, "--plan-env", "P", "--termination-log", "/t", "--run-id", "r-1"]
    )
    assert (args.plan_env, args.termination_log, args.run_id) == ("P", "/t", "r-1")


def test_run_help_is_lakeops_own(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "run")
    assert text.startswith("usage: lakeop run")
    assert "Start the lakeop operator" in text
    for flag, words in [
        ("--namespace", "watch this namespace"),
        ("--webhook-port", "validating webhook"),
        ("--standalone", "peering"),
        ("--log-format", "log line format"),
    ]:
        assert flag in text and words in text, flag
    assert "kopf" not in text.lower()


def test_one_local_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli_root = local_root(None, {})
    operator_root = Settings.from_env({}, cwd=tmp_path).default_location
    assert cli_root == str(tmp_path.resolve() / "lake")
    assert operator_root == (tmp_path.resolve() / "lake").as_uri()
    assert local_root(None, {"LAKEOP_DEFAULT_LOCATION": "s3://b/x"}) == "s3://b/x"
    assert local_root("file:///o", {"LAKEOP_DEFAULT_LOCATION": "s3://b/x"}) == "file:///o"


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "table.yaml"
    bad.write_text("kind: Table\nmetadata:\n  name: t\n  labels: {a: 1\nspec: {}\n")
    with pytest.raises(ManifestError) as err:
        load_file(str(bad))
    message = str(err.value)
    assert message.startswith(f"{bad}:"), message
    line = int(message.split(":")[1])
    assert 4 <= line <= 5, message  # the unclosed mapping (PyYAML marks where it noticed)
    assert "<unicode string>" not in message and "\n" not in message


def test_ingest_names_the_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text("kind: IngestionJob\n  spec: [\n")
    assert main(["ingest", "-f", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err, err


@pytest.mark.parametrize(
    ("n", "noun", "text"),
    [
        (0, "file", "0 files"),
        (1, "file", "1 file"),
        (2, "file", "2 files"),
        (1234, "row", "1,234 rows"),
    ],
)
def test_counted(n: int, noun: str, text: str) -> None:
    assert counted(n, noun) == text
