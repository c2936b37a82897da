"""The resync timers take their interval from the operator's settings, registered at start-up
(``lakeop run``), not from the environment when the handler modules are imported."""

from __future__ import annotations

import os
import subprocess
import sys

import kopf

from lakeop.config import Settings
from lakeop.handlers import runs, table
from lakeop.handlers.timers import register_timers


def test_the_interval_is_the_settings() -> None:
    settings = Settings.from_env({"LAKEOP_RESYNC_SECONDS": "7"})
    registry = kopf.OperatorRegistry()
    register_timers(settings.resync_seconds, registry)
    timers = {h.fn: h for h in registry._spawning.get_all_handlers()}
    follow, refresh = timers[runs.follow], timers[table.refresh]
    assert (follow.interval, follow.initial_delay) == (7.0, 7.0 / 3)
    assert (refresh.interval, refresh.initial_delay, refresh.idle) == (7.0, 7.0, 7.0)


def test_the_default_is_thirty_seconds() -> None:
    registry = kopf.OperatorRegistry()
    register_timers(Settings.from_env({}).resync_seconds, registry)
    assert {h.interval for h in registry._spawning.get_all_handlers()} == {30.0}


def test_importing_the_handlers_registers_no_resync_timer_and_reads_no_setting() -> None:
    """A fresh interpreter with LAKEOP_RESYNC_SECONDS set: importing lakeop.handlers leaves
    kopf's default registry without the resync timers (lakeop run adds them)."""
    code = (
        "import kopf, lakeop.handlers as h; from lakeop.handlers import runs, table;"
        "fns = {x.fn for x in kopf.get_default_registry()._spawning.get_all_handlers()};"
        "print(runs.follow in fns, table.refresh in fns)"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEOP_")},
        "LAKEOP_RESYNC_SECONDS": "7",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
