"""Bad input and fenced names through ``lakeop ingest -f`` and ``lakeop validate``.

Each case is a manifest folder that once ended in a traceback, wrote outside its table or
ignored ``LAKEOP_ALLOWED_LOCATIONS``. Both commands must refuse it with a message naming the
object, the field and the value; ``ingest`` exits 2 and leaves the filesystem exactly as it
was (nothing written, so nothing claimed); and once the input is fixed, the next run ingests
every row, read back with DuckDB.
"""

from __future__ import annotations

import base64
import copy
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from enginekit import duck, write_csv

from lakeop.cli import main

ROWS = 60
HEADER = "id,ts,name"
API = "lakeop.io/v1alpha1"
NS = "demo"

Docs = list[dict[str, Any]]


def csv_rows() -> list[str]:
    return [f"{i},2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,n{i % 7}" for i in range(ROWS)]


def base_docs(tmp: Path) -> Docs:
    return [
        {
            "apiVersion": API,
            "kind": "Table",
            "metadata": {"name": "events", "namespace": NS},
            "spec": {
                "location": f"file://{tmp}/lake/events",
                "partitioning": {"strategy": "date", "column": "ts", "granularity": "day"},
            },
        },
        {
            "apiVersion": API,
            "kind": "SchemaVersion",
            "metadata": {"name": "events-v1", "namespace": NS},
            "spec": {
                "tableRef": "events",
                "version": 1,
                "fields": [
                    {"name": "id", "type": "long", "nullable": False},
                    {"name": "ts", "type": "timestamp"},
                    {"name": "name", "type": "string"},
                ],
            },
        },
        {
            "apiVersion": API,
            "kind": "IngestionJob",
            "metadata": {"name": "load", "namespace": NS},
            "spec": {
                "tableRef": "events",
                "source": {"uri": f"file://{tmp}/in/*.csv", "format": "csv"},
            },
        },
    ]


def table(docs: Docs) -> dict[str, Any]:
    return docs[0]


def fields(docs: Docs) -> list[dict[str, Any]]:
    return list(docs[1]["spec"]["fields"])


def job(docs: Docs) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "IngestionJob")


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        **data,
    }


def sqlite_db(tmp: Path) -> str:
    url = f"sqlite:///{tmp}/src.sqlite"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE ev (id INTEGER, ts TEXT, name TEXT)"))
        for row in csv_rows():
            i, ts, name = row.split(",")
            conn.execute(
                sa.text("INSERT INTO ev VALUES (:i, :ts, :n)"), {"i": i, "ts": ts, "n": name}
            )
    engine.dispose()
    return url


def sql_source(docs: Docs) -> None:
    job(docs)["spec"]["source"] = {
        "sql": {"urlSecretRef": {"name": "db", "key": "url"}, "query": "SELECT * FROM ev"}
    }


@dataclass
class Setup:
    """What a case changes: the manifests, extra CLI arguments, environment variables, and
    where the fixed run's table is (when not the base location)."""

    docs: Docs
    tmp: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    location: Path | None = None


Mutation = Callable[[Setup, bool], None]


def year_field(s: Setup, fixed: bool) -> None:
    s.docs[1]["spec"]["fields"] = [
        *fields(s.docs),
        {"name": "yr" if fixed else "year", "type": "int"},
    ]


def bucket_field(s: Setup, fixed: bool) -> None:
    table(s.docs)["spec"]["partitioning"] = {"strategy": "hash", "column": "id", "buckets": 4}
    s.docs[1]["spec"]["fields"] = [
        *fields(s.docs),
        {"name": "bucket_no" if fixed else "bucket", "type": "int"},
    ]


def range_numbers_on_string(s: Setup, fixed: bool) -> None:
    table(s.docs)["spec"]["partitioning"] = {
        "strategy": "range",
        "column": "name",
        "boundaries": ["n2", "n5"] if fixed else [0, 100],
    }


def range_timestamp_with_zone(s: Setup, fixed: bool) -> None:
    bound = "2026-01-10T00:00:00" + ("" if fixed else "Z")
    table(s.docs)["spec"]["partitioning"] = {
        "strategy": "range",
        "column": "ts",
        "boundaries": [bound],
    }


def list_values_of_other_type(s: Setup, fixed: bool) -> None:
    table(s.docs)["spec"]["partitioning"] = {
        "strategy": "list",
        "column": "id",
        "values": {"low": ["0", "1", "2"] if fixed else ["0", "one"]},
    }


def secret_not_base64(s: Setup, fixed: bool) -> None:
    table(s.docs)["spec"]["storageSecretRef"] = {"name": "lake"}
    value = base64.b64encode(b"eu-west-1").decode() if fixed else "!!hunter2!!"
    s.docs.append(secret("lake", data={"AWS_REGION": value}))


def secret_not_utf8(s: Setup, fixed: bool) -> None:
    table(s.docs)["spec"]["storageSecretRef"] = {"name": "lake"}
    raw = b"eu-west-1" if fixed else b"\xff\xfehunter2"
    s.docs.append(secret("lake", data={"AWS_REGION": base64.b64encode(raw).decode()}))


def sql_driver_missing(s: Setup, fixed: bool) -> None:
    sql_source(s.docs)
    url = sqlite_db(s.tmp) if fixed else "mysql+pymysql://reader:hunter2@localhost/db"
    s.docs.append(secret("db", stringData={"url": url}))


def sql_secret_missing(s: Setup, fixed: bool) -> None:
    sql_source(s.docs)
    if fixed:
        s.docs.append(secret("db", stringData={"url": sqlite_db(s.tmp)}))


def duplicate_version(s: Setup, fixed: bool) -> None:
    twin = copy.deepcopy(s.docs[1])
    twin["metadata"]["name"] = "events-v1-again"
    twin["spec"]["version"] = 2 if fixed else 1
    s.docs.insert(2, twin)


def run_id_traversal(s: Setup, fixed: bool) -> None:
    s.args = ["--run-id", "retry-1" if fixed else "../../x"]


def job_name_traversal(s: Setup, fixed: bool) -> None:
    job(s.docs)["metadata"]["name"] = "load" if fixed else "../../escape"
    if not fixed:
        s.args = ["--job", "../../escape"]


def table_name_traversal(s: Setup, fixed: bool) -> None:
    name = "events" if fixed else ".."
    table(s.docs)["metadata"]["name"] = name
    del table(s.docs)["spec"]["location"]
    s.docs[1]["spec"]["tableRef"] = name
    job(s.docs)["spec"]["tableRef"] = name
    s.env["LAKEOP_DEFAULT_LOCATION"] = f"file://{s.tmp}/root"
    s.location = s.tmp / "root" / NS / "events"


def namespace_with_slash(s: Setup, fixed: bool) -> None:
    for doc in s.docs:
        doc["metadata"]["namespace"] = NS if fixed else "a/b"


def location_with_host(s: Setup, fixed: bool) -> None:
    # a URL parser reads host 'typo' and path <tmp>/lake/events: the run wrote there
    if not fixed:
        table(s.docs)["spec"]["location"] = f"file://typo{s.tmp}/lake/events"


def location_with_dotdot(s: Setup, fixed: bool) -> None:
    if not fixed:
        table(s.docs)["spec"]["location"] = f"file://{s.tmp}/lake/../../events"


def location_not_allowed(s: Setup, fixed: bool) -> None:
    s.env["LAKEOP_ALLOWED_LOCATIONS"] = f"file://{s.tmp}/allowed"
    where = "allowed" if fixed else "other"
    table(s.docs)["spec"]["location"] = f"file://{s.tmp}/{where}/events"
    s.location = s.tmp / where / "events"


def location_through_symlink(s: Setup, fixed: bool) -> None:
    s.env["LAKEOP_ALLOWED_LOCATIONS"] = f"file://{s.tmp}/allowed"
    (s.tmp / "outside").mkdir(exist_ok=True)
    (s.tmp / "allowed").mkdir(exist_ok=True)
    link = s.tmp / "allowed" / "link"
    if not link.is_symlink():
        link.symlink_to(s.tmp / "outside")
    where = "real" if fixed else "link"
    table(s.docs)["spec"]["location"] = f"file://{s.tmp}/allowed/{where}/events"
    s.location = s.tmp / "allowed" / where / "events"


def source_with_host(s: Setup, fixed: bool) -> None:
    if not fixed:
        job(s.docs)["spec"]["source"]["uri"] = "file://in/*.csv"


def csv_skip_rows_huge(s: Setup, fixed: bool) -> None:
    job(s.docs)["spec"]["source"]["options"] = {"skipRows": 0 if fixed else 2**70}


def csv_null_values_numbers(s: Setup, fixed: bool) -> None:
    job(s.docs)["spec"]["source"]["options"] = {"nullValues": ["NA"] if fixed else [1, 2]}


def csv_line_break_delimiter(s: Setup, fixed: bool) -> None:
    job(s.docs)["spec"]["source"]["options"] = {"delimiter": "," if fixed else "\n"}


def unknown_field(s: Setup, fixed: bool) -> None:
    if not fixed:
        table(s.docs)["spec"]["partitioning"]["colum"] = "ts"  # a typo the API server refuses


@dataclass(frozen=True)
class Case:
    mutate: Mutation
    message: str  # what both commands print, with {tmp} for the test's folder
    validate: bool = True  # lakeop validate sees it too (not: CLI arguments, absent Secrets)
    secret: str | None = None  # a value that must never be printed


CASES = {
    "field-named-year": Case(
        year_field,
        "Table demo/events: spec.partitioning: date partitioning writes the directory key(s) "
        "year, which the schema also has as field(s)",
    ),
    "field-named-bucket": Case(
        bucket_field, "hash partitioning writes the directory key(s) bucket, which the schema"
    ),
    "range-numbers-on-string": Case(
        range_numbers_on_string,
        "Table demo/events: spec.partitioning.boundaries: 0 does not fit 'name', a string field",
    ),
    "range-timestamp-with-zone": Case(
        range_timestamp_with_zone,
        "spec.partitioning.boundaries: '2026-01-10T00:00:00Z' does not fit 'ts', a timestamp "
        "field, which needs ISO timestamp strings in UTC, without a zone",
    ),
    "list-values-of-other-type": Case(
        list_values_of_other_type,
        "spec.partitioning.values.low: 'one' does not fit 'id', a long field, which needs integers",
    ),
    "secret-not-base64": Case(
        secret_not_base64,
        "Secret demo/lake: data.AWS_REGION: not valid base64 (value not shown)",
        secret="hunter2",
    ),
    "secret-not-utf8": Case(
        secret_not_utf8,
        "Secret demo/lake: data.AWS_REGION: decodes to bytes that are not UTF-8 text",
        secret="hunter2",
    ),
    "sql-driver-missing": Case(
        sql_driver_missing,
        "spec.source.sql.urlSecretRef: Secret demo/db key url: the driver for 'mysql+pymysql' "
        "is not installed",
        secret="hunter2",
    ),
    "sql-secret-missing": Case(
        sql_secret_missing,
        "IngestionJob demo/load: spec.source.sql.urlSecretRef: Secret demo/db key url: not found",
        validate=False,
    ),
    "duplicate-version": Case(
        duplicate_version,
        "SchemaVersion demo/events-v1-again: spec.version: version 1 of Table demo/events is "
        "already taken by SchemaVersion demo/events-v1",
    ),
    "run-id-traversal": Case(
        run_id_traversal, "--run-id: must be a DNS-1123 label", validate=False
    ),
    "job-name-traversal": Case(
        job_name_traversal,
        "IngestionJob demo/../../escape: metadata.name: must be a DNS-1123 subdomain",
    ),
    "table-name-traversal": Case(
        table_name_traversal,
        "IngestionJob demo/load: spec.tableRef: must be a DNS-1123 subdomain: at most 253 "
        "lowercase letters, digits, '-' and '.', each dot-separated part starting and ending "
        "with a letter or digit, got '..'",
    ),
    "namespace-with-slash": Case(
        namespace_with_slash, "metadata.namespace: must be a DNS-1123 label"
    ),
    "location-with-host": Case(
        location_with_host,
        "Table demo/events: spec.location: location 'file://typo{tmp}/lake/events': file:// "
        "needs an absolute path (file:///dir/...); 'typo' would be read as a host name",
    ),
    "location-with-dotdot": Case(
        location_with_dotdot, "Table demo/events: spec.location: location 'file://{tmp}/lake/../"
    ),
    "location-not-allowed": Case(
        location_not_allowed,
        "location 'file://{tmp}/other/events' is not allowed for namespace 'demo': it must be "
        "under one of file://{tmp}/allowed",
    ),
    "location-through-symlink": Case(
        location_through_symlink,
        "location 'file://{tmp}/allowed/link/events' is not allowed for namespace 'demo': it "
        "leads to 'file://{tmp}/outside/events' through a symbolic link",
    ),
    "source-with-host": Case(
        source_with_host, "IngestionJob demo/load: spec.source.uri: a file:// URI needs an absolute"
    ),
    "csv-skip-rows-huge": Case(csv_skip_rows_huge, "spec.source.options.skipRows"),
    "csv-null-values-numbers": Case(csv_null_values_numbers, "spec.source.options.nullValues"),
    "csv-line-break-delimiter": Case(
        csv_line_break_delimiter, "spec.source.options.delimiter: cannot be a line break"
    ),
    "unknown-field": Case(
        unknown_field,
        "Table demo/events: spec.partitioning: Additional properties are not allowed "
        "('colum' was unexpected)",
    ),
}


def snapshot(root: Path) -> set[tuple[str, int]]:
    """Every path under ``root`` with its size (directories 0): what a run may not change."""
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            out.add((str(p.relative_to(root)), 0 if p.is_dir() else p.lstat().st_size))
    return out


def write(s: Setup) -> Path:
    folder = s.tmp / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(s.docs))
    return folder


def prepare(tmp: Path, case: Case, *, fixed: bool) -> tuple[Setup, Path]:
    s = Setup(base_docs(tmp), tmp)
    case.mutate(s, fixed)
    return s, write(s)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_before_any_io_then_the_fixed_input_ingests(
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    write_csv(tmp_path / "in" / "a.csv", HEADER, csv_rows())
    s, folder = prepare(tmp_path, case, fixed=False)
    for k, v in s.env.items():
        monkeypatch.setenv(k, v)
    message = case.message.format(tmp=tmp_path)
    before = snapshot(tmp_path.parent)

    assert main(["ingest", "-f", str(folder), *s.args]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert snapshot(tmp_path.parent) == before  # nothing written, so nothing claimed

    assert main(["validate", "-q", str(folder)]) == (1 if case.validate else 0)
    out = capsys.readouterr().out
    if case.validate:
        assert message in out, out
    if case.secret:
        assert case.secret not in err + out

    s, folder = prepare(tmp_path, case, fixed=True)
    for k, v in s.env.items():
        monkeypatch.setenv(k, v)
    assert main(["validate", "-q", str(folder)]) == 0, capsys.readouterr().out
    assert main(["ingest", "-f", str(folder), *s.args]) == 0, capsys.readouterr().err
    location = s.location or tmp_path / "lake" / "events"
    assert duck(location, "SELECT count(*), count(DISTINCT id) FROM t")[0] == (ROWS, ROWS)
    if name == "location-through-symlink":
        assert list((tmp_path / "outside").iterdir()) == []


def test_refusals_are_exit_2_without_traceback_in_a_real_process(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", HEADER, csv_rows())
    for name in ("field-named-year", "secret-not-base64", "sql-driver-missing"):
        _, folder = prepare(tmp_path, CASES[name], fixed=False)
        done = subprocess.run(
            [sys.executable, "-m", "lakeop", "ingest", "-f", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert CASES[name].message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "lake").exists()


def test_plan_env_honours_allowed_locations(tmp_path: Path) -> None:
    """A Job pod's run (--plan-env) refuses a location outside the prefixes too."""
    from enginekit import csv_source, plan  # noqa: PLC0415

    src = write_csv(tmp_path / "in" / "a.csv", HEADER, csv_rows())
    p = plan(tmp_path / "lake", csv_source(src))
    env = {
        **os.environ,
        "PLAN": p.to_json(),
        "LAKEOP_ALLOWED_LOCATIONS": f"t=file://{tmp_path}/allowed",
    }
    done = subprocess.run(
        [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "PLAN"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert f"it must be under one of file://{tmp_path}/allowed" in done.stderr
    assert not (tmp_path / "lake").exists()


def test_plan_env_checks_the_operators_prefixes_through_symbolic_links(tmp_path: Path) -> None:
    """The operator resolves links on its own filesystem; the Job pod, which has the
    volumes, checks again against the prefixes the plan carries."""
    import dataclasses  # noqa: PLC0415

    from enginekit import csv_source, plan  # noqa: PLC0415

    src = write_csv(tmp_path / "in" / "a.csv", HEADER, csv_rows())
    (tmp_path / "allowed").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "allowed" / "link").symlink_to(tmp_path / "outside")
    fenced = (f"file://{tmp_path}/allowed",)
    p = dataclasses.replace(
        plan(tmp_path / "allowed" / "link" / "events", csv_source(src)), allowed_prefixes=fenced
    )
    cmd = [sys.executable, "-m", "lakeop", "ingest", "--plan-env", "PLAN"]
    env = {k: v for k, v in os.environ.items() if k != "LAKEOP_ALLOWED_LOCATIONS"}
    done = subprocess.run(
        cmd, env={**env, "PLAN": p.to_json()}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    assert f"leads to 'file://{tmp_path}/outside/events' through a symbolic link" in done.stderr
    assert list((tmp_path / "outside").iterdir()) == []

    good = dataclasses.replace(
        p, table=dataclasses.replace(p.table, location=f"file://{tmp_path}/allowed/events")
    )
    done = subprocess.run(
        cmd, env={**env, "PLAN": good.to_json()}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert duck(tmp_path / "allowed" / "events", "SELECT count(*) FROM t")[0][0] == ROWS
