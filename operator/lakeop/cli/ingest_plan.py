"""The plan of ``lakeop ingest``: read from the Job pod's environment, or built from the -f
manifests (the Table, the current step of its SchemaVersion chain, the IngestionJob, and the
Secrets whose keys become the pod's ``LAKEOP_STORAGE_*`` / ``LAKEOP_SOURCE_*`` variables),
then checked against its environment before any claim or I/O."""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from lakeop.cli.crds import load_validators, packaged_crds_dir
from lakeop.cli.manifests import Document, ManifestError, find_files, load_file
from lakeop.cli.options import local_root
from lakeop.cli.validate import schema_problems
from lakeop.core.constants import (
    SOURCE_ENV_PREFIX,
    SOURCE_SQL_URL_ENV,
    STORAGE_ENV_PREFIX,
)
from lakeop.core.runs.plan import RunPlan, build_plan
from lakeop.core.schema.verdict import Peer, current_step, walk_chain
from lakeop.core.spec.fields import LABEL_RULE, label_problem
from lakeop.core.spec.resources import (
    IngestionJobSpec,
    SchemaVersionSpec,
    TableSpec,
    parse_ingestion_job,
    parse_schema_version,
    parse_table,
)
from lakeop.core.spec.secrets import decode_secret_data
from lakeop.core.spec.sources import SourceSpec, SqlSourceSpec
from lakeop.core.spec.tenancy import ENV_VAR as ALLOWED_LOCATIONS_ENV
from lakeop.core.spec.tenancy import AllowedLocations, check_location, parse_allowed_locations
from lakeop.errors import IncompatibleSchemaError, InvalidSpecError
from lakeop.sources.sql import check_url
from lakeop.storage import real_location


def plan_of_args(args: argparse.Namespace, env: dict[str, str]) -> RunPlan:
    """The run's plan, refused before any claim or I/O if it could not run as given."""
    plan = _plan_of_env(args, env) if args.plan_env else _plan_of_files(args, env)
    check_before_io(plan, env)
    return plan


def check_before_io(plan: RunPlan, env: Mapping[str, str]) -> None:
    """What the run needs from its environment, checked before it touches storage: the
    table's location under ``LAKEOP_ALLOWED_LOCATIONS`` and under the prefixes the operator
    put in the plan (symbolic links resolved here, where the volumes are: the same rule as
    the operator and its webhook), and a loadable SQL driver."""
    for allowed in (
        parse_allowed_locations(env.get(ALLOWED_LOCATIONS_ENV)),
        AllowedLocations.only(plan.namespace, plan.allowed_prefixes),  # the operator's
    ):
        refusal = check_location(plan.namespace, plan.table.location, allowed, real_location)
        if refusal:
            raise InvalidSpecError(f"Table {plan.namespace}/{plan.table.name}: {refusal}")
    if isinstance(plan.source, SqlSourceSpec):
        ref = plan.source.url_secret_ref
        where = (
            f"IngestionJob {plan.namespace}/{plan.job}: spec.source.sql.urlSecretRef: "
            f"Secret {plan.namespace}/{ref.name} key {ref.key}"
        )
        if not env.get(plan.sql_url_env):
            raise InvalidSpecError(
                f"{where}: not found (no such Secret or key among the -f files, and "
                f"{plan.sql_url_env} is not set)"
            )
        check_url(env[plan.sql_url_env], where)


def _plan_of_env(args: argparse.Namespace, env: dict[str, str]) -> RunPlan:
    text = env.get(args.plan_env)
    if not text:
        raise InvalidSpecError(f"--plan-env: environment variable {args.plan_env} is empty")
    return RunPlan.from_json(text)


def _plan_of_files(args: argparse.Namespace, env: dict[str, str]) -> RunPlan:
    if not args.filename:
        raise InvalidSpecError("give -f PATH (manifests) or --plan-env VAR")
    if args.run_id is not None and label_problem(args.run_id):
        raise InvalidSpecError(f"--run-id: {LABEL_RULE}, got {args.run_id!r}")
    docs = load_manifests(args.filename)
    job = _pick_job(docs, args.job)
    table = _one(docs, "Table", job.table_ref, job)
    version = current_schema_version(table, docs)
    _secrets_to_env(docs, table, job, env)
    run_id = args.run_id or default_run_id(job.name)
    root = local_root(args.default_location, env)
    return build_plan(table, version, job, run_id, root)


def default_run_id(job: str) -> str:
    """``<job>-<UTC time>-<random>``, a DNS-1123 label like every run id (the job name is
    cut and its dots become dashes to fit)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dt%H%M%S")
    stem = job.replace(".", "-")[:40].strip("-")
    return f"{stem}-{stamp}-{secrets.token_hex(3)}"


def load_manifests(paths: list[str]) -> list[dict[str, Any]]:
    """Every object (a mapping with a ``kind``) of the ``-f`` files and folders, read as
    ``lakeop validate`` reads them (:func:`lakeop.cli.manifests.find_files`)."""
    try:
        files = find_files(paths)
    except ManifestError as e:
        raise InvalidSpecError(f"-f {e}") from e
    docs: list[dict[str, Any]] = []
    for f in files:
        for doc in load_file(f):
            if isinstance(doc.body, dict) and isinstance(doc.body.get("kind"), str):
                docs.append(doc.body)
    return docs


def schema_checked(body: dict[str, Any]) -> dict[str, Any]:
    """``body``, once it passes its CRD schema (the API server's check, as ``lakeop
    validate`` runs it); else the first problem as bad input."""
    doc = Document("-f", 0, body)
    problems = schema_problems(doc, load_validators(str(packaged_crds_dir())))
    if problems:
        fld, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidSpecError(f"{doc.label}: {fld}: {message}{more}")
    return body


def metadata_field(doc: Mapping[str, Any], field: str) -> Any:
    """``metadata.<field>`` of a document of any shape (None where it has none)."""
    meta = doc.get("metadata")
    return meta.get(field) if isinstance(meta, Mapping) else None


def _namespace(doc: Mapping[str, Any]) -> Any:
    return metadata_field(doc, "namespace") or "default"


def _pick_job(docs: list[dict[str, Any]], name: str | None) -> IngestionJobSpec:
    jobs = [d for d in docs if d.get("kind") == "IngestionJob"]
    if name:
        jobs = [d for d in jobs if metadata_field(d, "name") == name]
    if len(jobs) != 1:
        found = [metadata_field(d, "name") for d in docs if d.get("kind") == "IngestionJob"]
        raise InvalidSpecError(
            f"need exactly one IngestionJob{f' named {name}' if name else ''} "
            f"(use --job), found {found}"
        )
    return parse_ingestion_job(schema_checked(jobs[0]))


def _one(docs: list[dict[str, Any]], kind: str, name: str, job: IngestionJobSpec) -> TableSpec:
    for d in docs:
        if (
            d.get("kind") == kind
            and metadata_field(d, "name") == name
            and _namespace(d) == job.namespace
        ):
            return parse_table(schema_checked(d))
    raise InvalidSpecError(
        f"IngestionJob {job.namespace}/{job.name}: spec.tableRef: Table {name!r} not found "
        "among the -f files"
    )


def current_schema_version(table: TableSpec, docs: list[dict[str, Any]]) -> SchemaVersionSpec:
    """The highest version of the chain that passes the table's compatibility mode."""
    versions: list[SchemaVersionSpec] = []
    for d in docs:
        if d.get("kind") != "SchemaVersion":
            continue
        spec = d.get("spec")
        ref = spec.get("tableRef") if isinstance(spec, Mapping) else None
        if ref == table.name and _namespace(d) == table.namespace:
            versions.append(parse_schema_version(schema_checked(d)))
    if not versions:
        raise InvalidSpecError(f"Table {table.namespace}/{table.name}: no SchemaVersion found")
    pairs = [(Peer(sv.name, sv.version, sv.fields), sv) for sv in versions]
    spec_of = {id(peer): sv for peer, sv in pairs}
    steps = walk_chain([peer for peer, _ in pairs], table.compatibility, table.format)
    for step in steps:  # the operator's rules: lakeop.core.schema.verdict.walk_chain
        sv = spec_of[id(step.peer)]
        if step.duplicate_of is not None:
            first = spec_of[id(step.duplicate_of)]
            raise InvalidSpecError(
                f"SchemaVersion {sv.namespace}/{sv.name}: spec.version: version {sv.version} "
                f"of Table {table.namespace}/{table.name} is already taken by SchemaVersion "
                f"{first.namespace}/{first.name}"
            )
        if not step.accepted:
            violations = step.result.violations if step.result else []
            reasons = "; ".join(
                [*(v.message for v in violations), *(p.message for p in step.format_problems)]
            )
            print(
                f"lakeop ingest: skipping SchemaVersion {sv.name} (v{sv.version}): "
                f"incompatible: {reasons}",
                file=sys.stderr,
            )
    current = current_step(steps)
    if current is None:
        raise IncompatibleSchemaError(f"Table {table.namespace}/{table.name}: no usable version")
    return spec_of[id(current.peer)]


def secret_data(docs: list[dict[str, Any]], namespace: str, name: str) -> dict[str, str]:
    for d in docs:
        if (
            d.get("kind") == "Secret"
            and metadata_field(d, "name") == name
            and _namespace(d) == namespace
        ):
            return decode_secret_data(namespace, name, d.get("data"), d.get("stringData"))
    return {}


def _secrets_to_env(
    docs: list[dict[str, Any]], table: TableSpec, job: IngestionJobSpec, env: dict[str, str]
) -> None:
    """Fill the variables a Job pod would get from its Secrets (environment wins if set)."""

    def put(prefix: str, data: Mapping[str, str]) -> None:
        for k, v in data.items():
            env.setdefault(prefix + k, v)

    if table.storage_secret_ref:
        put(STORAGE_ENV_PREFIX, secret_data(docs, table.namespace, table.storage_secret_ref))
    src = job.source
    if isinstance(src, SourceSpec) and src.secret_ref:
        put(SOURCE_ENV_PREFIX, secret_data(docs, job.namespace, src.secret_ref))
    if isinstance(src, SqlSourceSpec):
        data = secret_data(docs, job.namespace, src.url_secret_ref.name)
        if src.url_secret_ref.key in data:
            env.setdefault(SOURCE_SQL_URL_ENV, data[src.url_secret_ref.key])
