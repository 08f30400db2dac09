"""Application factory. Nothing happens at import time: settings, logging and pools are set up here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse

from api import __version__
from api.commands import CommandPublisher
from api.db import Database
from api.errors import OrjsonResponse, install_error_handlers
from api.metrics import ApiMetrics, MetricsMiddleware
from api.repository import FreshnessCache, TtlCache
from api.routes import router
from api.settings import ApiSettings
from common.db import redact
from common.logging import configure_logging, event
from common.settings import load_settings

WEB_DIR = Path(__file__).resolve().parent / "web"
log = logging.getLogger(__name__)

DESCRIPTION = """Read-only API of the wind-fleet predictive-maintenance cockpit.

Rankings, turbine details and histories come from the tables the scorer writes (TimescaleDB or plain
PostgreSQL). The only action, `POST /v1/sweeps`, publishes a command to Kafka and needs `X-API-Key`.
Errors are JSON: `422` names the invalid field, `404` an unknown id, `503` an unavailable dependency.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the app; ``settings`` defaults to the environment (``COCKPIT_*``)."""
    settings = settings or load_settings(ApiSettings)
    configure_logging("api", settings.log_level, settings.log_format)
    db = Database(
        settings.reader_database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_pool_timeout_seconds,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    publisher = CommandPublisher(
        settings.kafka_bootstrap_servers, settings.command_topic, settings.kafka_timeout_seconds
    )
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        event(
            log,
            "api started",
            database=redact(settings.reader_database_url),
            kafka=settings.kafka_bootstrap_servers,
            command_topic=settings.command_topic,
            sweeps_enabled=settings.api_key is not None,
        )
        try:
            yield
        finally:
            publisher.close()
            await db.close()
            event(log, "api stopped")

    app = FastAPI(
        title="Wind fleet cockpit API",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.publisher = publisher
    app.state.metrics = metrics
    app.state.freshness = FreshnessCache(
        db,
        max_age=settings.heartbeat_max_age_seconds,
        max_lag=settings.max_lag_seconds,
        ttl=settings.cache_seconds,
    )
    app.state.daily_cache = TtlCache(settings.summary_cache_seconds)
    install_error_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
