"""One manifest loader for lakeop validate, lakeop schema and lakeop ingest -f."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeop.cli.ingest_plan import load_manifests
from lakeop.cli.manifests import ManifestError, find_files, load_file
from lakeop.errors import InvalidSpecError


def obj(name: str) -> dict[str, object]:
    return {"apiVersion": "lakeop.io/v1alpha1", "kind": "Table", "metadata": {"name": name}}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "a" / ".hidden").mkdir()
    (tmp_path / "one.yaml").write_text("kind: Table\nmetadata: {name: one}\n")
    (tmp_path / "a" / "two.yml").write_text("kind: Table\nmetadata: {name: two}\n---\n")
    (tmp_path / "a" / "b" / "three.json").write_text(json.dumps(obj("three")))
    (tmp_path / "a" / "notes.txt").write_text("kind: Table\nmetadata: {name: txt}\n")
    (tmp_path / ".git" / "config.yaml").write_text("kind: Table\nmetadata: {name: git}\n")
    (tmp_path / "a" / ".hidden" / "x.yaml").write_text("kind: Table\nmetadata: {name: hid}\n")
    return tmp_path


def names(bodies: list[dict[str, object]]) -> list[object]:
    return [b["metadata"]["name"] for b in bodies]  # type: ignore[index]


def test_yaml_yml_and_json_are_read_hidden_folders_skipped(tree: Path) -> None:
    files = find_files([str(tree)])
    bodies = [d.body for f in files for d in load_file(f)]
    assert sorted(names(bodies)) == ["one", "three", "two"]


def test_ingest_reads_the_same_objects_as_validate(tree: Path) -> None:
    validate_view = [d.body for f in find_files([str(tree)]) for d in load_file(f)]
    assert load_manifests([str(tree)]) == validate_view


def test_a_file_named_directly_is_read_whatever_its_suffix(tree: Path) -> None:
    assert names(load_manifests([str(tree / "a" / "notes.txt")])) == ["txt"]


def test_missing_paths(tree: Path) -> None:
    with pytest.raises(ManifestError, match="no such file or directory"):
        find_files([str(tree / "nope")])
    with pytest.raises(InvalidSpecError, match=r"^-f .*nope: no such file or directory"):
        load_manifests([str(tree / "nope")])
