"""``lakeop history (-f PATH | --table NS/NAME)``: what each commit did to the table.

One line per commit of lakeop's log (``parquet``), Delta version or Iceberg snapshot, oldest
first: when, the version (log sequence, Delta version, Iceberg sequence number), the run id
and job, the schema version, rows and files added and removed, and the operation
(``append``, ``overwrite``, ``compaction``). The records are the ones lakeop keeps with every
commit (:class:`lakeop.engine.commits.Commit`, the same for all three formats); commits
another writer made without one are not listed. Rows removed are the rows of the files the
commit replaced, as the commits that added them counted them. ``--output json``: a JSON list.
Exit codes: 0 ok, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from lakeop.cli.manifests import ManifestError
from lakeop.cli.query import render_table
from lakeop.cli.tables import TableRef, add_table_arguments, table_of_args
from lakeop.engine.commits import Commit, DataFile
from lakeop.engine.formats import TableFormat
from lakeop.errors import LakeopError

#: a commit's ``mode`` -> the operation the history names
OPERATIONS = {"append": "append", "overwrite-partitions": "overwrite", "compact": "compaction"}


@dataclass(frozen=True)
class Entry:
    version: int
    time: str
    run_id: str
    job: str
    schema_version: int
    operation: str
    rows_added: int
    rows_removed: int
    files_added: int
    files_removed: int
    bytes_added: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {_camel(k): v for k, v in d.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_table_arguments(parser)
    parser.add_argument("--output", choices=("text", "json"), default="text")


def entries(
    commits: Sequence[Commit], counts: Mapping[int, tuple[int, int, int, int]] | None = None
) -> list[Entry]:
    """The history of ``commits`` (in commit order). ``counts``: a format's own count of
    (rows added, rows removed, files added, files removed) by version, where its commit
    records carry no file list (Iceberg: the snapshot summary)."""
    known: dict[str, DataFile] = {}
    out = []
    for c in commits:
        removed = [known[p] for p in c.removed if p in known]
        if counts is not None and c.seq in counts:
            rows_added, rows_removed, files_added, files_removed = counts[c.seq]
        else:
            rows_added, rows_removed = c.rows, sum(f.rows for f in removed)
            files_added, files_removed = len(c.files), len(c.removed)
        out.append(
            Entry(
                version=c.seq,
                time=c.committed_at,
                run_id=c.run_id,
                job=c.job,
                schema_version=c.schema_version,
                operation=OPERATIONS.get(c.mode, c.mode),
                rows_added=rows_added,
                rows_removed=rows_removed,
                files_added=files_added,
                files_removed=files_removed,
                bytes_added=c.bytes,
            )
        )
        for f in c.files:
            known[f.path] = f
    return out


def iceberg_counts(fmt: TableFormat) -> dict[int, tuple[int, int, int, int]]:
    """Each snapshot's (rows added, rows removed, files added, files removed) by sequence
    number, from its summary (read at the current metadata file, no catalog needed)."""
    from pyiceberg.table import StaticTable  # noqa: PLC0415  (iceberg tables only)

    location = getattr(fmt, "metadata_location", lambda: None)()
    if not location:
        return {}
    out = {}
    for snap in StaticTable.from_metadata(location).metadata.snapshots:
        summary = snap.summary.additional_properties if snap.summary else {}

        def n(key: str, props: Mapping[str, str] = summary) -> int:
            return int(props.get(key, 0) or 0)

        out[int(snap.sequence_number or 0)] = (
            n("added-records"),
            n("deleted-records"),
            n("added-data-files"),
            n("deleted-data-files"),
        )
    return out


def run(args: argparse.Namespace) -> int:
    try:
        ref = table_of_args(args, os.environ)
    except (LakeopError, ManifestError, OSError, yaml.YAMLError) as e:
        print(f"lakeop history: {e}", file=sys.stderr)
        return 2
    return show(ref, args.output)


def show(ref: TableRef, output: str) -> int:
    """Print the history of ``ref`` (``text`` or ``json``)."""
    try:
        fmt = ref.open()
        history = entries(fmt.commits(), iceberg_counts(fmt) if ref.format == "iceberg" else None)
    except (LakeopError, OSError) as e:
        print(f"lakeop history: {e}", file=sys.stderr)
        return 2
    if output == "json":
        print(json.dumps([e.to_json() for e in history]))
        return 0
    columns = ["VERSION", "TIME", "OPERATION", "RUN", "JOB", "SCHEMA", "ROWS +", "ROWS -"]
    columns += ["FILES +", "FILES -"]
    rows = [
        [
            e.version,
            e.time,
            e.operation,
            e.run_id,
            e.job,
            e.schema_version,
            e.rows_added,
            e.rows_removed,
            e.files_added,
            e.files_removed,
        ]
        for e in history
    ]
    sys.stdout.write(render_table(columns, rows, noun="commit"))
    return 0
