"""``requirements/constraints.txt`` from ``pyproject.toml`` and the installed versions.

The constraints file pins exactly what ``pip install -e '.[dev]'`` installs: the runtime
closure (``[project] dependencies`` and the ``postgres`` extra, what the image and a user's
install get) first, then what only development adds (the ``dev`` extra's closure minus the
runtime one). A pin nothing in ``pyproject.toml`` reaches is an orphan and has no place
here; :func:`closure` walks the installed distributions' metadata, markers evaluated, so
the lists follow ``pyproject.toml`` without a resolver. Versions are the installed ones,
so regenerating never upgrades anything: ``make constraints`` (this script in the project's
virtualenv; ``tests/ship/test_constraints.py`` fails while the file and the closure disagree).
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
#: extras of lakeop that belong to its runtime (installed by users, not only by developers)
RUNTIME_EXTRAS = ("postgres",)
DEV_EXTRA = "dev"
#: the two section headers of the constraints file
RUNTIME_HEADER = "# runtime: [project] dependencies and the postgres extra"
DEV_HEADER = "# dev: what the dev extra adds"
HEADER = (
    "# Pinned versions of every dependency lakeop's pyproject.toml reaches, so installs\n"
    "# resolve instantly and CI is reproducible; nothing else (tests/ship/test_constraints.py).\n"
    "# Regenerate with `make constraints` (tests/ship/pins.py over the installed versions)."
)


def project() -> dict[str, list[str]]:
    """``dependencies`` and each optional extra of ``pyproject.toml``."""
    data = tomllib.loads(PYPROJECT.read_text())["project"]
    return {"": list(data["dependencies"]), **data.get("optional-dependencies", {})}


def closure(roots: Iterable[str]) -> dict[str, str]:
    """Canonical name -> installed ``name==version`` line of every distribution ``roots``
    reach (markers evaluated for this interpreter, extras followed)."""
    found: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(Requirement(r), "") for r in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        wanted = ["", *sorted(req.extras)]
        dist = metadata.distribution(req.name)
        found[name] = f"{dist.metadata['Name']}=={dist.version}"
        for ex in wanted:
            if (name, ex) in seen:
                continue
            seen.add((name, ex))
            todo += [(Requirement(r), ex) for r in dist.requires or []]
    return found


def sections() -> tuple[list[str], list[str]]:
    """The runtime pins and the pins only development adds, each sorted by name."""
    deps = project()
    runtime_roots = deps[""] + [r for e in RUNTIME_EXTRAS for r in deps[e]]
    runtime = closure(runtime_roots)
    everything = closure(runtime_roots + deps[DEV_EXTRA])
    dev = {k: v for k, v in everything.items() if k not in runtime}
    return [runtime[k] for k in sorted(runtime)], [dev[k] for k in sorted(dev)]


def render() -> str:
    runtime, dev = sections()
    return "\n".join([HEADER, RUNTIME_HEADER, *runtime, DEV_HEADER, *dev]) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
