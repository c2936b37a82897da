"""Bad inputs: each a clear error naming source, line, field and value, or the policy."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from enginekit import EVENTS, csv_source, duck, plan, run, visible_parquet, write_csv

from lakeop.engine import run as engine_run
from lakeop.errors import (
    InvalidRecordsError,
    InvalidSpecError,
    SourceNotFoundError,
    StorageUnavailableError,
    TransientError,
)

HEADER = "id,user,ts,amount,country"
GOOD = [f"{i},u{i},2026-03-01 10:00:00,1.5,DE" for i in range(10)]


def rejected(lake: Path, run_id: str = "run-1") -> list[dict[str, object]]:
    out = []
    for f in sorted((lake / "_rejected" / run_id).glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


def test_wrong_type_fails_naming_file_line_field_value(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", HEADER, [*GOOD[:3], "3,u3,2026-03-01,abc,DE", *GOOD[4:]])
    with pytest.raises(InvalidRecordsError) as e:
        run(plan(tmp_path / "lake", csv_source(src)))
    msg = str(e.value)
    assert f"source file://{src}: record 4 (line 5): field 'amount'" in msg
    assert "cannot convert 'abc' to double" in msg
    assert visible_parquet(tmp_path / "lake") == []


@pytest.mark.parametrize("policy", ["skip", "quarantine"])
def test_wrong_type_skip_and_quarantine(tmp_path: Path, policy: str) -> None:
    src = write_csv(tmp_path / "a.csv", HEADER, [*GOOD[:3], "3,u3,2026-03-01,abc,DE", *GOOD[4:]])
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), policy=policy))
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (10, 9, 1)
    assert duck(lake, "SELECT count(*) FROM t")[0][0] == 9
    rej = rejected(lake)
    if policy == "skip":
        assert rej == []
    else:
        assert len(rej) == 1 and rej[0]["field"] == "amount" and rej[0]["line"] == 5
        assert "abc" in str(rej[0]["reason"])
        assert rej[0]["data"] == {
            "id": "3",
            "user": "u3",
            "ts": "2026-03-01",
            "amount": "abc",
            "country": "DE",
        }


def test_malformed_lines(tmp_path: Path) -> None:
    rows = [*GOOD[:2], "2,u2,2026-03-01,1.5,DE,EXTRA", "3,u3", *GOOD[4:]]
    src = write_csv(tmp_path / "a.csv", HEADER, rows)
    with pytest.raises(InvalidRecordsError, match=r"line 4: expected 5 columns, got 6"):
        run(plan(tmp_path / "l1", csv_source(src)))
    lake = tmp_path / "l2"
    result = run(plan(lake, csv_source(src), policy="quarantine"))
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (10, 8, 2)
    rej = rejected(lake)
    assert [r["line"] for r in rej] == [4, 5]
    assert rej[0]["text"] == "2,u2,2026-03-01,1.5,DE,EXTRA"


def test_missing_required_column(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", "user,ts,amount", ["u1,2026-03-01,1.0"])
    with pytest.raises(InvalidRecordsError, match="required field 'id' is missing from the source"):
        run(plan(tmp_path / "lake", csv_source(src)))


def test_null_in_non_nullable_field(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", HEADER, [*GOOD[:2], ",u,2026-03-01,1,DE"])
    with pytest.raises(InvalidRecordsError, match=r"record 3 .*null in non-nullable field 'id'"):
        run(plan(tmp_path / "lake", csv_source(src)))


def test_absent_nullable_and_extra_columns(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", "id,amount,surprise", ["1,2.5,x", "2,3.5,y"])
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src)))
    assert result.rows_written == 2 and result.extra_columns == ["surprise"]
    assert result.summary().to_dict()["ignoredColumns"] == ["surprise"]
    assert duck(lake, "SELECT count(*) FROM t WHERE user IS NULL AND ts IS NULL")[0][0] == 2


def test_empty_files(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.csv").write_bytes(b"")
    write_csv(tmp_path / "in" / "header_only.csv", HEADER, [])
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(f"{tmp_path}/in/*.csv")))
    assert (result.rows_read, result.rows_written, result.files_written) == (0, 0, 0)
    assert result.error is None


def test_non_utf8_bytes(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_bytes(HEADER.encode() + b"\n1,ok,2026-03-01,1,DE\n2,b\xffd,2026-03-01,1,DE\n")
    with pytest.raises(InvalidRecordsError, match=r"record 2 \(line 3\): field 'user'.*b\\\\xffd"):
        run(plan(tmp_path / "l1", csv_source(src)))
    lake = tmp_path / "l2"
    result = run(plan(lake, csv_source(src), policy="quarantine"))
    assert (result.rows_written, result.rows_rejected) == (1, 1)
    assert rejected(lake)[0]["field"] == "user"


def test_glob_matching_nothing(tmp_path: Path) -> None:
    with pytest.raises(
        SourceNotFoundError, match=r"source file://.*/nope/\*\.csv: no file matches"
    ):
        run(plan(tmp_path / "lake", csv_source(f"{tmp_path}/nope/*.csv")))


def test_unreachable_s3_endpoint_is_transient_and_retried(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LAKEOP_STORAGE_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "LAKEOP_STORAGE_AWS_ACCESS_KEY_ID": "k",
        "LAKEOP_STORAGE_AWS_SECRET_ACCESS_KEY": "s",
        "LAKEOP_STORAGE_LAKEOP_S3_CONNECT_TIMEOUT": "1",
    }
    src = write_csv(tmp_path / "a.csv", HEADER, GOOD)
    t0 = time.monotonic()
    with pytest.raises(StorageUnavailableError, match="storage unavailable") as e:
        run(plan("s3://lake/t", csv_source(src)), env)
    assert isinstance(e.value, TransientError)
    assert time.monotonic() - t0 > 3  # backoff 0.5 + 1 + 2 s between the 4 attempts


def test_timestamps_to_utc_and_exact_decimals(tmp_path: Path) -> None:
    fields = (
        {"name": "id", "type": "long"},
        {"name": "ts", "type": "timestamp"},
        {"name": "price", "type": "decimal", "precision": 10, "scale": 2},
    )
    src = write_csv(
        tmp_path / "a.csv",
        "id,ts,price",
        [
            "1,2026-03-01T10:00:00+02:00,12.34",
            "2,2026-03-01 10:00:00,0.10",
            "3,2026-03-01T10:00:00Z,1.005",
        ],
    )
    lake = tmp_path / "lake"
    result = run(plan(lake, csv_source(src), fields=fields, policy="quarantine"))
    assert result.rows_rejected == 1  # 1.005 does not fit scale 2 exactly
    got = duck(lake, "SELECT id, epoch(ts)::BIGINT, price::VARCHAR FROM t ORDER BY id")
    base = 1772359200  # 2026-03-01T10:00:00Z
    assert got == [(1, base - 7200, "12.34"), (2, base, "0.10")]


def test_timestamp_format_option(tmp_path: Path) -> None:
    fields = ({"name": "id", "type": "long"}, {"name": "ts", "type": "timestamp"})
    src = write_csv(tmp_path / "a.csv", "id;ts", ["1;01/03/2026 10:00", "2;'02/03/2026 11:30'"])
    lake = tmp_path / "lake"
    run(
        plan(
            lake,
            csv_source(src, delimiter=";", quoteChar="'", timestampFormat="%d/%m/%Y %H:%M"),
            fields=fields,
        )
    )
    got = duck(lake, "SELECT strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M') FROM t ORDER BY id")
    assert got == [("2026-03-01 10:00",), ("2026-03-02 11:30",)]


def test_no_header_and_null_values(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", "1,u1,2026-03-01,NA,DE", ["2,-,2026-03-01,2.0,DE"])
    lake = tmp_path / "lake"
    run(plan(lake, csv_source(src, header=False, nullValues=["NA", "-"]), fields=EVENTS))
    assert duck(lake, "SELECT id, user, amount FROM t ORDER BY id") == [
        (1, "u1", None),
        (2, None, 2.0),
    ]


def test_failed_run_removes_its_quarantine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_csv(tmp_path / "a.csv", HEADER, [*GOOD[:3], "3,u3,2026-03-01,abc,DE"])
    lake = tmp_path / "lake"

    def failing_write(storage: object, run_id: str, *, batches: Any, **_: object) -> None:
        list(batches)  # the pipeline runs and quarantines the bad record
        assert rejected(lake) != []
        raise OSError("disk full")

    monkeypatch.setattr(engine_run, "write_staged", failing_write)
    with pytest.raises(OSError, match="disk full"):
        run(plan(lake, csv_source(src), policy="quarantine"))
    # its records are gone (the directory may stay on local disk: another attempt of the
    # run could be writing into it)
    assert [p for p in (lake / "_rejected").rglob("*") if p.is_file()] == []


def test_partition_column_of_the_wrong_type_fails_before_reading(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", HEADER, GOOD)
    part = {"strategy": "date", "column": "amount", "granularity": "day"}
    with pytest.raises(InvalidSpecError) as e:
        run(plan(tmp_path / "lake", csv_source(src), partitioning=part))
    assert str(e.value).startswith("partitioning.column 'amount': date partitioning needs")
    assert "'amount' is double" in str(e.value)
    assert visible_parquet(tmp_path / "lake") == []
