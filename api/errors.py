"""Error responses: JSON bodies with a reason, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from api.commands import KafkaUnavailable
from api.cursor import CursorError
from common.db import DatabaseUnavailable
from common.logging import event

log = logging.getLogger(__name__)


class OrjsonResponse(JSONResponse):
    """orjson rendering (FastAPI's own ORJSONResponse is deprecated); datetimes/UUIDs/Fragments native."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def query_error(field: str, message: str, value: Any = None, where: str = "query") -> RequestValidationError:
    """A 422 shaped like FastAPI's own, naming the offending field."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, field), "msg": message, "input": value}]
    )


def install_error_handlers(app: FastAPI) -> None:
    async def db_down(request: Request, exc: Exception) -> OrjsonResponse:
        event(
            log,
            "database unavailable",
            logging.WARNING,
            path=request.url.path,
            error=type(exc).__name__,
            detail=str(exc)[:300],
        )
        return OrjsonResponse(
            {"detail": "database unavailable", "reason": f"{type(exc).__name__}: {str(exc)[:200]}".strip()},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def kafka_down(request: Request, exc: Exception) -> OrjsonResponse:
        event(log, "kafka unavailable", logging.WARNING, path=request.url.path, detail=str(exc)[:300])
        return OrjsonResponse({"detail": "kafka unavailable", "reason": str(exc)[:200]}, status_code=503)

    async def bad_cursor(request: Request, exc: Exception) -> OrjsonResponse:
        return OrjsonResponse(
            {"detail": [{"type": "value_error", "loc": ["query", "cursor"], "msg": str(exc), "input": None}]},
            status_code=422,
        )

    async def http_error(request: Request, exc: Exception) -> OrjsonResponse:
        assert isinstance(exc, StarletteHTTPException)
        return OrjsonResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> OrjsonResponse:
        log.error("unhandled error", exc_info=exc, extra={"ctx": {"path": request.url.path}})
        return OrjsonResponse({"detail": "internal error", "reason": type(exc).__name__}, status_code=500)

    for exc_type in (
        psycopg.OperationalError,
        PoolTimeout,
        DatabaseUnavailable,
        psycopg.errors.QueryCanceled,
    ):
        app.add_exception_handler(exc_type, db_down)
    app.add_exception_handler(KafkaUnavailable, kafka_down)
    app.add_exception_handler(CursorError, bad_cursor)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
