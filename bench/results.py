"""The one table ``make bench`` ends with: every case measured against DuckDB doing the same
work in the same run (case, size, lakeop seconds, DuckDB seconds, ratio, peak RSS).

Benchmarks call :func:`record`; ``bench/run.py`` prints :func:`table` after the last one
(a benchmark run on its own prints its own rows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    case: str
    size: str
    lakeop_s: float
    duckdb_s: float | None
    lakeop_rss_mib: float
    duckdb_rss_mib: float | None = None

    @property
    def ratio(self) -> float | None:
        """DuckDB's time over lakeop's: above 1.0 lakeop is faster."""
        return None if self.duckdb_s is None else self.duckdb_s / self.lakeop_s


ROWS: list[Row] = []


def record(row: Row) -> Row:
    ROWS.append(row)
    return row


def table(rows: list[Row] | None = None) -> str:
    rows = ROWS if rows is None else rows
    head = (
        f"{'case':34s} {'size':>10s} {'lakeop s':>9s} {'DuckDB s':>9s} {'ratio':>6s} "
        f"{'lakeop RSS':>11s} {'DuckDB RSS':>11s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        duck = "-" if r.duckdb_s is None else f"{r.duckdb_s:.2f}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        drss = "-" if r.duckdb_rss_mib is None else f"{r.duckdb_rss_mib:.0f} MiB"
        lines.append(
            f"{r.case:34s} {r.size:>10s} {r.lakeop_s:9.2f} {duck:>9s} {ratio:>6s} "
            f"{r.lakeop_rss_mib:7.0f} MiB {drss:>11s}"
        )
    return "\n".join(lines)
