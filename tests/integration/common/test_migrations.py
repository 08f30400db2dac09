"""Migrations run once, survive re-runs, and take the Timescale path only where the extension exists."""

from __future__ import annotations

import psycopg
import pytest

from common.db import (
    DatabaseUnavailable,
    connect,
    discover_migrations,
    migrate,
    timescale_available,
)
from common.rows import ALL_ROWS, ASSESSMENT_COLUMNS, TELEMETRY_AGG_SIGNALS, Row

pytestmark = pytest.mark.integration

TIME_SERIES_TABLES = ("telemetry_agg", "score_history", "scoring_log")


def test_migrations_are_recorded_and_idempotent(fresh_database) -> None:  # type: ignore[no-untyped-def]
    url = fresh_database("migr")
    again = migrate(url)
    assert again.applied == []
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, status FROM schema_migrations ORDER BY version").fetchall()
    assert [v for v, _ in rows] == [m.version for m in discover_migrations()]
    expected = "applied" if again.timescale else "skipped"
    assert dict(rows)[2] == expected


def test_plain_postgres_schema_has_every_table_and_key(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {
            "turbines",
            "telemetry_latest",
            "telemetry_agg",
            "score_history",
            "turbine_state",
            "sweep_runs",
            "scoring_log",
            "scorer_heartbeats",
            "schema_migrations",
        } <= tables
        # The same idempotent upsert works on both paths.
        conn.execute("INSERT INTO turbines (turbine_id, site_id) VALUES ('WT-9', 'S') ON CONFLICT DO NOTHING")
        for _ in range(2):
            conn.execute(
                "INSERT INTO score_history (time, turbine_id, trigger, score, tier, model_version) "
                "VALUES ('2026-01-01T00:00Z', 'WT-9', 'stream', 10, 'low', 'v1') ON CONFLICT DO NOTHING"
            )
        assert conn.execute("SELECT count(*) FROM score_history WHERE turbine_id='WT-9'").fetchone() == (1,)
        # A bucketing query that works on plain PostgreSQL (date_bin) — the API uses time_bucket on Timescale.
        row = conn.execute(
            "SELECT date_bin('1 hour', time, '2000-01-01'), max(score) FROM score_history GROUP BY 1"
        ).fetchone()
        assert row is not None


def test_timescale_path_creates_hypertables(fresh_database) -> None:  # type: ignore[no-untyped-def]
    url = fresh_database("tsdb")
    with psycopg.connect(url) as conn:
        if not timescale_available(conn):
            pytest.skip(
                "timescaledb extension not available on this PostgreSQL (plain Debian package); "
                "the Timescale path runs under docker-compose / GitLab CI (TimescaleDB image)"
            )
        hypertables = {
            r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
        assert set(TIME_SERIES_TABLES) <= hypertables
        jobs = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name LIKE 'policy_%'"
        )
        assert jobs.fetchone()[0] >= 4  # type: ignore[index]


def test_unreachable_database_names_where_it_looked() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:1/nowhere"):
        connect("postgresql://u:secret@127.0.0.1:1/nowhere", timeout=1)
    with pytest.raises(DatabaseUnavailable) as info:
        connect("postgresql://u:secret@127.0.0.1:1/nowhere", timeout=1)
    assert "secret" not in str(info.value)


def test_shared_aggregate_columns_match_the_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'telemetry_agg' ORDER BY ordinal_position"
        ).fetchall()
    assert tuple(r[0] for r in rows) == ("bucket", "turbine_id", "samples", *TELEMETRY_AGG_SIGNALS)


@pytest.mark.parametrize("table", ["score_history", "turbine_state"])
def test_shared_assessment_columns_exist_in_both_tables(database_url: str, table: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
    assert set(ASSESSMENT_COLUMNS) <= {r[0] for r in rows}


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda r: r.TABLE)
def test_typed_rows_match_their_table(database_url: str, row: type[Row]) -> None:
    """Every column of a typed row (common/rows.py) exists in its table with the declared type."""
    with psycopg.connect(database_url) as conn:
        found = dict(
            conn.execute(
                "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (row.TABLE,),
            ).fetchall()
        )
    aliases = {"float8": "double precision", "int4": "integer", "int8": "bigint",
               "timestamptz": "timestamp with time zone"}  # fmt: skip
    assert {c: aliases.get(t, t) for c, t in zip(row.COLUMNS, row.PG_TYPES, strict=True)} == {
        c: found.get(c) for c in row.COLUMNS
    }
