"""Which table ``lakeop query`` and ``lakeop history`` look at, and how to open it.

A table is named either by manifests (``-f PATH``: the Table among the files, ``--table NAME``
when they hold several; its storage and catalog Secrets among them too, as for ``lakeop
ingest``) or by the cluster (``--table NAMESPACE/NAME``: the Table object's resolved
``status.location``, its ``spec.format`` and, for Iceberg, ``status.metadataLocation``; its
Secrets read from the API server with the caller's kubeconfig). Either way the result is a
:class:`TableRef`: where the table is, its format, and the ``LAKEOP_STORAGE_*`` /
``LAKEOP_ICEBERG_CATALOG_URI`` variables that open it through lakeop's own formats.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeop.cli.ingest_plan import load_manifests, metadata_field, schema_checked, secret_data
from lakeop.cli.options import add_default_location, local_root
from lakeop.core.constants import STORAGE_ENV_PREFIX
from lakeop.core.lake.iceberg import CATALOG_ENV
from lakeop.core.runs.plan import PlanTable, iceberg_identifier, resolve_location
from lakeop.core.spec.resources import TableSpec, parse_table
from lakeop.engine.formats import TableFormat, open_format, set_target
from lakeop.errors import InvalidSpecError
from lakeop.storage import Storage, open_storage

if TYPE_CHECKING:
    from lakeop.kube.client import Kube


@dataclass(frozen=True)
class TableRef:
    namespace: str
    name: str
    format: str
    location: str
    #: ``format: iceberg``: the table's (namespace, name) in its catalog
    iceberg: tuple[str, str] | None = None
    #: ``format: iceberg``: the current metadata file when the cluster's status names it
    metadata_location: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"Table {self.namespace}/{self.name}"

    def storage(self) -> Storage:
        return open_storage(self.location, self.env, STORAGE_ENV_PREFIX)

    def open(self) -> TableFormat:
        """The table through lakeop's format (commit log, Delta log, Iceberg catalog)."""
        storage = self.storage()
        plan_table = PlanTable(self.name, self.location, format=self.format, iceberg=self.iceberg)
        set_target(storage, plan_table, self.env)
        return open_format(storage, self.format)


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="manifest file or folder holding the Table (and its storage Secret)",
    )
    parser.add_argument(
        "--table",
        metavar="[NAMESPACE/]NAME",
        help="NAMESPACE/NAME: the Table in the cluster (KUBECONFIG); "
        "NAME: which Table of the -f files",
    )
    add_default_location(parser)


def table_of_args(args: argparse.Namespace, env: Mapping[str, str]) -> TableRef:
    """The table the options name; :class:`InvalidSpecError` when they name none."""
    if args.filename:
        return table_of_files(args.filename, args.table, env, args.default_location)
    if args.table and "/" in args.table:
        namespace, _, name = args.table.partition("/")
        return asyncio.run(table_of_cluster(namespace, name, env))
    raise InvalidSpecError("give -f PATH (the Table's manifests) or --table NAMESPACE/NAME")


def table_of_files(
    paths: list[str], name: str | None, env: Mapping[str, str], default_location: str | None
) -> TableRef:
    docs = load_manifests(paths)
    tables = [d for d in docs if d.get("kind") == "Table"]
    if name:
        tables = [d for d in tables if metadata_field(d, "name") == name]
    if len(tables) != 1:
        found = [metadata_field(d, "name") for d in docs if d.get("kind") == "Table"]
        raise InvalidSpecError(
            f"need exactly one Table{f' named {name}' if name else ''} (use --table), found {found}"
        )
    spec = parse_table(schema_checked(tables[0]))
    location = resolve_location(
        local_root(default_location, env), spec.namespace, spec.name, spec.location
    )
    run_env = dict(env)
    if spec.storage_secret_ref:
        for k, v in secret_data(docs, spec.namespace, spec.storage_secret_ref).items():
            run_env.setdefault(STORAGE_ENV_PREFIX + k, v)
    ref = spec.iceberg.catalog_secret_ref
    if ref is not None:
        uri = secret_data(docs, spec.namespace, ref.name).get(ref.key)
        if uri:
            run_env.setdefault(CATALOG_ENV, uri)
    return _ref(spec, location, None, run_env)


async def table_of_cluster(
    namespace: str, name: str, env: Mapping[str, str], kube: Kube | None = None
) -> TableRef:
    """The Table ``namespace/name`` of the cluster, through ``kube`` (else a client of the
    kubeconfig's current context, closed after)."""
    from lakeop.kube.client import Kube  # noqa: PLC0415  (only --table NS/NAME needs a cluster)

    own = kube is None
    if kube is None:
        kube = await Kube.connect()
    try:
        body = await kube.get_object("tables", namespace, name)
        if body is None:
            raise InvalidSpecError(f"Table {namespace}/{name}: not found in the cluster")
        spec = parse_table(body)
        status: Mapping[str, Any] = body.get("status") or {}
        location = status.get("location")
        if not isinstance(location, str) or not location:
            raise InvalidSpecError(
                f"Table {namespace}/{name}: no status.location yet (is the operator running?)"
            )
        run_env = dict(env)
        if spec.storage_secret_ref:
            data = await kube.read_secret(namespace, spec.storage_secret_ref)
            for k, v in data.items():
                run_env.setdefault(STORAGE_ENV_PREFIX + k, v)
        ref = spec.iceberg.catalog_secret_ref
        if ref is not None:
            uri = (await kube.read_secret(namespace, ref.name)).get(ref.key)
            if uri:
                run_env.setdefault(CATALOG_ENV, uri)
        metadata = status.get("metadataLocation")
        return _ref(spec, location, metadata if isinstance(metadata, str) else None, run_env)
    finally:
        if own:
            await kube.close()


def _ref(spec: TableSpec, location: str, metadata: str | None, env: dict[str, str]) -> TableRef:
    return TableRef(
        spec.namespace,
        spec.name,
        spec.format,
        location.rstrip("/"),
        iceberg_identifier(spec),
        metadata,
        env,
    )
