"""Where DuckDB's table-format extensions are on this machine, so they load by path.

DuckDB's wheel does not ship its delta, iceberg or avro extensions and downloads them at
first use, which fails without network access (air-gapped pods, CI). The ``duckdb-ext-*``
wheels carry them, built for one DuckDB version: ``LOAD '<path>'`` loads one without a
download. Used by ``lakeop query`` (the ``lakeop[query]`` extra), the demo and the tests; the
operator and its Job pods never need DuckDB.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from pathlib import Path

from lakeop.errors import TerminalError

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file of extension ``name`` (``delta``, ``iceberg``, ...)
    for the installed DuckDB; a :class:`TerminalError` naming the wheel when it is missing."""
    spec = importlib.util.find_spec("duckdb_ext")
    try:
        version = importlib.metadata.version("duckdb")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    if spec is not None and spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
        path = base / "extensions" / f"v{version}" / f"linux_{arch}" / f"{name}.duckdb_extension"
        if path.is_file():
            return path
    raise TerminalError(
        f"DuckDB extension {name!r} for duckdb {version} (linux_{arch}) is not installed: "
        f"pip install duckdb-ext-{name} (its version must match duckdb's)"
    )


def delta_extension() -> Path:
    return extension_path("delta")
