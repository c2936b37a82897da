"""``requirements/constraints.txt`` pins exactly what ``pyproject.toml`` reaches, in two
sections (runtime, then what development adds), at the installed versions (see pins.py)."""

from __future__ import annotations

import pins
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def pinned() -> list[str]:
    return [line for line in pins.CONSTRAINTS.read_text().splitlines() if not line.startswith("#")]


def test_constraints_are_the_closure_of_pyproject() -> None:
    assert pins.CONSTRAINTS.read_text() == pins.render(), (
        "requirements/constraints.txt is not the closure of pyproject.toml: "
        "regenerate it with `make constraints`"
    )


def test_every_pin_is_exact_and_unique() -> None:
    names = []
    for line in pinned():
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", line
        names.append(canonicalize_name(req.name))
    assert len(names) == len(set(names))


def test_runtime_section_holds_what_the_image_installs() -> None:
    text = pins.CONSTRAINTS.read_text().splitlines()
    runtime = text[text.index(pins.RUNTIME_HEADER) + 1 : text.index(pins.DEV_HEADER)]
    names = {canonicalize_name(Requirement(line).name) for line in runtime}
    for dep in pins.project()[""]:  # every direct runtime dependency, in the runtime part
        assert canonicalize_name(Requirement(dep).name) in names, dep
    assert "pytest" not in names and "mypy" not in names
