"""``lakeop ingest`` stopped by SIGINT or SIGTERM exits ``128 + signal`` wherever the signal
lands, also while a context of the command is being entered or left (the random-kill test
once caught a SIGINT inside the set-up of the engine's log handler: exit 1, a traceback)."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator

import pytest

from lakeop.cli import ingest


@pytest.mark.parametrize("where", ["enter", "exit"])
def test_a_signal_while_a_context_is_entered_or_left_exits_128_plus_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    @contextlib.contextmanager
    def engine_output() -> Iterator[None]:
        if where == "enter":
            signal.raise_signal(signal.SIGINT)  # handled by lakeop's handler: raises Stopped
        yield
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(ingest, "engine_output", engine_output)
    monkeypatch.setattr(ingest, "_run", lambda args, stops: 0)
    code = ingest.run(argparse.Namespace())
    want = signal.SIGINT if where == "enter" else signal.SIGTERM
    assert code == 128 + want
    assert f"lakeop ingest: stopped by {want.name}" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
