"""JSON log lines carry the object's namespace/name; plain text stays plain."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeop.logging_setup import JsonFormatter, configure, json_requested, object_extra


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_root")
def test_json_lines_carry_object_ref_and_extras() -> None:
    stream = io.StringIO()
    configure(json=True, stream=stream, static={"component": "operator"})
    log = logging.getLogger("lakeop.test")
    log.info(
        "run %s started",
        "r1",
        extra={**object_extra("analytics", "daily", "IngestionJob"), "runId": "r1"},
    )
    log.warning("no object here")
    first, second = lines(stream)
    assert first["message"] == "run r1 started"
    assert first["level"] == "INFO"
    assert first["logger"] == "lakeop.test"
    assert first["namespace"] == "analytics"
    assert first["name"] == "daily"
    assert first["kind"] == "IngestionJob"
    assert first["runId"] == "r1"
    assert first["component"] == "operator"
    assert str(first["time"]).endswith("+00:00")
    assert "namespace" not in second
    assert "k8s_ref" not in second


@pytest.mark.usefixtures("restore_root")
def test_kopf_style_ref_and_exceptions() -> None:
    stream = io.StringIO()
    configure(json=True, stream=stream)
    ref = {"apiVersion": "lakeop.io/v1alpha1", "kind": "Table", "name": "t", "namespace": "a"}
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("kopf.objects").exception("failed", extra={"k8s_ref": ref})
    (entry,) = lines(stream)
    assert (entry["namespace"], entry["name"], entry["kind"]) == ("a", "t", "Table")
    assert "ValueError: boom" in str(entry["exception"])


@pytest.mark.usefixtures("restore_root")
def test_configure_replaces_handlers_and_plain_text() -> None:
    stream = io.StringIO()
    configure(json=True, stream=io.StringIO())
    configure(json=False, stream=stream)
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("lakeop.x").info("hello")
    assert stream.getvalue().rstrip().endswith("INFO    lakeop.x hello")


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"LAKEOP_LOG_FORMAT": "JSON"}, True), ({"LAKEOP_LOG_FORMAT": "text"}, False)],
)
def test_json_requested(env: dict[str, str], expected: bool) -> None:
    assert json_requested(env) is expected


@pytest.mark.usefixtures("restore_root")
def test_cli_switches_to_json_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakeop.cli import main  # noqa: PLC0415  (the CLI's import is part of what is tested)

    (tmp_path / "empty.yaml").write_text("")
    monkeypatch.setenv("LAKEOP_LOG_FORMAT", "json")
    main(["validate", str(tmp_path)])
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)
    monkeypatch.delenv("LAKEOP_LOG_FORMAT")
    logging.getLogger().handlers[:] = []
    main(["validate", str(tmp_path)])
    assert logging.getLogger().handlers == []
    capsys.readouterr()
