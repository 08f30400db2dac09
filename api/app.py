"""Application factory. Nothing happens at import time: settings, logging and pools are set up here."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.responses import FileResponse, HTMLResponse, Response

from api import __version__
from api.commands import CommandPublisher, kafka_reachable
from api.db import Database
from api.errors import OrjsonResponse, install_error_handlers
from api.metrics import ApiMetrics, MetricsMiddleware
from api.repository import FreshnessCache, TtlCache
from api.routers.interventions import router as interventions_router
from api.routers.models import router as models_router
from api.routers.planning import router as planning_router
from api.routers.policy import router as policy_router
from api.routes import router
from api.settings import ApiSettings
from common.db import redact
from common.logging import configure_logging, event
from common.settings import load_settings
from common.topics import TopicError, cockpit_topics, ensure_topics

WEB_DIR = Path(__file__).resolve().parent / "web"
#: Swagger UI and ReDoc assets bundled by the fastapi-offline package (served under DOCS_ASSETS).
DOCS_STATIC_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS = "/static-offline-docs"
#: ReDoc's menu footer always loads its logo from this CDN; the served copy points at a local image.
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
#: The docs pages may load nothing from elsewhere (ReDoc uses blob: workers, inline scripts start both).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
log = logging.getLogger(__name__)

DESCRIPTION = """Read-only API of the wind-fleet predictive-maintenance cockpit.

Rankings, turbine details and histories come from the tables the scorer writes (TimescaleDB or plain
PostgreSQL). The only action, `POST /v1/sweeps`, publishes a command to Kafka and needs `X-API-Key`.
Errors are JSON: `422` names the invalid field, `404` an unknown id, `503` an unavailable dependency.
"""


def provision_topics(settings: ApiSettings) -> None:
    """Create missing Kafka topics and log the outcome once; never raises (Kafka may be down)."""
    reachable, detail = kafka_reachable(settings.kafka_bootstrap_servers, timeout=2.0)
    if not reachable:  # one line instead of the Kafka client's connection retries
        event(
            log,
            "kafka topics not checked (Kafka unreachable); sweeps need them: run python -m common topics",
            logging.WARNING,
            kafka=settings.kafka_bootstrap_servers,
            reason=detail[:300],
        )
        return
    try:
        outcomes = ensure_topics(
            settings.kafka_bootstrap_servers,
            cockpit_topics(settings),
            timeout_s=settings.topics_timeout_seconds,
        )
    except TopicError as exc:
        event(
            log,
            "kafka topics not checked; sweeps need them: run python -m common topics",
            logging.WARNING,
            reason=str(exc)[:500],
        )
    except Exception as exc:  # a thread must not die silently
        event(log, "kafka topics check failed", logging.ERROR, reason=repr(exc)[:500])
    else:
        event(log, "kafka topics checked", topics=outcomes)


@functools.cache
def offline_redoc_js() -> bytes:
    """ReDoc's standalone bundle with its CDN logo replaced by the bundled favicon (read once, on demand)."""
    bundle = (DOCS_STATIC_DIR / "redoc.standalone.js").read_bytes()
    return bundle.replace(REDOC_CDN_LOGO, f"{DOCS_ASSETS}/favicon.png".encode())


def install_offline_docs(app: FastAPI) -> None:
    """/docs and /redoc from local assets only, with a CSP that forbids loading anything from elsewhere."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/redoc-offline.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/redoc-offline.js", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(
            offline_redoc_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )


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
        if settings.ensure_topics_on_start:  # in the background: start-up never waits for Kafka
            threading.Thread(
                target=provision_topics, args=(settings,), name="ensure-topics", daemon=True
            ).start()
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

    # FastAPIOffline mounts the bundled Swagger UI/ReDoc assets; install_offline_docs serves the pages.
    app = FastAPIOffline(
        docs_url=None,
        redoc_url=None,
        static_url=DOCS_ASSETS,
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
    install_offline_docs(app)
    app.include_router(router)
    app.include_router(policy_router)
    app.include_router(planning_router)
    app.include_router(models_router)
    app.include_router(interventions_router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
