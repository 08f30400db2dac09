"""PostgreSQL writes of the scorer: batched (COPY into a staging table + one INSERT ... ON CONFLICT)
and idempotent, so that re-processing a record after a crash never creates a duplicate row.

Why synchronous psycopg in a thread: every call is one short transaction run from a dedicated
executor thread; the event loop never blocks on the database, and the batch is acknowledged to Kafka
only after the transaction committed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import sql

from common.db import ASSESSMENT_COLUMNS, TELEMETRY_AGG_SIGNALS, DatabaseUnavailable, connect, redact
from scorer.processing import BatchOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")

HISTORY_COLS = ("time", "turbine_id", "trigger", *ASSESSMENT_COLUMNS, "reasons", "data_quality")
STATE_COLS = (
    "turbine_id",
    "site_id",
    "as_of",
    "trigger",
    *ASSESSMENT_COLUMNS,
    "reasons",
    "data_quality",
    "last_event_time",
)
AGG_COLS = ("bucket", "turbine_id", "samples", *TELEMETRY_AGG_SIGNALS)
WINDOW_COLS = (
    "consumer_group",
    "turbine_id",
    "site_id",
    "topic",
    "partition",
    "last_event_time",
    "state",
    "aux",
)


def _conflict_update(cols: Sequence[str], key: Sequence[str]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in key)


UPSERTS: dict[str, tuple[Sequence[str], str]] = {
    "turbines": (
        ("turbine_id", "site_id", "last_event_time"),
        "ON CONFLICT (turbine_id) DO UPDATE SET site_id = EXCLUDED.site_id, last_event_time = "
        "GREATEST(turbines.last_event_time, EXCLUDED.last_event_time)",
    ),
    "telemetry_latest": (
        ("turbine_id", "event_time", "measurements", "status_code"),
        "ON CONFLICT (turbine_id) DO UPDATE SET event_time = EXCLUDED.event_time, "
        "measurements = EXCLUDED.measurements, status_code = EXCLUDED.status_code, updated_at = now() "
        "WHERE EXCLUDED.event_time >= telemetry_latest.event_time",
    ),
    "telemetry_agg": (
        AGG_COLS,
        "ON CONFLICT (turbine_id, bucket) DO UPDATE SET "
        + _conflict_update(AGG_COLS, ("bucket", "turbine_id")),
    ),
    "score_history": (HISTORY_COLS, "ON CONFLICT (turbine_id, time, trigger) DO NOTHING"),
    "turbine_state": (
        STATE_COLS,
        "ON CONFLICT (turbine_id) DO UPDATE SET "
        + _conflict_update(STATE_COLS, ("turbine_id",))
        + ", scored_at = now() WHERE turbine_state.last_event_time IS NULL "
        "OR EXCLUDED.last_event_time IS NULL OR EXCLUDED.last_event_time >= turbine_state.last_event_time",
    ),
    "scorer_windows": (
        WINDOW_COLS,
        "ON CONFLICT (consumer_group, turbine_id) DO UPDATE SET "
        + _conflict_update(WINDOW_COLS, ("consumer_group", "turbine_id"))
        + ", updated_at = now()",
    ),
}


@dataclass
class StoredWindow:
    turbine_id: str
    site_id: str
    partition: int
    state: bytes
    aux: bytes


class Sink:
    """One connection, used from one thread at a time; reconnects after a failure."""

    def __init__(self, url: str, worker_id: str, consumer_group: str) -> None:
        self.url = url
        self.worker_id = worker_id
        self.group = consumer_group
        self._conn: psycopg.Connection | None = None

    # ------------------------------------------------------------------ plumbing
    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = connect(self.url, timeout=5)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken connection must not mask the original error
                self._conn.close()
        self._conn = None

    def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        """Run ``fn`` in one transaction; on a connection error drop the connection and re-raise."""
        try:
            conn = self._connection()
            with conn.transaction():
                return fn(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(f"PostgreSQL at {redact(self.url)}: {exc}".strip()) from exc

    def _upsert(self, conn: psycopg.Connection, table: str, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        cols, conflict = UPSERTS[table]
        stage = f"_stage_{table}"
        # Every time (cheap): a temp table created in a transaction that rolled back is gone.
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(stage), sql.Identifier(table))
        )
        col_sql = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(stage), col_sql)) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ").format(
                    sql.Identifier(table), col_sql, col_sql, sql.Identifier(stage)
                )
                + sql.SQL(conflict)  # type: ignore[arg-type]
            )
            n = cur.rowcount
            cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(stage)))
        return n

    # ------------------------------------------------------------------ stream batch
    def write_batch(self, out: BatchOutcome, duration_ms: float) -> None:
        """All rows of one micro-batch + its scoring_log row, in one transaction."""

        def tx(conn: psycopg.Connection) -> None:
            self._upsert(conn, "turbines", sorted(out.turbine_rows))
            self._upsert(conn, "telemetry_latest", sorted(out.latest_rows, key=lambda r: r[0]))
            self._upsert(conn, "telemetry_agg", sorted(out.agg_rows, key=lambda r: (r[1], r[0])))
            self._upsert(conn, "score_history", out.history_rows)
            self._upsert(conn, "turbine_state", sorted(out.state_rows, key=lambda r: r[0]))
            if out.turbines_scored or out.events:
                self._log(
                    conn,
                    "stream_batch",
                    out.turbines_scored,
                    out.events,
                    "ok",
                    duration_ms,
                    out.model_version,
                    None,
                )

        self.run(tx)

    def _log(
        self,
        conn: psycopg.Connection,
        operation: str,
        turbines: int,
        events: int,
        status: str,
        duration_ms: float,
        model_version: str | None,
        error: str | None,
    ) -> None:
        conn.execute(
            "INSERT INTO scoring_log (operation, turbines, events, status, duration_ms, model_version, "
            "worker_id, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (operation, turbines, events, status, duration_ms, model_version, self.worker_id, error),
        )

    def log_scoring(
        self,
        operation: str,
        turbines: int,
        events: int,
        status: str,
        duration_ms: float,
        model_version: str | None,
        error: str | None = None,
    ) -> None:
        self.run(
            lambda c: self._log(c, operation, turbines, events, status, duration_ms, model_version, error)
        )

    # ------------------------------------------------------------------ checkpoints
    def write_checkpoint(self, topic: str, windows: Sequence[Sequence[Any]], offsets: dict[int, int]) -> None:
        """Changed windows and the next offsets of every owned partition, atomically."""

        def tx(conn: psycopg.Connection) -> None:
            self._upsert(conn, "scorer_windows", sorted(windows, key=lambda r: r[1]))
            if offsets:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO scorer_offsets (consumer_group, topic, partition, next_offset) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (consumer_group, topic, partition) DO UPDATE "
                        "SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                        [(self.group, topic, p, off) for p, off in sorted(offsets.items())],
                    )

        self.run(tx)

    def load_partitions(
        self, topic: str, partitions: Sequence[int]
    ) -> tuple[dict[int, int], list[StoredWindow]]:
        def tx(conn: psycopg.Connection) -> tuple[dict[int, int], list[StoredWindow]]:
            offs = {
                int(p): int(o)
                for p, o in conn.execute(
                    "SELECT partition, next_offset FROM scorer_offsets WHERE consumer_group = %s "
                    "AND topic = %s AND partition = ANY(%s)",
                    (self.group, topic, list(partitions)),
                )
            }
            rows = [
                StoredWindow(r[0], r[1], int(r[2]), bytes(r[3]), bytes(r[4]))
                for r in conn.execute(
                    "SELECT turbine_id, site_id, partition, state, aux FROM scorer_windows "
                    "WHERE consumer_group = %s AND topic = %s AND partition = ANY(%s)",
                    (self.group, topic, list(partitions)),
                )
            ]
            return offs, rows

        return self.run(tx)

    def load_all_windows(self, topic: str, exclude_partitions: Sequence[int] = ()) -> list[StoredWindow]:
        """Checkpointed windows of the whole fleet except the partitions this worker holds in memory."""
        return self.run(
            lambda conn: [
                StoredWindow(r[0], r[1], int(r[2]), bytes(r[3]), bytes(r[4]))
                for r in conn.execute(
                    "SELECT turbine_id, site_id, partition, state, aux FROM scorer_windows "
                    "WHERE consumer_group = %s AND NOT (topic = %s AND partition = ANY(%s)) "
                    "ORDER BY turbine_id",
                    (self.group, topic, list(exclude_partitions)),
                )
            ]
        )

    # ------------------------------------------------------------------ sweeps
    def claim_sweep(self, run_id: str, trigger: str, requested_at: datetime, stale_after_s: float) -> bool:
        """Take ownership of a sweep run; False when it already ran / runs elsewhere (exactly once)."""

        def tx(conn: psycopg.Connection) -> bool:
            row = conn.execute(
                "INSERT INTO sweep_runs (run_id, trigger, requested_at, started_at, status) "
                "VALUES (%s, %s, %s, now(), 'running') ON CONFLICT (run_id) DO UPDATE "
                "SET status = 'running', started_at = now(), error = NULL "
                "WHERE sweep_runs.status = 'requested' OR (sweep_runs.status = 'running' "
                "AND sweep_runs.started_at < now() - make_interval(secs => %s)) RETURNING run_id",
                (run_id, trigger, requested_at, stale_after_s),
            ).fetchone()
            return row is not None

        return self.run(tx)

    def finish_sweep(
        self,
        run_id: str,
        status: str,
        turbines: int,
        tier_counts: dict[str, int],
        model_version: str | None,
        error: str | None,
        duration_ms: float,
        history_rows: Sequence[Sequence[Any]],
        state_rows: Sequence[Sequence[Any]],
    ) -> None:
        def tx(conn: psycopg.Connection) -> None:
            self._upsert(conn, "score_history", history_rows)
            self._upsert(conn, "turbine_state", sorted(state_rows, key=lambda r: r[0]))
            conn.execute(
                "UPDATE sweep_runs SET status = %s, finished_at = now(), turbines_scored = %s, "
                "tier_counts = %s, model_version = %s, error = %s, duration_ms = %s WHERE run_id = %s",
                (
                    status,
                    turbines,
                    orjson.dumps(tier_counts).decode(),
                    model_version,
                    error,
                    duration_ms,
                    run_id,
                ),
            )
            self._log(
                conn,
                "sweep",
                turbines,
                0,
                "ok" if status == "succeeded" else "error",
                duration_ms,
                model_version,
                error,
            )

        self.run(tx)

    def last_successful_sweep(self) -> datetime | None:
        row = self.run(
            lambda c: c.execute(
                "SELECT max(coalesce(started_at, requested_at)) FROM sweep_runs WHERE status = 'succeeded'"
            ).fetchone()
        )
        return None if row is None else row[0]

    def fleet_size(self) -> int:
        row = self.run(
            lambda c: c.execute(
                "SELECT count(*) FROM scorer_windows WHERE consumer_group = %s", (self.group,)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    # ------------------------------------------------------------------ liveness
    def heartbeat(
        self,
        started_at: datetime,
        model_version: str | None,
        events_per_minute: float,
        lag_messages: int,
        lag_seconds: float,
        details: dict[str, Any],
    ) -> None:
        self.run(
            lambda c: c.execute(
                "INSERT INTO scorer_heartbeats (worker_id, updated_at, started_at, model_version, "
                "events_per_minute, lag_messages, lag_seconds, details) "
                "VALUES (%s, now(), %s, %s, %s, %s, %s, %s) ON CONFLICT (worker_id) DO UPDATE SET "
                "updated_at = now(), started_at = EXCLUDED.started_at, "
                "model_version = EXCLUDED.model_version, "
                "events_per_minute = EXCLUDED.events_per_minute, lag_messages = EXCLUDED.lag_messages, "
                "lag_seconds = EXCLUDED.lag_seconds, details = EXCLUDED.details",
                (
                    self.worker_id,
                    started_at,
                    model_version,
                    events_per_minute,
                    lag_messages,
                    lag_seconds,
                    orjson.dumps(details).decode(),
                ),
            )
        )

    def ping(self) -> float:
        t0 = time.perf_counter()
        self.run(lambda c: c.execute("SELECT 1").fetchone())
        return time.perf_counter() - t0
