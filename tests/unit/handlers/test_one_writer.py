"""Table.status has one writer: no handler module but table_status patches a Table's status,
and the Table handlers do not use kopf's patch for it either."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import lakeop.handlers
from lakeop.handlers import table

TABLE_PATCH = re.compile(r"patch_status\(\s*TABLES")


def test_only_table_status_patches_a_tables_status() -> None:
    package = Path(lakeop.handlers.__path__[0])
    writers = [p.stem for p in sorted(package.glob("*.py")) if TABLE_PATCH.search(p.read_text())]
    assert writers == ["table_status"]


def test_table_handlers_take_no_kopf_patch() -> None:
    for handler in (table.reconcile, table.refresh, table.delete):
        assert "patch" not in inspect.signature(handler).parameters
