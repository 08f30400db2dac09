"""Read-only access to the cockpit database through a psycopg 3 async pool.

Why async: handlers wait on PostgreSQL most of the time; an async pool keeps the event loop free and
avoids thread hand-offs on every request. Connections are autocommit, read-only and time-limited, and
statements are auto-prepared by psycopg after a few executions.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from common.db import redact
from common.logging import event

log = logging.getLogger(__name__)


class Database:
    """Owns the pool; knows whether TimescaleDB is installed (detected once, lazily if the DB was down)."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 8,
        timeout: float = 3.0,
        statement_timeout_ms: int = 5000,
    ) -> None:
        self.url = url
        self.timeout = timeout
        options = (
            f"-c statement_timeout={int(statement_timeout_ms)} "
            "-c default_transaction_read_only=on -c TimeZone=UTC"
        )
        self.pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={
                "autocommit": True,
                "options": options,
                "connect_timeout": max(1, int(timeout)),
                "application_name": "cockpit-api",
            },
            configure=self._configure,
            reconnect_timeout=30.0,
        )
        self._timescale: bool | None = None

    @staticmethod
    async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
        set_json_loads(orjson.loads, conn)

    async def open(self) -> None:
        """Start the pool without waiting: the API must start (and answer 503) even if the DB is down."""
        await self.pool.open(wait=False)
        try:
            await self.detect_timescale()
        except Exception as exc:  # the DB may be down at start; detection retries on first use
            event(
                log, "database not reachable at start", logging.WARNING, url=redact(self.url), error=str(exc)
            )

    async def close(self) -> None:
        await self.pool.close()

    async def detect_timescale(self) -> bool:
        if self._timescale is None:
            row = await self.one("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
            self._timescale = bool(row and row[0])
            event(log, "database dialect detected", timescale=self._timescale)
        return self._timescale

    async def rows(
        self, query: str, params: Any = None, *, timeout_ms: int | None = None
    ) -> list[tuple[Any, ...]]:
        """All rows as tuples; ``timeout_ms`` raises the statement timeout for this one (slow) aggregate."""
        async with self.pool.connection() as conn:
            if timeout_ms is None:
                cur = await conn.execute(query, params)
                return await cur.fetchall()
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
                cur = await conn.execute(query, params)
                return await cur.fetchall()

    async def one(self, query: str, params: Any = None) -> tuple[Any, ...] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def dicts(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            return await cur.fetchall()

    async def dict_one(self, query: str, params: Any = None) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            return await cur.fetchone()
