"""Prometheus metrics, one registry per app so that several apps in one process stay apart."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Set (before prometheus_client is imported) in the API processes of `serve --workers N`: each process keeps
# its metrics in files of its own in that folder, and a scrape, which reaches one process, reads them all.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loyalty_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loyalty_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.database_up = Gauge(
            "loyalty_database_up",
            "Whether the database answered this scrape's read of the webhook backlog (1) or not (0)",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        # Read from the database at each scrape, so they are right whichever process sends webhooks (and, of
        # several API processes, the one scraped last has the latest).
        self.webhook_deliveries = Gauge(
            "loyalty_webhook_deliveries",
            "Webhook deliveries by status: pending (the queue now); succeeded and failed (given up) "
            "since the start, counted as they settle, so the retention purge takes nothing off them",
            ["status"],
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.webhook_retrying = Gauge(
            "loyalty_webhook_deliveries_retrying",
            "Pending webhook deliveries that have failed at least once",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.webhook_oldest_pending = Gauge(
            "loyalty_webhook_oldest_pending_seconds",
            "Age of the oldest pending webhook delivery (0 when none)",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count a request and its latency. The labelled series are kept here by their labels, as they are
        found once: `labels()` checks its arguments and takes a lock each time, which cost more than the
        counting itself."""
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        count, latency = series
        count.inc()
        latency.observe(seconds)

    def set_database_reachable(self, reachable: bool) -> None:
        self.database_up.set(1 if reachable else 0)

    def exposition(self) -> bytes:
        """What a scrape reads: this process's metrics, or every API process's under `serve --workers N`."""
        if MULTIPROCESS_DIR not in os.environ:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process)  # type: ignore[no-untyped-call]
        return generate_latest(every_process)
