"""Views on the faust web server: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (ready).

Why on faust's own web server: one port per worker, no extra thread, and the views run on the same
event loop as the agent - if the loop is stuck, ``/healthz`` stops answering, which is the point.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from scorer.runtime import ScorerRuntime


def register_views(app: faust.App, runtime: ScorerRuntime) -> None:
    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            runtime.readiness()
            body = generate_latest(runtime.metrics.registry)
            # aiohttp refuses a charset inside content_type; the exposition format is ASCII anyway.
            return self.bytes(body, content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body: dict[str, Any] = {"status": "ok", "worker_id": runtime.settings.worker_id}
            return self.json(body)

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready, body = runtime.readiness()
            return self.json(body, status=200 if ready else 503)
