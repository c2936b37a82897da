"""``lakeop compact -f PATH`` and ``lakeop expire -f PATH``: one maintenance run, locally.

The Table (``--table`` when the files hold several), its SchemaVersions (compaction rewrites
under the current one) and its storage Secret come from the ``-f`` files, as for ``lakeop
ingest``; the policy is the Table's ``spec.maintenance`` (defaults where absent), and
``--target-file-size-bytes``, ``--min-input-files`` and ``--retention`` override it for one
run. A progress line per partition (or expired commit) goes to stderr, the summary to stdout.
Exit codes: 0 ok, 1 the run failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from lakeop.cli.ingest import BAD_INPUT, use_compact_allocator
from lakeop.cli.ingest_plan import (
    current_schema_version,
    load_manifests,
    metadata_field,
    schema_checked,
    secret_data,
)
from lakeop.cli.manifests import ManifestError
from lakeop.cli.options import add_default_location, add_pod_options, counted, local_root
from lakeop.core.lake.inputs import LeaseTerms
from lakeop.core.runs.maintenance import MaintenancePlan
from lakeop.core.runs.plan import resolve_location
from lakeop.core.schema.parse import parse_fields
from lakeop.core.schema.types import Schema
from lakeop.core.spec.maintenance import parse_duration
from lakeop.core.spec.resources import TableSpec, parse_table
from lakeop.core.spec.tenancy import ENV_VAR as ALLOWED_LOCATIONS_ENV
from lakeop.core.spec.tenancy import check_location, parse_allowed_locations
from lakeop.engine.compaction import CompactionPolicy, compact
from lakeop.engine.delta_maintenance import compact_delta, expire_delta
from lakeop.engine.expiry import expire
from lakeop.engine.formats import open_format
from lakeop.engine.leases import CLI_LEASE_S, CLOCK_SKEW_S, lease_terms
from lakeop.errors import InvalidSpecError, LakeopError
from lakeop.logging_setup import engine_output
from lakeop.storage import Storage, open_storage, real_location

STORAGE_PREFIX = "LAKEOP_STORAGE_"
FORMATS = ("parquet", "delta", "iceberg")
#: the compaction lock's lease unless ``LAKEOP_CLAIM_LEASE_SECONDS`` says otherwise
_CLI_LOCK = LeaseTerms(CLI_LEASE_S, CLOCK_SKEW_S)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="manifest file or folder (Table, its SchemaVersions, its storage Secret)",
    )
    parser.add_argument("--table", help="Table name when the files hold several")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.add_argument("--target-file-size-bytes", type=int, help="override the Table's")
    parser.add_argument("--min-input-files", type=int, help="override the Table's")
    parser.add_argument(
        "--retention", help="expire: override retention.snapshots (a duration, e.g. 0s)"
    )
    add_pod_options(parser)
    add_default_location(parser)


def run_compact(args: argparse.Namespace) -> int:
    return _run(args, "compact")


def run_expire(args: argparse.Namespace) -> int:
    return _run(args, "expire")


def _run(args: argparse.Namespace, action: str) -> int:
    env: dict[str, str] = dict(os.environ)
    use_compact_allocator(env)
    try:
        job = _job_of_plan(args, env, action) if args.plan_env else _job_of_files(args, env, action)
        job = replace(job, lock_terms=lease_terms(env, CLI_LEASE_S))
    except (*BAD_INPUT, ManifestError, OSError, yaml.YAMLError, ValueError) as e:
        print(f"lakeop {action}: {e}", file=sys.stderr)
        _terminate(
            args, {"error": {"reason": getattr(e, "reason", "InvalidInput"), "message": str(e)}}
        )
        return 2
    with engine_output():  # the engine's messages on stderr, unless logging is routed
        code, summary = _execute(job, action)
    _emit(args, action, summary)
    _terminate(args, summary)
    return code


@dataclass(frozen=True)
class _Job:
    table: str
    format: str
    storage: Storage
    schema: Schema | None
    version: int
    policy: CompactionPolicy
    run_id: str
    compression: str
    snapshot_retention_s: float
    rejected_retention_s: float
    then_expire: bool = False
    #: the lease of the table's compaction lock (a delta table's: see compact_delta)
    lock_terms: LeaseTerms = _CLI_LOCK


def _job_of_plan(args: argparse.Namespace, env: dict[str, str], action: str) -> _Job:
    text = env.get(args.plan_env)
    if not text:
        raise InvalidSpecError(f"--plan-env: environment variable {args.plan_env} is empty")
    plan = MaintenancePlan.from_json(text)
    if plan.action.value != action:
        raise InvalidSpecError(f"maintenance plan: action {plan.action.value}, not {action}")
    if plan.format not in FORMATS:
        raise InvalidSpecError(f"lakeop {action}: format {plan.format!r} is not one of {FORMATS}")
    refusal = check_location(
        plan.namespace,
        plan.location,
        parse_allowed_locations(env.get(ALLOWED_LOCATIONS_ENV)),
        real_location,
    )
    if refusal:
        raise InvalidSpecError(f"Table {plan.namespace}/{plan.table}: {refusal}")
    return _Job(
        plan.table,
        plan.format,
        open_storage(plan.location, env, STORAGE_PREFIX),
        parse_fields(list(plan.schema_fields)),
        plan.schema_version,
        CompactionPolicy(plan.target_file_size_bytes, plan.min_input_files),
        plan.run_id,
        plan.compression,
        plan.snapshot_retention_s,
        plan.rejected_retention_s,
        plan.then_expire,
    )


def _job_of_files(args: argparse.Namespace, env: dict[str, str], action: str) -> _Job:
    docs = load_manifests(args.filename) if args.filename else None
    if docs is None:
        raise InvalidSpecError("give -f PATH (the Table's manifests)")
    table = _pick_table(docs, args.table)
    location = _location(args, env, table)
    for k, v in _storage_secret(docs, table).items():
        env.setdefault(STORAGE_PREFIX + k, v)
    storage = open_storage(location, env, STORAGE_PREFIX)
    if table.format not in FORMATS:
        raise InvalidSpecError(
            f"Table {table.namespace}/{table.name}: lakeop {action} supports format "
            f"parquet, delta and iceberg (this table is {table.format})"
        )
    schema, number = None, 0
    if action == "compact":
        version = current_schema_version(table, docs)
        schema, number = version.schema, version.version
    m = table.maintenance
    policy = CompactionPolicy(
        _positive(args.target_file_size_bytes, "--target-file-size-bytes")
        or m.target_file_size_bytes,
        _positive(args.min_input_files, "--min-input-files") or m.min_input_files,
    )
    retention = m.snapshot_retention_s
    if args.retention is not None:
        retention = parse_duration(args.retention)
    return _Job(
        table.name,
        table.format,
        storage,
        schema,
        number,
        policy,
        args.run_id or _run_id(action, table.name),
        table.compression,
        retention,
        m.rejected_retention_s,
    )


def _execute(job: _Job, action: str) -> tuple[int, dict[str, Any]]:
    """The run, its exit code and its summary (``error`` set when it failed). A compaction
    with ``then_expire`` (the operator's maintenance Jobs) expires next, in the same run: its
    summary goes under ``expiry`` and its failure fails the run."""
    code, summary = _attempt(job, action)
    if action != "compact" or not job.then_expire or code != 0:
        return code, summary
    code, expiry = _attempt(job, "expire")
    summary["expiry"] = {k: v for k, v in expiry.items() if k not in ("table", "action", "runId")}
    summary["error"] = expiry.get("error")
    return code, summary


def _attempt(job: _Job, action: str) -> tuple[int, dict[str, Any]]:
    try:
        return 0, {"table": job.table, "action": action, **_summary(job, action), "error": None}
    except LakeopError as e:
        code = 2 if isinstance(e, BAD_INPUT) else 1
        return code, _failure(job, action, e.reason, str(e))
    except Exception as e:
        traceback.print_exc()
        return 1, _failure(job, action, "Failed", f"{type(e).__name__}: {e}")


def _summary(job: _Job, action: str) -> dict[str, Any]:
    if job.format == "iceberg":
        return _summary_iceberg(job, action)
    if action == "compact" and job.format == "delta":
        return compact_delta(job.storage, job.policy, job.run_id, job.lock_terms).summary()
    if action == "expire" and job.format == "delta":
        exp = expire_delta(job.storage, job.snapshot_retention_s, job.rejected_retention_s)
        return {"runId": job.run_id, **exp.summary()}
    if action == "compact":
        assert job.schema is not None
        return compact(
            job.storage,
            job.schema,
            job.version,
            job.policy,
            job.run_id,
            compression=job.compression,
        ).summary()
    exp = expire(job.storage, job.snapshot_retention_s, job.rejected_retention_s, run_id=job.run_id)
    return {"runId": job.run_id, **exp.summary()}


def _summary_iceberg(job: _Job, action: str) -> dict[str, Any]:
    """The Iceberg table is found from its location (``_lakeop/iceberg.json``: identifier and
    partitioning; the catalog's URL from the environment, as for a run)."""
    from lakeop.engine.formats.iceberg import IcebergFormat  # noqa: PLC0415
    from lakeop.engine.formats.iceberg_catalog import read_target  # noqa: PLC0415
    from lakeop.engine.iceberg_expiry import expire_iceberg  # noqa: PLC0415
    from lakeop.engine.iceberg_maintenance import compact_iceberg  # noqa: PLC0415

    target = read_target(job.storage)
    if target is None:
        raise InvalidSpecError(f"Table {job.table}: no iceberg table at {job.storage.url} yet")
    job.storage.format_target = target
    fmt = open_format(job.storage, "iceberg")
    assert isinstance(fmt, IcebergFormat)
    if action == "compact":
        return compact_iceberg(
            fmt, job.version, job.policy, job.run_id, compression=job.compression
        ).summary()
    exp = expire_iceberg(fmt, job.snapshot_retention_s, job.rejected_retention_s, run_id=job.run_id)
    return {"runId": job.run_id, **exp.summary()}


def _failure(job: _Job, action: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "table": job.table,
        "action": action,
        "runId": job.run_id,
        "error": {"reason": reason, "message": message},
    }


def _terminate(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.termination_log:
        try:
            Path(args.termination_log).write_text(json.dumps(summary)[:4000])
        except OSError as e:
            print(f"lakeop: cannot write termination log: {e}", file=sys.stderr)


def _positive(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise InvalidSpecError(f"{flag}: must be >= 1, got {value}")
    return value


def _pick_table(docs: list[dict[str, Any]], name: str | None) -> TableSpec:
    tables = [d for d in docs if d.get("kind") == "Table"]
    if name:
        tables = [d for d in tables if metadata_field(d, "name") == name]
    if len(tables) != 1:
        found = [metadata_field(d, "name") for d in docs if d.get("kind") == "Table"]
        raise InvalidSpecError(
            f"need exactly one Table{f' named {name}' if name else ''} (use --table), found {found}"
        )
    return parse_table(schema_checked(tables[0]))


def _location(args: argparse.Namespace, env: dict[str, str], table: TableSpec) -> str:
    root = local_root(args.default_location, env)
    location = resolve_location(root, table.namespace, table.name, table.location)
    allowed = parse_allowed_locations(env.get(ALLOWED_LOCATIONS_ENV))
    refusal = check_location(table.namespace, location, allowed, real_location)
    if refusal:
        raise InvalidSpecError(f"Table {table.namespace}/{table.name}: {refusal}")
    return location


def _storage_secret(docs: list[dict[str, Any]], table: TableSpec) -> dict[str, str]:
    if not table.storage_secret_ref:
        return {}
    return secret_data(docs, table.namespace, table.storage_secret_ref)


def _run_id(action: str, table: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dt%H%M%S")
    return f"{action}-{table.replace('.', '-')[:40].strip('-')}-{stamp}-{secrets.token_hex(3)}"


def _emit(args: argparse.Namespace, action: str, s: dict[str, Any]) -> None:
    if args.output == "json":
        print(json.dumps(s))
    elif s.get("error"):
        print(
            f"lakeop {action}: failed: {s['error']['reason']}: {s['error']['message']}",
            file=sys.stderr,
        )
    elif action == "compact":
        print(
            f"compaction {s['runId']}: table {s['table']}: "
            f"{counted(s['partitions'], 'partition')}, {counted(s['filesBefore'], 'file')} "
            f"({counted(s['bytesBefore'], 'byte')}) -> {counted(s['filesAfter'], 'file')} "
            f"({counted(s['bytesAfter'], 'byte')}), {counted(s['rows'], 'row')}, "
            f"{s['seconds']:.2f} s"
        )
    else:
        print(
            f"expiry: table {s['table']}: {counted(s['filesDeleted'], 'file')} deleted, "
            f"{counted(s['bytesFreed'], 'byte')} freed (replaced files of "
            f"{counted(s['commitsExpired'], 'commit')}, quarantined records of "
            f"{counted(s['rejectedRunsDeleted'], 'run')}), {s['seconds']:.2f} s"
        )
