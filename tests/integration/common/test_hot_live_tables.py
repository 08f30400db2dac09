"""Migration 0011 on the real PostgreSQL (~2 s): the live tables leave room on each page for HOT updates."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration


def _fillfactor(conn: psycopg.Connection, table: str) -> str | None:
    row = conn.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()
    assert row is not None, table
    options = dict(o.split("=", 1) for o in (row[0] or []))
    return options.get("fillfactor")


def test_live_tables_have_room_for_hot_updates(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert _fillfactor(conn, "turbines") == "50"
        assert _fillfactor(conn, "telemetry_latest") == "50"
        # the history-sized table keeps the default (its size matters more than its few updates)
        assert _fillfactor(conn, "telemetry_agg") is None
