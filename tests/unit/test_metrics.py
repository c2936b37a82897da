"""The operator's Prometheus registry: names, labels, values and the HTTP endpoint."""

from __future__ import annotations

import urllib.request

import pytest

from lakeop.metrics import Metrics, start_metrics_server

TABLE = {"namespace": "analytics", "table": "user-events"}


def test_run_lifecycle_counts_by_namespace_and_table() -> None:
    metrics = Metrics()
    metrics.run_started("analytics", "user-events")
    metrics.run_started("analytics", "user-events")
    metrics.run_finished(
        "analytics",
        "user-events",
        succeeded=True,
        seconds=12.5,
        rows_written=1000,
        bytes_written=4096,
        records_rejected=3,
    )
    metrics.run_finished("analytics", "user-events", succeeded=False, seconds=2.0)

    assert metrics.sample("lakeop_runs_started_total", TABLE) == 2
    assert metrics.sample("lakeop_runs_succeeded_total", TABLE) == 1
    assert metrics.sample("lakeop_runs_failed_total", TABLE) == 1
    assert metrics.sample("lakeop_rows_written_total", TABLE) == 1000
    assert metrics.sample("lakeop_bytes_written_total", TABLE) == 4096
    assert metrics.sample("lakeop_records_rejected_total", TABLE) == 3
    assert metrics.sample("lakeop_run_duration_seconds_count", TABLE) == 2
    assert metrics.sample("lakeop_run_duration_seconds_sum", TABLE) == 14.5
    assert metrics.sample("lakeop_run_duration_seconds_bucket", {**TABLE, "le": "5.0"}) == 1
    assert metrics.sample("lakeop_run_duration_seconds_bucket", {**TABLE, "le": "15.0"}) == 2
    other = {"namespace": "other", "table": "user-events"}
    assert metrics.sample("lakeop_runs_started_total", other) is None


def test_outcome_series_exist_at_zero_once_a_run_started() -> None:
    """increase() cannot see a counter's first step from nothing: the alert needs the 0."""
    metrics = Metrics()
    assert metrics.sample("lakeop_runs_failed_total", TABLE) is None
    metrics.run_started("analytics", "user-events")
    for name in ("runs_failed", "runs_succeeded", "records_rejected", "rows_written"):
        assert metrics.sample(f"lakeop_{name}_total", TABLE) == 0


def test_queue_errors_and_rejections() -> None:
    metrics = Metrics()
    metrics.set_queue_length("a", 4)
    metrics.set_queue_length("a", 2)
    metrics.reconcile_error("Table")
    metrics.reconcile_error("Table")
    metrics.reconcile_error("IngestionJob")
    metrics.schema_version_rejected("analytics", "user-events")

    assert metrics.sample("lakeop_queue_length", {"namespace": "a"}) == 2
    assert metrics.sample("lakeop_reconcile_errors_total", {"kind": "Table"}) == 2
    assert metrics.sample("lakeop_reconcile_errors_total", {"kind": "IngestionJob"}) == 1
    assert metrics.sample("lakeop_schema_versions_rejected_total", TABLE) == 1


def test_registries_are_private() -> None:
    first, second = Metrics(), Metrics()
    first.run_started("a", "t")
    assert first.sample("lakeop_runs_started_total", {"namespace": "a", "table": "t"}) == 1
    assert second.sample("lakeop_runs_started_total", {"namespace": "a", "table": "t"}) is None


def test_negative_amounts_never_decrease_counters() -> None:
    metrics = Metrics()
    metrics.run_finished("a", "t", succeeded=True, seconds=-1.0, rows_written=-5)
    labels = {"namespace": "a", "table": "t"}
    assert metrics.sample("lakeop_rows_written_total", labels) == 0
    assert metrics.sample("lakeop_run_duration_seconds_sum", labels) == 0


def test_render_lists_every_family() -> None:
    text = Metrics().render().decode()
    for family in (
        "lakeop_runs_started_total",
        "lakeop_runs_succeeded_total",
        "lakeop_runs_failed_total",
        "lakeop_run_duration_seconds",
        "lakeop_rows_written_total",
        "lakeop_bytes_written_total",
        "lakeop_records_rejected_total",
        "lakeop_queue_length",
        "lakeop_reconcile_errors_total",
        "lakeop_schema_versions_rejected_total",
    ):
        assert f"# TYPE {family} " in text, family


@pytest.mark.timeout(30)
def test_http_endpoint_serves_the_registry() -> None:
    metrics = Metrics()
    metrics.run_started("analytics", "user-events")
    server = start_metrics_server(0, metrics, addr="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        assert response.status == 200
        assert 'lakeop_runs_started_total{namespace="analytics",table="user-events"} 1.0' in body
        # the process-global default registry (python_gc_*, process_*) is not mixed in
        assert "python_gc_objects_collected_total" not in body
    finally:
        server.stop()
