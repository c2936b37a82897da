"""``lakeop schema check`` / ``lakeop schema diff`` on files, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakeop.cli import main

V1 = """\
apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {name: ev-v1, namespace: analytics}
spec:
  tableRef: ev
  version: 1
  fields:
    - {name: id, type: long, nullable: false}
    - {name: temperature, type: double}
    - {name: amount, type: decimal, precision: 10, scale: 2}
"""
V2_OK = """\
apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {name: ev-v2, namespace: analytics}
spec:
  tableRef: ev
  version: 2
  fields:
    - {name: id, type: long, nullable: false}
    - {name: temperature, type: double}
    - {name: amount, type: decimal, precision: 12, scale: 2}
    - {name: country, type: string, default: null}
"""
V3_BAD = """\
fields:
  - {name: id, type: long, nullable: false}
  - {name: temperature, type: int}
  - {name: amount, type: decimal, precision: 12, scale: 2}
  - {name: user_id, type: string, nullable: false}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, text in {"v1": V1, "v2": V2_OK, "v3": V3_BAD}.items():
        p = tmp_path / f"{name}.yaml"
        p.write_text(text)
        out[name] = str(p)
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("- {name: device, type: struct, fields: [{name: os, type: strng}]}\n")
    out["invalid"] = str(invalid)
    return out


def test_compatible_json(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["schema", "check", "--mode", "BACKWARD", "--output", "json", files["v1"], files["v2"]]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out == {
        "compatible": True,
        "mode": "BACKWARD",
        "violations": [],
        "diff": {
            "added": ["country"],
            "removed": [],
            "changed": [{"field": "amount", "from": "decimal(10,2)", "to": "decimal(12,2)"}],
            "nullability": [],
            "defaults": [],
            "docs": [],
        },
    }


def test_incompatible_json_lists_violations(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "schema",
            "check",
            "--mode",
            "BACKWARD",
            "--output",
            "json",
            *(files[k] for k in ("v1", "v2", "v3")),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert out["compatible"] is False
    assert set(out) == {"compatible", "mode", "violations", "diff"}
    assert out["violations"] == [
        {
            "field": "temperature",
            "rule": "TypeNarrowed",
            "message": "temperature: TypeNarrowed double→int",
        },
        {
            "field": "user_id",
            "rule": "FieldAddedWithoutDefault",
            "message": "user_id: FieldAddedWithoutDefault",
        },
    ]
    assert out["diff"]["added"] == ["user_id"]
    assert out["diff"]["removed"] == ["country"]


def test_forward_mode_text_output(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["schema", "check", "--mode", "FORWARD", files["v1"], files["v2"]])
    text = capsys.readouterr().out
    assert rc == 1
    assert "incompatible under FORWARD" in text
    assert "amount: DecimalPrecisionWidened decimal(10,2)→decimal(12,2) (against v1)" in text
    assert "~ amount: type decimal(10,2) → decimal(12,2)" in text


def test_none_mode_accepts_anything_valid(files: dict[str, str]) -> None:
    assert main(["schema", "check", "--mode", "NONE", files["v1"], files["v3"]]) == 0


def test_invalid_schema_exits_2_naming_the_path(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["schema", "check", files["v1"], files["invalid"]])
    assert rc == 2
    assert 'device.os: unknown type "strng"' in capsys.readouterr().err


def test_unknown_mode_and_missing_file_exit_2(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "check", "--mode", "SIDEWAYS", files["v1"]]) == 2
    assert main(["schema", "check", files["v1"], files["v1"] + ".missing"]) == 2
    err = capsys.readouterr().err
    assert 'unknown mode "SIDEWAYS"' in err and "no such file" in err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["schema", "check"])
    assert info.value.code == 2


def test_diff(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "diff", files["v1"], files["v3"]]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "+ user_id",
        "~ temperature: type double → int",
        "~ amount: type decimal(10,2) → decimal(12,2)",
    ]


def test_diff_json(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "diff", "--output", "json", files["v1"], files["v2"]]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == ["country"]
    assert out["changed"] == [{"field": "amount", "from": "decimal(10,2)", "to": "decimal(12,2)"}]


def test_console_script_exit_code(files: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lakeop", "schema", "check", files["v2"], files["v3"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "temperature: TypeNarrowed double→int" in proc.stdout
