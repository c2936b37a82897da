"""``lakeop validate`` over a temporary GitOps folder, against the repository's CRDs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lakeop.cli import main
from lakeop.cli.crds import openapi_to_jsonschema

TABLE = """\
apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {name: user-events, namespace: analytics}
spec:
  format: parquet
  compression: snappy
  partitioning: {strategy: date, column: timestamp, granularity: day}
  compatibility: BACKWARD
"""
SV = """\
apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {{name: {name}, namespace: analytics}}
spec:
  tableRef: {table}
  version: {version}
  fields:
{fields}
"""
V1_FIELDS = """\
    - {name: user_id, type: string, nullable: false}
    - {name: timestamp, type: timestamp}
    - {name: temperature, type: double}
"""
V2_FIELDS = V1_FIELDS + "    - {name: country, type: string, default: null}\n"
JOB = """\
apiVersion: lakeop.io/v1alpha1
kind: IngestionJob
metadata: {name: daily, namespace: analytics}
spec:
  tableRef: user-events
  source: {uri: "s3://landing/user_events/*.csv", format: csv}
  mode: append
"""


def sv(name: str, version: int, fields: str, table: str = "user-events") -> str:
    return SV.format(name=name, version=version, fields=fields.rstrip("\n"), table=table)


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    root = tmp_path / "gitops"
    (root / "analytics" / "schemas").mkdir(parents=True)
    (root / "analytics" / "table.yaml").write_text(TABLE + "---\n" + JOB)
    (root / "analytics" / "schemas" / "v1.yaml").write_text(sv("user-events-v1", 1, V1_FIELDS))
    (root / "analytics" / "schemas" / "v2.yml").write_text(sv("user-events-v2", 2, V2_FIELDS))
    (root / "README.md").write_text("not yaml: [")
    (root / "other.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    rc = main(["validate", "--quiet", *args])
    return rc, capsys.readouterr().out.splitlines()


def test_valid_folder_passes(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["validate", str(gitops)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "4 lakeop objects in 4 files: ok" in out


def test_incompatible_chain_fails(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = V2_FIELDS.replace("type: double", "type: int")
    path = gitops / "analytics" / "schemas" / "v3.yaml"
    path.write_text(sv("user-events-v3", 3, bad))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{path}: SchemaVersion analytics/user-events-v3: spec.fields.temperature: "
        "TypeNarrowed double→int (version 3 against v2 under BACKWARD)"
    ]


def test_rejected_version_is_not_used_for_later_checks(
    gitops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # v3 narrows temperature and is rejected; v4 goes back to double and is checked against v2
    (gitops / "v3.yaml").write_text(sv("user-events-v3", 3, V1_FIELDS.replace("double", "int")))
    (gitops / "v4.yaml").write_text(sv("user-events-v4", 4, V2_FIELDS))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert len(lines) == 1 and "user-events-v3" in lines[0]


def test_transitive_mode_from_the_table(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = gitops / "analytics" / "table.yaml"
    table.write_text(table.read_text().replace("BACKWARD", "BACKWARD_TRANSITIVE"))
    v3 = V1_FIELDS.replace("    - {name: temperature, type: double}\n", "")
    v4 = V1_FIELDS.replace("double", "boolean")
    (gitops / "v3.yaml").write_text(sv("user-events-v3", 3, v3))
    (gitops / "v4.yaml").write_text(sv("user-events-v4", 4, v4))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{gitops / 'v4.yaml'}: SchemaVersion analytics/user-events-v4: spec.fields.temperature: "
        "TypeChanged double→boolean (version 4 against v1 under BACKWARD_TRANSITIVE)"
    ]


def test_duplicate_version_fails(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (gitops / "zz.yaml").write_text(sv("user-events-v2-again", 2, V1_FIELDS))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{gitops / 'zz.yaml'}: SchemaVersion analytics/user-events-v2-again: spec.version: "
        "version 2 of Table analytics/user-events is already taken by SchemaVersion "
        f"analytics/user-events-v2 ({gitops / 'analytics' / 'schemas' / 'v2.yml'})"
    ]


def test_duplicate_object_fails(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (gitops / "copy.yaml").write_text(JOB)
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{gitops / 'copy.yaml'}: IngestionJob analytics/daily: metadata.name: duplicate object, "
        f"also defined in {gitops / 'analytics' / 'table.yaml'}"
    ]


def test_dangling_table_ref_fails(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (gitops / "orphan.yaml").write_text(sv("orphan-v1", 1, V1_FIELDS, table="no-such-table"))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{gitops / 'orphan.yaml'}: SchemaVersion analytics/orphan-v1: spec.tableRef: "
        "Table analytics/no-such-table not found among the files"
    ]


def test_table_in_another_namespace_does_not_resolve(
    gitops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (gitops / "job.yaml").write_text(JOB.replace("analytics", "marketing"))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert "IngestionJob marketing/daily: spec.tableRef: Table marketing/user-events" in lines[0]


def test_crd_schema_violation_fails(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (gitops / "job.yaml").write_text(
        JOB.replace("daily", "hourly").replace("mode: append", "mode: sideways\n  colour: red")
    )
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert any(
        line.endswith(
            "IngestionJob analytics/hourly: spec.mode: 'sideways' is not one of "
            "['append', 'overwrite-partitions']"
        )
        for line in lines
    ), lines
    assert any("spec: Additional properties are not allowed ('colour'" in line for line in lines)


def test_invalid_field_type_names_the_field_path(
    gitops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = V2_FIELDS + "    - {name: device, type: struct, fields: [{name: os, type: strng}]}\n"
    (gitops / "v3.yaml").write_text(sv("user-events-v3", 3, fields))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert any('device.os: unknown type "strng"' in line for line in lines), lines


def test_invalid_yaml_is_a_problem(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (gitops / "broken.yaml").write_text("kind: [unclosed\n")
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines[0].startswith(f"{gitops / 'broken.yaml'}:2:1: invalid YAML"), lines


def test_missing_path_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_crds_option_without_crds_is_usage_error(
    gitops: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["validate", "--crds", str(empty), str(gitops)]) == 2
    assert "no lakeop.io CustomResourceDefinitions found" in capsys.readouterr().err


def test_openapi_translation() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "nullable": True, "enum": ["x"]},
            "b": {"x-kubernetes-int-or-string": True},
            "c": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "d": {"type": "integer", "format": "int64"},
        },
    }
    assert openapi_to_jsonschema(schema) == {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"], "enum": ["x", None]},
            "b": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "c": {"type": "object"},
            "d": {"type": "integer"},
        },
        "additionalProperties": False,
    }


def test_validate_and_schema_do_not_import_heavy_libraries(gitops: Path) -> None:
    # pre-commit hooks start a fresh interpreter on every commit: stay clear of pyarrow & co.
    code = (
        "import sys\n"
        "from lakeop.cli import main\n"
        f"rc = main(['validate', '--quiet', {str(gitops)!r}])\n"
        "heavy = sorted({'pyarrow', 'kopf', 'sqlalchemy', 'duckdb', 'kubernetes_asyncio'}"
        " & set(sys.modules))\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "0 []", proc.stderr


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="no examples/ folder in this checkout")
def test_repository_examples(capsys: pytest.CaptureFixture[str]) -> None:
    # examples/ holds one deliberately incompatible SchemaVersion: only it is reported
    rc, lines = run(capsys, str(EXAMPLES))
    assert rc == 1
    assert lines and all("incompatible" in line for line in lines), lines
    good = [str(p) for p in sorted(EXAMPLES.glob("*.yaml")) if "incompatible" not in p.name]
    assert run(capsys, *good) == (0, [])


def test_partition_column_missing_from_latest_version(
    gitops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # v3 drops the partition column: compatible (BACKWARD ignores writer-only fields), but
    # runs writing with v3 could not derive the date partitions
    v3 = V2_FIELDS.replace("    - {name: timestamp, type: timestamp}\n", "")
    (gitops / "v3.yaml").write_text(sv("user-events-v3", 3, v3))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{gitops / 'analytics' / 'table.yaml'}: Table analytics/user-events: "
        "spec.partitioning.column: 'timestamp' is not a field of the schema (in SchemaVersion "
        "analytics/user-events-v3, version 3, the latest that passes)"
    ]


def test_partition_column_of_the_wrong_type(
    gitops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = gitops / "analytics" / "table.yaml"
    table.write_text(table.read_text().replace("column: timestamp", "column: temperature"))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert len(lines) == 1
    assert lines[0].endswith(
        "spec.partitioning.column: date partitioning needs a field of type date, timestamp; "
        "'temperature' is double (in SchemaVersion analytics/user-events-v2, version 2, "
        "the latest that passes)"
    )


def test_invalid_table_is_reported_once(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = gitops / "analytics" / "table.yaml"
    table.write_text(table.read_text().replace("compression: snappy", "compression: lzma"))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    # the Table's own problem only: its SchemaVersions and job still find it by name
    assert len(lines) == 1 and "Table analytics/user-events: spec.compression" in lines[0], lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "  schedule: every day\n",
            "IngestionJob analytics/daily: spec.schedule: schedule 'every day': expected 5 fields",
        ),
        (
            "  schedule: '0 2 * * *'\n  timeZone: Mars/Base\n",
            "IngestionJob analytics/daily: spec.timeZone: timeZone 'Mars/Base': not a known IANA",
        ),
    ],
)
def test_schedule_the_operator_would_mark_failed(
    gitops: Path, capsys: pytest.CaptureFixture[str], extra: str, message: str
) -> None:
    (gitops / "analytics" / "table.yaml").write_text(TABLE + "---\n" + JOB + extra)
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert len(lines) == 1 and lines[0].startswith(f"{gitops / 'analytics' / 'table.yaml'}: ")
    assert message in lines[0]


def test_location_fence_follows_the_environment(
    gitops: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same LAKEOP_ALLOWED_LOCATIONS / LAKEOP_DEFAULT_LOCATION the operator runs with."""
    monkeypatch.setenv("LAKEOP_DEFAULT_LOCATION", "s3://lake")
    monkeypatch.setenv("LAKEOP_ALLOWED_LOCATIONS", "s3://lake/{namespace}")
    assert run(capsys, str(gitops)) == (0, [])
    monkeypatch.setenv("LAKEOP_ALLOWED_LOCATIONS", "s3://other/{namespace}")
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{gitops / 'analytics' / 'table.yaml'}: Table analytics/user-events: spec.location: "
        "location 's3://lake/analytics/user-events' is not allowed for namespace 'analytics': "
        "it must be under one of s3://other/analytics"
    ]


def test_undecodable_secret_is_reported_without_its_value(
    gitops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (gitops / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: lake, namespace: analytics}\n"
        "data: {AWS_SECRET_ACCESS_KEY: 'hunter2!'}\n"
    )
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{gitops / 'secret.yaml'}: Secret analytics/lake: data.AWS_SECRET_ACCESS_KEY: not valid "
        "base64 (value not shown); put plain text under stringData instead"
    ]


POD_TEMPLATE = """\
  podTemplate:
    metadata: {labels: {team: data}}
    spec:
      serviceAccountName: lake-writer
      volumes: [{name: landing, hostPath: {path: /data}}]
      containers:
        - name: ingest
          volumeMounts: [{name: landing, mountPath: /data}]
"""


def test_pod_template_passes(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (gitops / "analytics" / "table.yaml").write_text(TABLE + "---\n" + JOB + POD_TEMPLATE)
    assert run(capsys, str(gitops)) == (0, [])


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            "          command: [sh, -c, 'true']\n",
            "IngestionJob analytics/daily: spec.podTemplate.spec.containers[0].command: "
            "cannot be set: the ingest container always runs lakeop's own command, "
            "got ['sh', '-c', 'true']",
        ),
        (
            "          env: [{name: LAKEOP_PLAN, value: '{}'}]\n",
            "IngestionJob analytics/daily: spec.podTemplate.spec.containers[0].env[0].name: "
            "lakeop sets LAKEOP_*, HOME, TMPDIR itself, got 'LAKEOP_PLAN'",
        ),
    ],
)
def test_pod_template_taking_over_the_run_fails(
    gitops: Path, capsys: pytest.CaptureFixture[str], container: str, message: str
) -> None:
    """The same rule as the webhook's (lakeop.core.spec.podtemplate.parse_pod_template)."""
    text = TABLE + "---\n" + JOB + POD_TEMPLATE + container
    (gitops / "analytics" / "table.yaml").write_text(text)
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [f"{gitops / 'analytics' / 'table.yaml'}: {message}"]


def test_a_version_a_delta_table_cannot_apply(
    gitops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = gitops / "analytics" / "table.yaml"
    table.write_text(TABLE.replace("format: parquet", "format: delta") + "---\n" + JOB)
    v3 = V2_FIELDS + "    - {name: visits, type: int}\n    - {name: tag, type: binary}\n"
    (gitops / "analytics" / "schemas" / "v3.yaml").write_text(sv("user-events-v3", 3, v3))
    path = gitops / "analytics" / "schemas" / "v4.yaml"
    v4 = v3.replace("{name: visits, type: int}", "{name: visits, type: long}")
    path.write_text(sv("user-events-v4", 4, v4))
    assert run(capsys, str(gitops))[0] == 0  # int→long: lakeop widens the Delta column
    path.write_text(sv("user-events-v4", 4, v4.replace("type: binary", "type: string")))
    rc, lines = run(capsys, str(gitops))
    assert rc == 1
    assert lines == [
        f"{path}: SchemaVersion analytics/user-events-v4: spec.fields.tag: "
        "FormatCannotEvolve: field tag: a delta table cannot change a column's type "
        "binary→string (lakeop widens a Delta column by int→long/float/double, "
        "long→float/double, float→double, string→binary, date→timestamp, decimal "
        "precision; top-level columns only) (version 4 against v3)"
    ]
    path.unlink()
    assert run(capsys, str(gitops))[0] == 0  # v1..v3 apply to a Delta table
