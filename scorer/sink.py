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
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import psycopg
from psycopg import sql

from common.db import ASSESSMENT_COLUMNS, TELEMETRY_AGG_SIGNALS, DatabaseUnavailable, connect, redact
from scorer.processing import BatchOutcome
from scorer.state import HistoryMark

if TYPE_CHECKING:
    from scorer.processing import DeadLetterRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

# calibration_version last (lineage, migration 0008): scorer.processing.assessment_rows appends it
HISTORY_COLS = (
    "time",
    "turbine_id",
    "trigger",
    *ASSESSMENT_COLUMNS,
    "reasons",
    "data_quality",
    "calibration_version",
)
STATE_COLS = (
    "turbine_id",
    "site_id",
    "as_of",
    "trigger",
    *ASSESSMENT_COLUMNS,
    "reasons",
    "data_quality",
    "last_event_time",
    "calibration_version",
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


class WriteRejected(RuntimeError):
    """PostgreSQL refused a statement for a reason other than availability (permission, data, bug).

    Not retried: the same rows would be refused again and the stream would stall silently. The message
    names the table and the error class so the crash log says what to fix.
    """

    def __init__(self, table: str, exc: BaseException) -> None:
        super().__init__(f"{table}: {type(exc).__name__}: {str(exc).strip()[:500]}")
        self.table = table
        self.error_class = type(exc).__name__


#: psycopg errors that mean "the server is not there right now" (connection refused or lost, server
#: shutting down, too many connections, statement cancelled by an operator): retried by the runtime.
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)


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

    def run(self, fn: Callable[[psycopg.Connection], T], table: str = "") -> T:
        """Run ``fn`` in one transaction.

        Connection-level failures become :class:`DatabaseUnavailable` (the caller retries); any other
        database error becomes :class:`WriteRejected` naming ``table`` unless ``fn`` named one already.
        """
        try:
            conn = self._connection()
            with conn.transaction():
                return fn(conn)
        except UNAVAILABLE as exc:
            self.close()
            raise DatabaseUnavailable(f"PostgreSQL at {redact(self.url)}: {exc}".strip()) from exc
        except WriteRejected:
            raise
        except psycopg.Error as exc:
            raise WriteRejected(table or "<transaction>", exc) from exc

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
        try:
            with conn.cursor() as cur:
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(stage), col_sql)
                with cur.copy(copy_sql) as copy:
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
        except UNAVAILABLE:
            raise
        except psycopg.Error as exc:
            raise WriteRejected(table, exc) from exc
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
            self._insert_dead_letters(conn, out.fallback_letters)
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

        self.run(tx, "stream batch")

    def _insert_dead_letters(self, conn: psycopg.Connection, letters: Sequence[DeadLetterRecord]) -> None:
        """Dead letters the topic did not take, durable with their batch (idempotent on replay)."""
        if not letters:
            return
        try:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO scorer_dead_letters (consumer_group, source_topic, source_partition, "
                    "source_offset, code, reason, record_key, envelope) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (consumer_group, source_topic, source_partition, source_offset) DO NOTHING",
                    [
                        (
                            self.group,
                            d.source_topic,
                            -1 if d.source_partition is None else d.source_partition,
                            -1 if d.source_offset is None else d.source_offset,
                            d.code,
                            d.reason,
                            d.key,
                            d.envelope,
                        )
                        for d in letters
                    ],
                )
        except UNAVAILABLE:
            raise
        except psycopg.Error as exc:
            raise WriteRejected("scorer_dead_letters", exc) from exc

    def claim_dead_letters(self, limit: int, stale_after_s: float) -> list[tuple[int, bytes | None, bytes]]:
        """Take up to ``limit`` unpublished fallback letters (id, key, envelope) for a re-publish.

        A claim older than ``stale_after_s`` (a worker died mid-publish) is taken over; several workers
        never re-publish the same rows at the same time (``SKIP LOCKED``).
        """

        def tx(conn: psycopg.Connection) -> list[tuple[int, bytes | None, bytes]]:
            rows = conn.execute(
                "UPDATE scorer_dead_letters SET claimed_at = now() WHERE id IN (SELECT id FROM "
                "scorer_dead_letters WHERE consumer_group = %s AND published_at IS NULL AND (claimed_at IS "
                "NULL OR claimed_at < now() - make_interval(secs => %s)) ORDER BY id LIMIT %s "
                "FOR UPDATE SKIP LOCKED) RETURNING id, record_key, envelope",
                (self.group, stale_after_s, limit),
            ).fetchall()
            return sorted((int(r[0]), None if r[1] is None else bytes(r[1]), bytes(r[2])) for r in rows)

        return self.run(tx, "scorer_dead_letters")

    def mark_dead_letters(self, published: Sequence[int], failed: Sequence[int] = ()) -> None:
        """Published rows get ``published_at``; failed ones are released for the next attempt."""

        def tx(conn: psycopg.Connection) -> None:
            if published:
                conn.execute(
                    "UPDATE scorer_dead_letters SET published_at = now() WHERE id = ANY(%s)",
                    (list(published),),
                )
            if failed:
                conn.execute(
                    "UPDATE scorer_dead_letters SET claimed_at = NULL WHERE id = ANY(%s)", (list(failed),)
                )

        self.run(tx, "scorer_dead_letters")

    def purge_dead_letters(self, older_than_days: float) -> int:
        """Forget fallback rows re-published long ago (the topic has them, with its own retention)."""
        return self.run(
            lambda c: (
                c.execute(
                    "DELETE FROM scorer_dead_letters WHERE consumer_group = %s AND published_at IS NOT NULL "
                    "AND published_at < now() - make_interval(secs => %s)",
                    (self.group, older_than_days * 86400.0),
                ).rowcount
            ),
            "scorer_dead_letters",
        )

    def pending_dead_letters(self) -> int:
        row = self.run(
            lambda c: c.execute(
                "SELECT count(*) FROM scorer_dead_letters WHERE consumer_group = %s AND published_at IS NULL",
                (self.group,),
            ).fetchone(),
            "scorer_dead_letters",
        )
        return 0 if row is None else int(row[0])

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

        self.run(tx, "scorer_windows/scorer_offsets")

    def load_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """Checkpointed next offsets of ``partitions`` (windows are restored per turbine)."""
        return self.run(
            lambda conn: {
                int(p): int(o)
                for p, o in conn.execute(
                    "SELECT partition, next_offset FROM scorer_offsets WHERE consumer_group = %s "
                    "AND topic = %s AND partition = ANY(%s)",
                    (self.group, topic, list(partitions)),
                )
            },
            "scorer_offsets",
        )

    def load_turbines(self, turbine_ids: Sequence[str]) -> tuple[list[StoredWindow], dict[str, HistoryMark]]:
        """Checkpoints of ``turbine_ids`` whatever partition wrote them, and each one's newest stream row.

        One round trip for a whole batch. Why by turbine: after a partition-count change (or a key
        change) a turbine arrives on another partition than its checkpoint's; restoring per partition
        would start it empty and the next checkpoint would overwrite its history.
        """

        def tx(conn: psycopg.Connection) -> tuple[list[StoredWindow], dict[str, HistoryMark]]:
            ids = list(turbine_ids)
            windows = [
                StoredWindow(r[0], r[1], int(r[2]), bytes(r[3]), bytes(r[4]))
                for r in conn.execute(
                    "SELECT turbine_id, site_id, partition, state, aux FROM scorer_windows "
                    "WHERE consumer_group = %s AND turbine_id = ANY(%s)",
                    (self.group, ids),
                )
            ]
            return windows, self._history_marks(conn, ids)

        return self.run(tx, "scorer_windows/score_history")

    @staticmethod
    def _history_marks(conn: psycopg.Connection, turbine_ids: Sequence[str]) -> dict[str, HistoryMark]:
        """Newest ``stream`` row of each turbine in ``score_history`` (one index probe per turbine)."""
        if not turbine_ids:
            return {}
        return {
            r[0]: HistoryMark(r[1].timestamp(), float(r[2]), str(r[3]))
            for r in conn.execute(
                "SELECT t.id, h.time, h.score, h.tier FROM unnest(%s::text[]) AS t(id) "
                "CROSS JOIN LATERAL (SELECT time, score, tier FROM score_history "
                "WHERE turbine_id = t.id AND trigger = 'stream' ORDER BY time DESC LIMIT 1) h",
                (list(turbine_ids),),
            )
        }

    def load_partitions(
        self, topic: str, partitions: Sequence[int]
    ) -> tuple[dict[int, int], list[StoredWindow], dict[str, HistoryMark]]:
        """Next offsets of ``partitions``, the windows checkpointed on them, and their history marks.

        Why windows per partition too (besides :meth:`load_turbines`): the sweep scores the turbines of
        owned partitions from memory, including those that sent nothing since the start.
        """

        def tx(
            conn: psycopg.Connection,
        ) -> tuple[dict[int, int], list[StoredWindow], dict[str, HistoryMark]]:
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
            return offs, rows, self._history_marks(conn, [w.turbine_id for w in rows])

        return self.run(tx, "scorer_offsets/scorer_windows/score_history")

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
