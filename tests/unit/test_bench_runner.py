"""bench/run.py reports a benchmark that stops with ``sys.exit("why")``: the reason is
printed and the run counts as failed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _runner() -> object:
    spec = importlib.util.spec_from_file_location("lakeop_bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_benchmark_exit_message_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stops_bench.py").write_text(
        "import sys\n\ndef main():\n    sys.exit('postgres is not reachable on port 5432')\n"
    )
    (tmp_path / "fine_bench.py").write_text("def main():\n    return 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = _runner()
    assert run.main(["fine_bench"]) == 0  # type: ignore[attr-defined]
    assert run.main(["stops_bench"]) == 1  # type: ignore[attr-defined]
    err = capsys.readouterr().err
    assert "stops_bench: postgres is not reachable on port 5432" in err
    for name in ("stops_bench", "fine_bench"):
        sys.modules.pop(name, None)
