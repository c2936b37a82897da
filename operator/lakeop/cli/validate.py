"""``lakeop validate PATH...``: check a GitOps folder of lakeop objects before it is synced.

What the API server, the operator and its webhook would refuse, found offline in CI or a
pre-commit hook: every lakeop object against its CRD schema, then lakeop's own spec rules,
duplicate objects and duplicate (table, version) pairs, ``tableRef`` resolution within the
same namespace among the files, and every table's SchemaVersion chain in version order under
the table's compatibility mode (each version against the earlier ones that passed, exactly
as the operator accepts them), and the table's partitioning column against the latest version
that passes. Problems print as ``path: Kind ns/name: field: message``.
Exit codes: 0 no problems, 1 problems found, 2 usage (missing path, no CRDs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeop.cli.crds import error_path, load_validators, packaged_crds_dir
from lakeop.cli.manifests import Document, ManifestError, find_files, load_file
from lakeop.cli.options import counted
from lakeop.core.constants import DEFAULT_LOCATION_ENV, GROUP, LAKE_MOUNT_PATH_ENV, VERSION
from lakeop.core.lake.iceberg import CATALOG_ENV as ICEBERG_CATALOG_ENV
from lakeop.core.lake.iceberg import CATALOG_SECRET_ENV as ICEBERG_SECRET_ENV
from lakeop.core.lake.partitioning import layout_problem
from lakeop.core.runs.admission import check_ingestion_job, check_table, check_table_iceberg
from lakeop.core.schema.compat import parse_mode
from lakeop.core.schema.types import Schema
from lakeop.core.schema.verdict import Peer, walk_chain
from lakeop.core.spec.layout import PartitionSpec
from lakeop.core.spec.resources import (
    IngestionJobSpec,
    SchemaVersionSpec,
    TableSpec,
    parse_schema_version,
)
from lakeop.core.spec.secrets import decode_secret_data
from lakeop.core.spec.sources import SqlSourceSpec
from lakeop.core.spec.tenancy import ENV_VAR as ALLOWED_LOCATIONS_ENV
from lakeop.core.spec.tenancy import (
    LocationRefusedError,
    parse_allowed_locations,
    table_location,
)
from lakeop.errors import LakeopError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
PARSERS = {
    "Table": check_table,  # the webhook's rules: spec, maintenance podTemplate, cron, zone
    "SchemaVersion": parse_schema_version,
    "IngestionJob": check_ingestion_job,  # the webhook's rules: spec, podTemplate, cron, zone
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders")
    parser.add_argument(
        "--crds",
        metavar="DIR",
        help="folder holding lakeop's CRDs (default: the CRDs shipped with this lakeop)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")


@dataclass(frozen=True)
class Problem:
    path: str
    obj: str  # "Kind ns/name", or "" for file-level problems
    field: str
    message: str

    def __str__(self) -> str:
        parts = [self.path, self.obj, self.field, self.message]
        return ": ".join(p for p in parts if p)


@dataclass
class Report:
    files: int = 0
    objects: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add(self, doc: Document, fld: str, message: str) -> None:
        self.problems.append(Problem(doc.path, doc.label, fld, message))


@dataclass(frozen=True)
class _Version:
    doc: Document
    table: str
    version: int
    schema: Schema
    fields: tuple[dict[str, Any], ...]


def validate_paths(paths: list[str], crds_dir: str, env: Mapping[str, str] | None = None) -> Report:
    """Run every check over ``paths``; raises ManifestError for usage problems."""
    env = os.environ if env is None else env
    validators = load_validators(crds_dir)
    report = Report()
    docs: list[Document] = []
    others: list[Document] = []  # Secrets and the rest: only Secrets are checked
    jobs: list[tuple[Document, IngestionJobSpec]] = []
    for f in find_files(paths):
        report.files += 1
        try:
            for d in load_file(f):
                (docs if d.is_lakeop else others).append(d)
        except ManifestError as e:
            where, detail = e.where or f, e.detail or str(e).removeprefix(f"{f}: ")
            report.problems.append(Problem(where, "", "", detail))
    report.objects = len(docs)
    tables: dict[tuple[str, str], Document] = {}  # every Table, for tableRef resolution
    specs: dict[tuple[str, str], TableSpec] = {}  # the valid ones, for the chain checks
    versions: list[_Version] = []
    seen: dict[tuple[str, str, str], Document] = {}
    for doc in docs:
        key = (doc.kind, doc.namespace, doc.name)
        if key in seen:
            report.add(doc, "metadata.name", f"duplicate object, also defined in {seen[key].path}")
            continue
        seen[key] = doc
        if doc.kind == "Table":
            tables[(doc.namespace, doc.name)] = doc
        spec = _check_object(doc, validators, report, env.get(LAKE_MOUNT_PATH_ENV) or None)
        if isinstance(spec, TableSpec):
            specs[(doc.namespace, doc.name)] = spec
        elif isinstance(spec, SchemaVersionSpec):
            versions.append(_Version(doc, spec.table_ref, spec.version, spec.schema, spec.fields))
        elif isinstance(spec, IngestionJobSpec):
            jobs.append((doc, spec))
    for doc in docs:
        ref = _table_ref(doc)
        if ref is not None and (doc.namespace, ref) not in tables:
            report.add(
                doc, "spec.tableRef", f"Table {doc.namespace}/{ref} not found among the files"
            )
    latest = _check_chains(versions, specs, report)
    for table_key, version in sorted(latest.items()):
        problem = partition_problem(specs[table_key].partitioning, version)
        if problem:
            report.add(tables[table_key], *problem)
    for table_key, spec in sorted(specs.items()):
        _table_problems(tables[table_key], spec, env, report)
    secrets = secret_problems(others, report)
    for doc, job in jobs:
        refused = sql_url_problem(job, secrets)
        if refused:
            report.add(doc, "spec.source.sql.urlSecretRef", refused)
    return report


def schema_problems(doc: Document, validators: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each way ``doc`` breaks its CRD's schema: what the API server
    refuses at ``kubectl apply``, and so what ``lakeop ingest -f`` refuses too."""
    api = doc.body.get("apiVersion")
    if api != f"{GROUP}/{VERSION}":  # the API server refuses a version it does not serve
        return [("apiVersion", f"{api!r} is not served: lakeop's objects are {GROUP}/{VERSION}")]
    validator = validators.get(doc.kind)
    if validator is None:
        return [("kind", f"unknown kind {doc.kind!r} in {api}")]
    errors = sorted(validator.iter_errors(doc.body), key=lambda e: list(map(str, e.path)))
    return [(error_path(list(e.absolute_path)), e.message) for e in errors]


def _check_object(
    doc: Document, validators: dict[str, Any], report: Report, lake_mount_path: str | None = None
) -> Any:
    """CRD schema, then lakeop's spec parser; returns the parsed spec or None on problems.
    ``lake_mount_path``: ``LAKEOP_LAKE_MOUNT_PATH`` as this environment sets it, which an
    IngestionJob's pod template must leave free, as the webhook and the operator check."""
    problems = schema_problems(doc, validators)
    for fld, message in problems:
        report.add(doc, fld, message)
    if problems:
        return None
    spec: Any
    try:
        if doc.kind == "IngestionJob":
            spec = check_ingestion_job(doc.body, lake_mount_path=lake_mount_path)
        else:
            spec = PARSERS[doc.kind](doc.body) if doc.kind in PARSERS else None
    except LakeopError as e:
        # spec parsers already prefix "Kind ns/name: "; keep one copy of it
        report.add(doc, "", str(e).removeprefix(f"{doc.label}: "))
        return None
    return spec


def _table_ref(doc: Document) -> str | None:
    if doc.kind not in ("SchemaVersion", "IngestionJob"):
        return None
    spec = doc.body.get("spec")
    ref = spec.get("tableRef") if isinstance(spec, dict) else None
    return ref if isinstance(ref, str) and ref else None


def _check_chains(
    versions: list[_Version], specs: dict[tuple[str, str], TableSpec], report: Report
) -> dict[tuple[str, str], _Version]:
    """Check every table's chain; return each table's latest version that passes."""
    chains: dict[tuple[str, str], list[_Version]] = defaultdict(list)
    for v in versions:
        chains[(v.doc.namespace, v.table)].append(v)
    latest: dict[tuple[str, str], _Version] = {}
    for key, chain in sorted(chains.items()):
        table = specs.get(key)
        if table is None:
            continue  # a dangling tableRef or an invalid Table, both reported already
        try:
            mode = parse_mode(table.compatibility)
        except LakeopError:
            continue  # reported by the Table's own checks
        # the operator's rules (lakeop.core.schema.verdict.walk_chain): of two objects
        # claiming a version, the smaller name keeps it (manifests carry no creation time)
        pairs = [(Peer(v.doc.name, v.version, v.fields), v) for v in chain]
        version_of = {id(peer): v for peer, v in pairs}
        for step in walk_chain([peer for peer, _ in pairs], mode.value, table.format):
            v = version_of[id(step.peer)]
            if step.duplicate_of is not None:
                first = version_of[id(step.duplicate_of)].doc
                report.add(
                    v.doc,
                    "spec.version",
                    f"version {v.version} of Table {key[0]}/{key[1]} is already taken by "
                    f"{first.label} ({first.path})",
                )
                continue
            if step.accepted:
                latest[key] = v
                continue
            for p in step.format_problems:
                against = latest[key].version if key in latest else "?"
                report.add(
                    v.doc,
                    f"spec.fields.{p.field}",
                    f"FormatCannotEvolve: {p.message} (version {v.version} against v{against})",
                )
            for viol in step.result.violations if step.result else ():
                report.add(
                    v.doc,
                    f"spec.fields.{viol.field}",
                    f"{viol.message.partition(': ')[2]} "
                    f"(version {v.version} against v{viol.against} under {mode.value})",
                )
    return latest


def partition_problem(partitioning: PartitionSpec, version: _Version) -> tuple[str, str] | None:
    """(field, message) when the table's latest version cannot be partitioned as declared:
    :func:`lakeop.core.lake.partitioning.layout_problem`, the rule plan building applies for the
    operator and ``lakeop ingest``."""
    problem = layout_problem(partitioning, version.schema)
    if problem is None:
        return None
    path, message = problem
    where = f"{version.doc.label}, version {version.version}, the latest that passes"
    return f"spec.{path}", f"{message} (in {where})"


def _table_problems(doc: Document, spec: TableSpec, env: Mapping[str, str], report: Report) -> None:
    try:
        refusal = location_problem(doc, spec, env)
    except LakeopError as e:
        refusal = str(e)
    if refusal:
        report.add(doc, "spec.location", refusal)
    refusal = iceberg_problem(doc, spec, env)
    if refusal:
        report.add(doc, "spec.iceberg.catalogSecretRef", refusal)


def location_problem(doc: Document, table: TableSpec, env: Mapping[str, str]) -> str | None:
    """The table's location under ``LAKEOP_ALLOWED_LOCATIONS`` and ``LAKEOP_DEFAULT_LOCATION``
    as this environment sets them: the same check as the webhook, the operator and
    ``lakeop ingest`` (symbolic links resolved)."""
    allowed = parse_allowed_locations(env.get(ALLOWED_LOCATIONS_ENV))
    default = env.get(DEFAULT_LOCATION_ENV)
    if allowed.unrestricted or not (table.location or default):
        return None
    from lakeop.storage import real_location  # noqa: PLC0415  (pyarrow, only when needed)

    try:
        table_location(
            doc.namespace,
            table.name,
            table.location,
            default,
            allowed=allowed,
            resolve=real_location,
        )
    except LocationRefusedError as e:
        return str(e).removeprefix(f"Table {doc.namespace}/{table.name}: ")
    return None


def iceberg_problem(doc: Document, table: TableSpec, env: Mapping[str, str]) -> str | None:
    """An Iceberg table no catalog can hold (an ``s3://`` location with no catalogSecretRef
    while this environment names no operator default): the webhook's and the operator's rule
    (:func:`lakeop.core.runs.admission.check_table_iceberg`)."""
    default = env.get(DEFAULT_LOCATION_ENV)
    location = None
    if table.location or default:
        try:
            location = table_location(doc.namespace, table.name, table.location, default)
        except LakeopError:
            return None  # reported as a location problem
    meta = {**(doc.body.get("metadata") or {}), "namespace": doc.namespace}
    try:
        check_table_iceberg(
            {**doc.body, "metadata": meta},
            location,
            default_catalog=bool(env.get(ICEBERG_CATALOG_ENV) or env.get(ICEBERG_SECRET_ENV)),
        )
    except LakeopError as e:
        return str(e).removeprefix(f"{doc.label}: spec.iceberg.catalogSecretRef: ")
    return None


def secret_problems(docs: list[Document], report: Report) -> dict[tuple[str, str], dict[str, str]]:
    """Every Secret among the files decodes (base64 ``data``, UTF-8 text), as ``lakeop ingest``
    needs it to; values are never printed. Returns the decoded ones by (namespace, name)."""
    decoded: dict[tuple[str, str], dict[str, str]] = {}
    for doc in docs:
        if doc.kind != "Secret" or not isinstance(doc.body, Mapping):
            continue
        try:
            decoded[(doc.namespace, doc.name)] = decode_secret_data(
                doc.namespace, doc.name, doc.body.get("data"), doc.body.get("stringData")
            )
        except LakeopError as e:
            report.add(doc, "", str(e).removeprefix(f"{doc.label}: "))
    return decoded


def sql_url_problem(
    job: IngestionJobSpec, secrets: dict[tuple[str, str], dict[str, str]]
) -> str | None:
    """The SQL source's URL, when its Secret is among the files, through the check ``lakeop
    ingest`` makes before it claims anything (dialect and driver loadable here)."""
    if not isinstance(job.source, SqlSourceSpec):
        return None
    ref = job.source.url_secret_ref
    url = secrets.get((job.namespace, ref.name), {}).get(ref.key)
    if url is None:
        return None  # Secrets often live outside the GitOps folder
    from lakeop.sources.sql import check_url  # noqa: PLC0415  (sqlalchemy, only when needed)

    try:
        check_url(url, f"Secret {job.namespace}/{ref.name} key {ref.key}")
    except LakeopError as e:
        return str(e)
    return None


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    crds_dir = args.crds or str(packaged_crds_dir())
    try:
        report = validate_paths(list(args.paths), crds_dir)
    except ManifestError as e:
        print(f"lakeop validate: {e}", file=sys.stderr)
        return EXIT_USAGE
    for p in report.problems:
        print(p)
    if not args.quiet:
        seconds = time.perf_counter() - started
        verdict = counted(len(report.problems), "problem") if report.problems else "ok"
        print(
            f"{counted(report.objects, 'lakeop object')} in {counted(report.files, 'file')}: "
            f"{verdict} "
            f"({seconds:.2f}s)",
            file=sys.stderr if report.problems else sys.stdout,
        )
    return EXIT_PROBLEMS if report.problems else EXIT_OK
