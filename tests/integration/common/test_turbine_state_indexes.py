"""Migration 0010 on the real PostgreSQL (~5 s): turbine_state's tier index holds only the rare tiers, a
database at 0009 upgrades without losing a row, and the API's ranking still finds every turbine of a tier
(the planner proves the partial index from the tier list psycopg sends, and skips it for 'low')."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from api import repository
from common.db import MIGRATIONS_DIR, migrate

pytestmark = pytest.mark.integration

TIERS = ("critical", "high", "moderate", "low", "unknown")


def _indexes(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'turbine_state'")
    return {name: definition for name, definition in rows}


def _fill(conn: psycopg.Connection, n: int) -> None:
    """n turbines, most of them 'low' (a healthy fleet), every tier present, scores as tier bands."""
    conn.execute(
        "INSERT INTO turbines (turbine_id, site_id) SELECT 'WT-' || lpad(g::text, 4, '0'), "
        "'S-' || (g %% 7) FROM generate_series(0, %s - 1) g",
        (n,),
    )
    conn.execute(
        "INSERT INTO turbine_state (turbine_id, site_id, as_of, trigger, score, tier, model_version) "
        "SELECT 'WT-' || lpad(g::text, 4, '0'), 'S-' || (g %% 7), %s, 'sweep', "
        "CASE WHEN g %% 50 = 0 THEN 90 - g %% 9 WHEN g %% 50 = 1 THEN 70 - g %% 7 WHEN g %% 50 = 2 "
        "THEN 40 + g %% 5 WHEN g %% 50 = 3 THEN 12 ELSE (g * 7) %% 30 END, "
        "CASE g %% 50 WHEN 0 THEN 'critical' WHEN 1 THEN 'high' WHEN 2 THEN 'moderate' WHEN 3 THEN 'unknown' "
        "ELSE 'low' END, 'v1' FROM generate_series(0, %s - 1) g",
        (datetime(2026, 11, 1, tzinfo=UTC), n),
    )
    conn.execute("ANALYZE turbine_state")


class _Db:
    """The two methods of api.db.Database that ranking() uses, on one async connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def rows(self, query: str, params: Any = None, **_: Any) -> list[tuple[Any, ...]]:
        cur = await self.conn.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchall()


async def _ranked(url: str, tiers: list[str], sites: list[str]) -> list[str]:
    """Every turbine id of the ranking, page after page (limit 25), as the API serves it."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        db, cursor, out = _Db(conn), None, []
        while True:
            q = repository.RankQuery(
                tiers=tiers, sites=sites, sort="score", order="desc", limit=25, cursor=cursor
            )
            items, cursor = await repository.ranking(db, q, clocks=[])  # type: ignore[arg-type]
            out += [orjson.loads(orjson.dumps(i))["turbine_id"] for i in items]
            if cursor is None:
                return out


def test_upgrade_from_0009_keeps_rows_and_replaces_the_tier_index(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    url = fresh_database("tsidx_up")  # fully migrated: 0010 applied
    with psycopg.connect(url, autocommit=True) as conn:
        idx = _indexes(conn)
        assert "turbine_state_tier_idx" not in idx
        assert idx["turbine_state_tier_rare_idx"].endswith("WHERE (tier <> 'low'::text)")
        assert {"turbine_state_pkey", "turbine_state_rank_idx", "turbine_state_site_idx"} <= set(idx)
        # the upgrade path: a database at 0009 (old tier index, rows in it) gets 0010
        conn.execute("DROP INDEX turbine_state_tier_rare_idx")
        conn.execute("CREATE INDEX turbine_state_tier_idx ON turbine_state (tier, score DESC, turbine_id)")
        conn.execute("DELETE FROM schema_migrations WHERE version = 10")
        _fill(conn, 500)
    old = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, old)
    result = migrate(url, old)
    assert [m for m in result.applied if m.startswith("0010")], result
    with psycopg.connect(url, autocommit=True) as conn:
        assert "turbine_state_tier_idx" not in _indexes(conn)
        assert conn.execute("SELECT count(*) FROM turbine_state").fetchone() == (500,)
        assert migrate(url).applied == []  # re-run: nothing to do


def test_ranking_by_tier_and_site_is_unchanged_and_plans_use_the_partial_index(
    fresh_database: Callable[[str], str],
) -> None:
    url = fresh_database(f"tsidx_rank_{uuid.uuid4().hex[:4]}")
    with psycopg.connect(url, autocommit=True) as conn:
        _fill(conn, 1200)
        expected: dict[tuple[str, ...], list[str]] = {}
        cases: list[tuple[str, ...]] = [
            ("critical",),
            ("critical", "high"),
            ("low",),
            ("unknown",),
            ("moderate", "low"),
        ]
        for tiers in cases:
            rows = conn.execute(
                "SELECT turbine_id FROM turbine_state WHERE tier = ANY(%s) ORDER BY score DESC, turbine_id",
                (list(tiers),),
            ).fetchall()
            expected[tiers] = [r[0] for r in rows]
            assert expected[tiers], tiers
    for tiers, ids in expected.items():
        assert asyncio.run(_ranked(url, list(tiers), [])) == ids, tiers
    with psycopg.connect(url, autocommit=True) as conn:
        site = [
            r[0]
            for r in conn.execute(
                "SELECT turbine_id FROM turbine_state WHERE site_id = 'S-3' AND tier = ANY(%s) "
                "ORDER BY score DESC, turbine_id",
                (["critical", "high"],),
            )
        ]
    assert asyncio.run(_ranked(url, ["critical", "high"], ["S-3"])) == site

    # The plan of the API's own phase-1 query with its own parameters (what psycopg sends): the rare
    # tiers can use the partial index (its predicate is proved), 'low' cannot and needs none.
    captured: list[tuple[str, dict[str, Any]]] = []

    class Capture:
        async def rows(self, query: str, params: Any = None, **_: Any) -> list[tuple[Any, ...]]:
            captured.append((query, params))
            return []

    def plan(tiers: list[str]) -> str:
        captured.clear()
        q = repository.RankQuery(tiers=tiers, sites=[], sort="score", order="desc", limit=50, cursor=None)
        asyncio.run(repository.ranking(Capture(), q, clocks=[]))  # type: ignore[arg-type]
        query, params = captured[0]
        with psycopg.connect(url) as conn:  # rolled back: the rank index is set aside for the planner only
            conn.execute("DROP INDEX turbine_state_rank_idx")
            conn.execute("SET enable_seqscan = off")
            text = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query, params))  # type: ignore[operator]
            conn.rollback()
            return text

    assert "turbine_state_tier_rare_idx" in plan(["critical", "high"])
    assert "turbine_state_tier_rare_idx" in plan(["unknown"])
    assert "turbine_state_tier_rare_idx" not in plan(["low"])
