"""Prometheus metrics: request latency, and the store's state read at scrape time.

Each app has its own ``CollectorRegistry`` (several apps in one process, as in tests, never
collide). What describes the data (feed age, findings by severity) is computed when Prometheus
scrapes, from the same views the API serves, so a metric can never drift from the store. The
service's loops add their own collectors to ``app.state.metrics.registry``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keelwatch.store import Store

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StoreCollector(Collector):
    """Feed age and freshness, findings by severity, images scanned: read from the store per scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        from keelwatch.api import views

        up = GaugeMetricFamily("keelwatch_store_up", "1 when the store answered this scrape")
        try:
            now = datetime.now(UTC)
            overview = views.fleet_overview(self.store, now=now)
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: the store did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        age = GaugeMetricFamily("keelwatch_feed_age_seconds", "Seconds since the feed last synced successfully",
                                labels=["feed", "kind"])
        success = GaugeMetricFamily("keelwatch_feed_last_success_timestamp_seconds",
                                    "Unix time of the feed's last successful sync", labels=["feed", "kind"])
        failing = GaugeMetricFamily("keelwatch_feed_failing", "1 when the feed's last attempt failed",
                                    labels=["feed", "kind"])
        for feed in overview["feeds"]:
            labels = [feed["name"], feed["kind"]]
            if feed["age_seconds"] is not None:
                age.add_metric(labels, feed["age_seconds"])
                success.add_metric(labels, datetime.fromisoformat(feed["last_success"]).timestamp())
            failing.add_metric(labels, 0 if feed["status"] == "ok" else 1)
        yield from (age, success, failing)
        findings = GaugeMetricFamily("keelwatch_findings", "Stored findings over every scanned image, by severity "
                                     "(suppressed findings included)", labels=["severity"])
        for severity, n in overview["counts"].items():
            findings.add_metric([severity], n)
        yield findings
        kev = GaugeMetricFamily("keelwatch_kev_findings", "Stored findings whose CVE is in CISA KEV")
        kev.add_metric([], overview["kev"])
        yield kev
        images = GaugeMetricFamily("keelwatch_images", "Stored images, by whether they were scanned",
                                   labels=["scanned"])
        images.add_metric(["true"], overview["scanned"])
        images.add_metric(["false"], overview["images"] - overview["scanned"])
        yield images


class Metrics:
    """One app's registry and request histogram."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("keelwatch_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(StoreCollector(store))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class LatencyMiddleware:
    """Times every HTTP request by its route template (``/api/v1/images/{digest}``), never the raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template.startswith("/static"):
                template = "/static"
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)
