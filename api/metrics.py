"""Prometheus metrics: HTTP traffic by route template, plus fleet gauges refreshed at scrape time.

Why a private registry: several apps can live in one process (tests) without duplicate-metric errors.
Why pure ASGI middleware: BaseHTTPMiddleware adds a task hop to every request.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cockpit_api_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "cockpit_api_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.turbines = Gauge(
            "cockpit_fleet_turbines", "Turbines per current risk tier", ["tier"], registry=r
        )
        self.stale_share = Gauge(
            "cockpit_fleet_stale_share", "Share of turbines whose data is stale", registry=r
        )
        self.sweep_age = Gauge(
            "cockpit_last_sweep_age_seconds", "Age of the last successful sweep (-1: none)", registry=r
        )
        self.heartbeat_age = Gauge(
            "cockpit_scorer_heartbeat_age_seconds",
            "Age of the newest scorer heartbeat (-1: none)",
            registry=r,
        )
        self.site_data_age = Gauge(
            "cockpit_site_data_age_seconds",
            "Wall clock minus the site's data clock (its newest event): a stopped feed grows it",
            ["site"],
            registry=r,
        )
        self.scorer_ready = Gauge(
            "cockpit_scorer_ready",
            "1 when a live scorer worker publishes and none says it is not ready",
            registry=r,
        )
        self.db_up = Gauge(
            "cockpit_api_database_up", "1 when the last scrape could read the database", registry=r
        )


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = (scope.get("method", "GET"), template, str(status[0]))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
