"""Prometheus metrics of the operator: what ran, how long, how much it wrote, what failed.

The metrics live in a :class:`Metrics` object with its own ``CollectorRegistry`` rather than
prometheus_client's process-global default registry: two operators in one test process, or a
test that counts from zero, must not see each other's samples. The operator creates one
``Metrics`` at start-up (kept in kopf's ``memo``), calls :func:`start_metrics_server` once,
and handlers call the recording methods:

- ``run_started(namespace, table)``
- ``run_finished(namespace, table, succeeded=..., seconds=..., rows_written=...,
  bytes_written=..., records_rejected=...)``
- ``set_queue_length(namespace, n)``
- ``reconcile_error(kind)``
- ``schema_version_rejected(namespace, table)``
- ``maintenance_started(namespace, table)`` and ``maintenance_finished(namespace, table,
  succeeded=..., seconds=..., files_compacted=..., bytes_compacted=..., files_expired=...,
  bytes_freed=...)``: Table maintenance runs (compaction, then expiry)
- ``set_freshness(Freshness(...))``: the whole staleness snapshot, read from the API by every
  replica (:mod:`lakeop.handlers.freshness`)

Exposed series (all prefixed ``lakeop_``): ``runs_started_total``, ``runs_succeeded_total``,
``runs_failed_total``, ``run_duration_seconds`` (histogram), ``rows_written_total``,
``bytes_written_total``, ``records_rejected_total`` and ``schema_versions_rejected_total``,
labelled by ``namespace`` and ``table``; for maintenance ``maintenance_runs_started_total``,
``maintenance_runs_succeeded_total``, ``maintenance_runs_failed_total``,
``maintenance_duration_seconds`` (histogram), ``files_compacted_total``,
``bytes_compacted_total`` (input files and bytes rewritten), ``files_expired_total`` and
``bytes_expired_total``, labelled the same; ``queue_length`` (gauge, unlabelled) and
``reconcile_errors_total`` labelled by ``kind``; ``last_success_timestamp_seconds`` and
``schedule_interval_seconds`` (gauges) labelled by ``namespace`` and ``ingestionjob``, exported
from a snapshot at each scrape so that a deleted IngestionJob's series disappears.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lakeop.core.runs.freshness import Freshness

NAMESPACE = "lakeop"
DEFAULT_PORT = 9090
PORT_ENV_VAR = "LAKEOP_METRICS_PORT"
TABLE_LABELS = ("namespace", "table")
# Ingestion runs take from seconds (a small file) to hours (a backfill).
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)


class FreshnessCollector(Collector):
    """The staleness gauges from the latest :class:`Freshness` snapshot, whole at each scrape.

    ``lakeop_last_success_timestamp_seconds`` and ``lakeop_schedule_interval_seconds``, both
    labelled ``namespace`` and ``ingestionjob``; a series goes when its IngestionJob does.
    """

    def __init__(self) -> None:
        self._snapshot = Freshness()

    def set(self, snapshot: Freshness) -> None:
        self._snapshot = snapshot  # one reference swap: a scrape sees old or new, whole

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self._snapshot
        for name, doc, values in (
            (
                "last_success_timestamp_seconds",
                "Unix time the last successful run ended (status.lastSuccessfulTime).",
                snap.last_success,
            ),
            (
                "schedule_interval_seconds",
                "Seconds between the scheduled IngestionJob's fire times around now.",
                snap.schedule_interval,
            ),
        ):
            family = GaugeMetricFamily(
                f"{NAMESPACE}_{name}", doc, labels=("namespace", "ingestionjob")
            )
            for (namespace, job), seconds in sorted(values.items()):
                family.add_metric((namespace, job), seconds)
            yield family


class Metrics:
    """Every lakeop metric, registered in one private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, labels: tuple[str, ...] = TABLE_LABELS) -> Counter:
            return Counter(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

        self.runs_started = counter("runs_started", "Ingestion runs started.")
        self.runs_succeeded = counter("runs_succeeded", "Ingestion runs that succeeded.")
        self.runs_failed = counter("runs_failed", "Ingestion runs that failed.")
        self.run_duration = Histogram(
            "run_duration_seconds",
            "Wall-clock duration of finished ingestion runs.",
            TABLE_LABELS,
            namespace=NAMESPACE,
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        self.rows_written = counter("rows_written", "Rows committed to tables.")
        self.bytes_written = counter("bytes_written", "Bytes of Parquet committed to tables.")
        self.records_rejected = counter(
            "records_rejected", "Records skipped or quarantined as invalid."
        )
        self.schema_versions_rejected = counter(
            "schema_versions_rejected", "SchemaVersions marked Rejected."
        )
        self.reconcile_errors = counter(
            "reconcile_errors", "Handler failures, by kind of object.", ("kind",)
        )
        self.maintenance_runs_started = counter(
            "maintenance_runs_started", "Table maintenance runs (compaction, then expiry) started."
        )
        self.maintenance_runs_succeeded = counter(
            "maintenance_runs_succeeded", "Table maintenance runs that succeeded."
        )
        self.maintenance_runs_failed = counter(
            "maintenance_runs_failed", "Table maintenance runs that failed."
        )
        self.maintenance_duration = Histogram(
            "maintenance_duration_seconds",
            "Duration of finished maintenance runs, as their pods measured it.",
            TABLE_LABELS,
            namespace=NAMESPACE,
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        self.files_compacted = counter(
            "files_compacted", "Small data files that compactions rewrote (their inputs)."
        )
        self.bytes_compacted = counter(
            "bytes_compacted", "Bytes of small data files that compactions rewrote."
        )
        self.files_expired = counter(
            "files_expired", "Replaced data files and rejected records deleted by expiry."
        )
        self.bytes_expired = counter("bytes_expired", "Bytes freed by expiry.")
        self.queue_length = Gauge(
            "queue_length",
            "Runs waiting for a free slot (LAKEOP_MAX_CONCURRENT_RUNS), by namespace.",
            ("namespace",),
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.freshness = FreshnessCollector()
        self.registry.register(self.freshness)

    def run_started(self, namespace: str, table: str) -> None:
        self.runs_started.labels(namespace, table).inc()
        # The outcome series exist from the first run at 0, so increase() sees the first
        # failure (a series born at 1 has no increase to show).
        for outcome in (self.runs_succeeded, self.runs_failed, self.records_rejected):
            outcome.labels(namespace, table)
        self.rows_written.labels(namespace, table)

    def run_finished(
        self,
        namespace: str,
        table: str,
        *,
        succeeded: bool,
        seconds: float,
        rows_written: int = 0,
        bytes_written: int = 0,
        records_rejected: int = 0,
    ) -> None:
        """Record one finished run; a failed run may still have written or rejected rows."""
        (self.runs_succeeded if succeeded else self.runs_failed).labels(namespace, table).inc()
        self.run_duration.labels(namespace, table).observe(max(seconds, 0.0))
        self.rows_written.labels(namespace, table).inc(max(rows_written, 0))
        self.bytes_written.labels(namespace, table).inc(max(bytes_written, 0))
        self.records_rejected.labels(namespace, table).inc(max(records_rejected, 0))

    def maintenance_started(self, namespace: str, table: str) -> None:
        self.maintenance_runs_started.labels(namespace, table).inc()
        for series in (
            self.maintenance_runs_succeeded,
            self.maintenance_runs_failed,
            self.files_compacted,
            self.bytes_compacted,
            self.files_expired,
            self.bytes_expired,
        ):
            series.labels(namespace, table)  # born at 0, so increase() sees the first one

    def maintenance_finished(
        self,
        namespace: str,
        table: str,
        *,
        succeeded: bool,
        seconds: float,
        files_compacted: int = 0,
        bytes_compacted: int = 0,
        files_expired: int = 0,
        bytes_freed: int = 0,
    ) -> None:
        """Record one finished maintenance run (a failed expiry may follow a compaction)."""
        outcome = self.maintenance_runs_succeeded if succeeded else self.maintenance_runs_failed
        outcome.labels(namespace, table).inc()
        self.maintenance_duration.labels(namespace, table).observe(max(seconds, 0.0))
        self.files_compacted.labels(namespace, table).inc(max(files_compacted, 0))
        self.bytes_compacted.labels(namespace, table).inc(max(bytes_compacted, 0))
        self.files_expired.labels(namespace, table).inc(max(files_expired, 0))
        self.bytes_expired.labels(namespace, table).inc(max(bytes_freed, 0))

    def set_queue_length(self, namespace: str, length: int) -> None:
        self.queue_length.labels(namespace).set(max(length, 0))

    def reconcile_error(self, kind: str) -> None:
        self.reconcile_errors.labels(kind).inc()

    def schema_version_rejected(self, namespace: str, table: str) -> None:
        self.schema_versions_rejected.labels(namespace, table).inc()

    def set_freshness(self, snapshot: Freshness) -> None:
        self.freshness.set(snapshot)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (``lakeop_...`` full name), None if absent."""
        return self.registry.get_sample_value(name, labels or {})

    def render(self) -> bytes:
        """The text exposition format, as the HTTP endpoint serves it."""
        return generate_latest(self.registry)


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`stop` it in the operator's cleanup."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(port: int, metrics: Metrics, addr: str = "0.0.0.0") -> MetricsServer:
    """Serve ``metrics`` over HTTP on ``addr:port`` from a daemon thread (port 0: any free)."""
    server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return MetricsServer(server=server, thread=thread)
