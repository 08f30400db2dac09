"""Request dependencies (``Annotated`` aliases, as in FastAPI's full-stack template).

Why async functions: FastAPI runs plain ``def`` dependencies in the threadpool, a thread hand-off per
dependency per request; these only read ``app.state``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from api.commands import CommandPublisher
from api.db import Database
from api.metrics import ApiMetrics
from api.repository import FreshnessCache, TtlCache
from api.security import SweepsDisabled, check_api_key
from api.settings import ApiSettings

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Key configured in COCKPIT_API_KEY"
)


async def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_freshness(request: Request) -> FreshnessCache:
    return request.app.state.freshness  # type: ignore[no-any-return]


async def get_daily_cache(request: Request) -> TtlCache:
    return request.app.state.daily_cache  # type: ignore[no-any-return]


async def get_publisher(request: Request) -> CommandPublisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
FreshnessDep = Annotated[FreshnessCache, Depends(get_freshness)]
DailyCacheDep = Annotated[TtlCache, Depends(get_daily_cache)]
PublisherDep = Annotated[CommandPublisher, Depends(get_publisher)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


async def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)]
) -> None:
    """401 on a missing/wrong key; 503 when no key is configured at all (sweeps disabled)."""
    try:
        ok = check_api_key(settings.api_key, key)
    except SweepsDisabled as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    if not ok:
        raise HTTPException(
            status_code=401, detail="missing or invalid X-API-Key", headers={"WWW-Authenticate": "ApiKey"}
        )


ApiKeyDep = Annotated[None, Depends(require_api_key)]
