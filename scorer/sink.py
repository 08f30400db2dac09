"""PostgreSQL writes of the scorer: one statement per table per batch, idempotent, only what changed.

Rows are the typed records of ``common.rows``. A table's rows of one batch are written with ONE
``INSERT INTO t (cols) SELECT * FROM unnest(%b::type[], ...) ON CONFLICT ...`` whose array parameters
go in binary (one array per column, generated from the row class). From ``copy_min_rows`` rows on, a
binary ``COPY`` into a temporary staging table (``ON COMMIT DELETE ROWS``, created once per
connection) followed by one ``INSERT ... SELECT ... ON CONFLICT`` is faster (``bench/bench_sink.py
--paths`` on this machine: unnest 1.5-10x faster at 50 rows, binary COPY up to 2x faster at 10,000 rows of
score_history; per table the crossover lies between 2,000 and 10,000 rows). 5,000 keeps live and backlog
batches on the unnest path, whose statements go in pipeline mode (one round trip for the batch; COPY
cannot be pipelined); window checkpoints (20 KB rows) switch at 250.

The ``ON CONFLICT`` clauses keep every replay harmless and skip rows that would not change: the
``turbines`` row is rewritten only when its newest event time moves forward (``GREATEST``) or its site
changed; ``telemetry_latest`` only for a newer reading (or a different one at the same time);
``telemetry_agg`` only when a bucket's values differ; ``score_history`` never (``DO NOTHING``);
``turbine_state`` never regresses in ``last_event_time`` and is not rewritten with identical values.

Why synchronous psycopg in a thread: every call is one short transaction run from a dedicated
executor thread; the event loop never blocks on the database, and the batch is acknowledged to Kafka
only after the transaction committed.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import psycopg
from psycopg.types.json import Jsonb

from common.db import DatabaseUnavailable, connect, redact
from common.rows import (
    ASSESSMENT_COLUMNS,
    TELEMETRY_AGG_SIGNALS,
    AggRow,
    DeadLetterRow,
    HistoryRow,
    LatestRow,
    OffsetRow,
    Row,
    StateRow,
    TurbineSeenRow,
    WindowRow,
)
from models.window_store import StatePacker
from scorer.ports import StoredWindow
from scorer.restore_rows import StoredChunk
from scorer.state import HistoryMark

if TYPE_CHECKING:
    from scorer.processing import BatchOutcome, DeadLetterRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


def _changed(table: str, cols: Sequence[str]) -> str:
    """SQL: the stored row differs from the proposed one in ``cols`` (NULL-safe)."""
    stored = ", ".join(f"{table}.{c}" for c in cols)
    new = ", ".join(f"EXCLUDED.{c}" for c in cols)
    return f"ROW({stored}) IS DISTINCT FROM ROW({new})"


def _set(cols: Sequence[str], key: Sequence[str]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in key)


#: Send a live batch's statements in pipeline mode (one round trip; see Sink.write_batch).
PIPELINE = True
#: From this many rows of one table, binary COPY into a staging table (module docstring).
COPY_MIN_ROWS = 5000


@dataclass(frozen=True)
class TableWrite:
    """How one row type is written: its conflict key (also the row order) and the ON CONFLICT clause."""

    row: type[Row]
    key: tuple[str, ...]
    on_conflict: str
    copy_min_rows: int = COPY_MIN_ROWS

    @property
    def stage(self) -> str:
        return f"_stage_{self.row.TABLE}"

    def _conflict(self) -> str:
        return f"ON CONFLICT ({', '.join(self.key)}) {self.on_conflict}"

    def unnest_statement(self) -> str:
        cols = ", ".join(self.row.COLUMNS)
        arrays = ", ".join(f"%b::{t}[]" for t in self.row.PG_TYPES)
        return f"INSERT INTO {self.row.TABLE} ({cols}) SELECT * FROM unnest({arrays}) {self._conflict()}"

    def stage_statements(self) -> tuple[str, str, str]:
        """(create the staging table, COPY into it, INSERT from it)."""
        cols = ", ".join(self.row.COLUMNS)
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} (LIKE {self.row.TABLE} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS",
            f"COPY {self.stage} ({cols}) FROM STDIN (FORMAT BINARY)",
            f"INSERT INTO {self.row.TABLE} ({cols}) SELECT {cols} FROM {self.stage} {self._conflict()}",
        )


_STATE_VALUES = tuple(c for c in StateRow.COLUMNS if c != "turbine_id")
_AGG_VALUES = ("samples", *TELEMETRY_AGG_SIGNALS)

WRITES: dict[type[Row], TableWrite] = {
    w.row: w
    for w in (
        TableWrite(
            TurbineSeenRow,
            ("turbine_id",),
            "DO UPDATE SET site_id = EXCLUDED.site_id, "
            "last_event_time = GREATEST(turbines.last_event_time, EXCLUDED.last_event_time) "
            "WHERE turbines.site_id IS DISTINCT FROM EXCLUDED.site_id "
            "OR (EXCLUDED.last_event_time IS NOT NULL AND (turbines.last_event_time IS NULL "
            "OR EXCLUDED.last_event_time > turbines.last_event_time))",
        ),
        TableWrite(
            LatestRow,
            ("turbine_id",),
            "DO UPDATE SET event_time = EXCLUDED.event_time, measurements = EXCLUDED.measurements, "
            "status_code = EXCLUDED.status_code, updated_at = now() "
            "WHERE EXCLUDED.event_time > telemetry_latest.event_time "
            "OR (EXCLUDED.event_time = telemetry_latest.event_time AND "
            + _changed("telemetry_latest", ("measurements", "status_code"))
            + ")",
        ),
        TableWrite(
            AggRow,
            ("turbine_id", "bucket"),
            f"DO UPDATE SET {_set(_AGG_VALUES, ())} WHERE {_changed('telemetry_agg', _AGG_VALUES)}",
        ),
        TableWrite(HistoryRow, ("turbine_id", "time", "trigger"), "DO NOTHING"),
        TableWrite(
            StateRow,
            ("turbine_id",),
            f"DO UPDATE SET {_set(_STATE_VALUES, ())}, scored_at = now() "
            "WHERE (turbine_state.last_event_time IS NULL OR EXCLUDED.last_event_time IS NULL "
            "OR EXCLUDED.last_event_time >= turbine_state.last_event_time) AND "
            + _changed("turbine_state", _STATE_VALUES),
        ),
        TableWrite(
            WindowRow,
            ("consumer_group", "turbine_id"),
            f"DO UPDATE SET {_set(WindowRow.COLUMNS, ('consumer_group', 'turbine_id'))}, updated_at = now()",
            copy_min_rows=250,  # 20 KB rows
        ),
        TableWrite(
            OffsetRow,
            ("consumer_group", "topic", "partition"),
            "DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now() "
            "WHERE scorer_offsets.next_offset IS DISTINCT FROM EXCLUDED.next_offset",
        ),
        TableWrite(
            DeadLetterRow,
            ("consumer_group", "source_topic", "source_partition", "source_offset"),
            "DO NOTHING",
        ),
    )
}
_STATEMENTS: dict[type[Row], str] = {cls: w.unnest_statement() for cls, w in WRITES.items()}
_SORT_KEYS: dict[type[Row], Callable[[Any], Any]] = {cls: attrgetter(*w.key) for cls, w in WRITES.items()}


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _uuid(v: Any) -> uuid.UUID | None:
    return None if v is None or isinstance(v, uuid.UUID) else uuid.UUID(str(v))


def _same(text: Any) -> Any:
    return text


def _jsonb(v: Any) -> Jsonb | None:
    """JSON text as it is (the rows carry serialised JSON; psycopg's own dumps would quote a str)."""
    return None if v is None else Jsonb(v, dumps=_same)


#: Element conversions that make each column one Python type (psycopg refuses lists mixing int and float).
_COERCE: dict[str, Callable[[Any], Any]] = {"float8": _float, "int4": _int, "int8": _int}
#: Binary COPY takes each value as its column's type: uuid.UUID for uuid, a Jsonb wrapper for jsonb.
_COPY_COERCE: dict[str, Callable[[Any], Any]] = {**_COERCE, "uuid": _uuid, "jsonb": _jsonb}


def copy_values(cls: type[Row], rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    """The rows as binary COPY takes them (``cls.PG_TYPES`` order)."""
    fix = [(i, _COPY_COERCE[t]) for i, t in enumerate(cls.PG_TYPES) if t in _COPY_COERCE]
    out = []
    for r in rows:
        values = list(r.values())
        for i, fn in fix:
            values[i] = fn(values[i])
        out.append(tuple(values))
    return out


def column_arrays(cls: type[Row], rows: Sequence[Row]) -> list[list[Any]]:
    """One list per column of ``cls`` (the unnest parameters), each of a single element type."""
    arrays = [list(c) for c in zip(*(r.values() for r in rows), strict=True)]
    for i, pg in enumerate(cls.PG_TYPES):
        fn = _COERCE.get(pg)
        if fn is not None:
            arrays[i] = [fn(v) for v in arrays[i]]
    return arrays


# ---------------------------------------------------------------------------------------------- sweep rows
#: A sweep's rows go in ONE binary COPY into this staging table: each score_history row with what its
#: turbine_state row adds (site, newest event time); both tables are then filled from it in SQL. Its
#: two JSON documents are not in the row: each part's distinct documents go once into
#: :data:`SWEEP_DOCS` (a second COPY) and a row names its two by number (``reasons_ref``,
#: ``data_quality_ref``). Healthy turbines of one fleet mostly share their data quality document (same
#: readings grid, same counts), so PostgreSQL parses each distinct jsonb once per part instead of once
#: per row (the parse was ~70 % of the server's CPU for a sweep). What is stored is the same.
SWEEP_STAGE = "_stage_sweep_rows"
SWEEP_DOCS = "_stage_sweep_docs"
_DOC_COLUMNS = ("reasons", "data_quality")
SWEEP_COLUMNS: tuple[str, ...] = (
    *(c for c in HistoryRow.COLUMNS if c not in _DOC_COLUMNS),
    "site_id",
    "last_event_time",
    *(f"{c}_ref" for c in _DOC_COLUMNS),
)
#: Values a turbine_state row shares with its score_history row (its as_of is the history row's time).
_SHARED = (*ASSESSMENT_COLUMNS, "turbine_id", "trigger", "reasons", "data_quality", "calibration_version")
_HISTORY_SHARED = attrgetter("time", *_SHARED)
_STATE_SHARED = attrgetter("as_of", *_SHARED)


def _sweep_statements() -> tuple[str, str, str, str, str, str]:
    """(create the staging table, create the documents' table, COPY into each, INSERT score_history,
    upsert turbine_state from them)."""
    hist, state = WRITES[HistoryRow], WRITES[StateRow]

    def value(c: str) -> str:
        if c in _DOC_COLUMNS:
            return f"{c}_doc.doc"
        return "s.time" if c == "as_of" else f"s.{c}"

    source = (
        f"FROM {SWEEP_STAGE} s "
        + " ".join(f"JOIN {SWEEP_DOCS} {c}_doc ON {c}_doc.ref = s.{c}_ref" for c in _DOC_COLUMNS)
        + " ORDER BY "
    )
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {SWEEP_STAGE} (LIKE score_history INCLUDING DEFAULTS, "
        "site_id text NOT NULL, last_event_time timestamptz, "
        + ", ".join(f"{c}_ref integer NOT NULL" for c in _DOC_COLUMNS)
        + ") ON COMMIT DELETE ROWS",
        f"CREATE TEMP TABLE IF NOT EXISTS {SWEEP_DOCS} (ref integer PRIMARY KEY, doc jsonb NOT NULL) "
        "ON COMMIT DELETE ROWS",
        f"COPY {SWEEP_STAGE} ({', '.join(SWEEP_COLUMNS)}) FROM STDIN (FORMAT BINARY)",
        f"COPY {SWEEP_DOCS} (ref, doc) FROM STDIN (FORMAT BINARY)",
        f"INSERT INTO score_history ({', '.join(HistoryRow.COLUMNS)}) "
        f"SELECT {', '.join(value(c) for c in HistoryRow.COLUMNS)} "
        + source
        + f"{_by_code_point(hist.key, 's.')} {hist._conflict()}",
        f"INSERT INTO turbine_state ({', '.join(StateRow.COLUMNS)}) "
        f"SELECT {', '.join(value(c) for c in StateRow.COLUMNS)} "
        + source
        + f"{_by_code_point(state.key, 's.')} {state._conflict()}",
    )


def _by_code_point(key: Sequence[str], prefix: str = "") -> str:
    """ORDER BY of a conflict key in Python's order (text by code point: ``COLLATE "C"`` in UTF-8), the
    order :meth:`Sink.write_rows` sends rows in: every writer takes row locks in one order. ``prefix``:
    the key's table alias (``"s."``); the stage's ``time`` is a state row's ``as_of``."""

    def col(c: str) -> str:
        c = "time" if prefix and c == "as_of" else c
        return f'{prefix}{c} COLLATE "C"' if c == "turbine_id" else prefix + c

    return ", ".join(col(c) for c in key)


_SWEEP_SQL = _sweep_statements()
#: Empties the sweep's stage after each part (in the part's pipeline; ON COMMIT DELETE ROWS after the last).
_SWEEP_EMPTY = f"TRUNCATE {SWEEP_STAGE}, {SWEEP_DOCS}"


def sweep_rows_pair(history_rows: Sequence[HistoryRow], state_rows: Sequence[StateRow]) -> bool:
    """True when ``state_rows[i]`` is ``history_rows[i]`` as a state row (same turbine, assessment and
    trigger; ``as_of`` = ``time``): the sweep's rows, written by one COPY (:func:`sweep_copy_data`)."""
    if len(history_rows) != len(state_rows):
        return False
    return all(_HISTORY_SHARED(h) == _STATE_SHARED(s) for h, s in zip(history_rows, state_rows, strict=True))


_I32 = struct.Struct(">i").pack
_I32X2 = struct.Struct(">ii").pack  # field length (4) + int4
_F8 = struct.Struct(">id").pack  # field length (8) + big-endian double
_F8X4 = struct.Struct(">idididid").pack  # four of them
_TS = struct.Struct(">iq").pack  # field length (8) + microseconds since 2000-01-01 UTC
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"
_N_SWEEP_FIELDS = struct.pack(">h", len(SWEEP_COLUMNS))


def _f8(v: float | None) -> bytes:
    return _NULL if v is None else _F8(8, v)


def _text(v: str | None) -> bytes:
    if v is None:
        return _NULL
    b = v.encode()
    return _I32(len(b)) + b


_N_DOC_FIELDS = struct.pack(">h", 2)


def sweep_copy_data(
    history_rows: Sequence[HistoryRow], state_rows: Sequence[StateRow]
) -> tuple[bytes, bytes]:
    """The binary COPY streams (signature to trailer) of paired sweep rows: the rows
    (:data:`SWEEP_COLUMNS`) and their distinct JSON documents (:data:`SWEEP_DOCS`: number, jsonb).

    Encoded here rather than value by value through psycopg's dumpers: repeated values (tier, model
    version, run id, site, as-of time) are encoded once, the JSON texts go as they are, each distinct
    one once.
    """
    memo: dict[Any, bytes] = {}
    docs: dict[str, bytes] = {}  # JSON text -> its number, encoded as an int4 field
    doc_parts = [_COPY_SIGNATURE]

    def ts(v: datetime | None) -> bytes:
        if v is None:
            return _NULL
        d = v - _PG_EPOCH
        return _TS(8, (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds)

    def run(v: str | None) -> bytes:
        return _NULL if v is None else _I32(16) + _uuid(v).bytes  # type: ignore[union-attr]

    def doc(text: str) -> bytes:
        ref = _I32X2(4, len(docs))
        raw = text.encode()
        # jsonb binary format: version 1, then the JSON text
        doc_parts.extend((_N_DOC_FIELDS, ref, _I32(len(raw) + 1), b"\x01", raw))
        docs[text] = ref
        return ref

    # values a sweep repeats on every row: encoded once per distinct group, as one byte string
    tiers: dict[str, bytes] = {}
    triggers: dict[str, bytes] = {}
    parts = [_COPY_SIGNATURE]
    add = parts.extend
    for h, s in zip(history_rows, state_rows, strict=True):
        p, t, lo, hi = h.probability, h.ttf_days, h.ttf_low_days, h.ttf_high_days
        k1 = (h.model_version, h.run_id, h.time)
        mid = memo.get(k1)
        if mid is None:
            mid = memo[k1] = _text(h.model_version) + run(h.run_id) + ts(h.time)
        k2 = (h.calibration_version, s.site_id, s.last_event_time, None)  # 4 items: never a k1
        end = memo.get(k2)
        if end is None:
            end = memo[k2] = _text(h.calibration_version) + _text(s.site_id) + ts(s.last_event_time)
        tier = tiers.get(h.tier)
        if tier is None:
            tier = tiers[h.tier] = _text(h.tier)
        trigger = triggers.get(h.trigger)
        if trigger is None:
            trigger = triggers[h.trigger] = _text(h.trigger)
        reasons = docs.get(h.reasons) or doc(h.reasons)
        quality = docs.get(h.data_quality) or doc(h.data_quality)
        add(
            (
                _N_SWEEP_FIELDS,
                _f8(h.score),
                tier,
                _F8X4(8, p, 8, t, 8, lo, 8, hi)
                if p is not None and t is not None and lo is not None and hi is not None
                else _f8(p) + _f8(t) + _f8(lo) + _f8(hi),
                mid,
                _text(h.turbine_id),
                trigger,
                end,
                reasons,
                quality,
            )
        )
    parts.append(_COPY_TRAILER)
    doc_parts.append(_COPY_TRAILER)
    return b"".join(parts), b"".join(doc_parts)


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep's run row records once all its rows are written (:meth:`Sink.write_sweep`)."""

    turbines: int
    tier_counts: dict[str, int]
    duration_ms: float


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


class Sink:
    """PostgreSQL implementation of :class:`scorer.ports.SinkPort`.

    One connection, used from one thread at a time; reconnects after a failure.
    """

    def __init__(self, url: str, worker_id: str, consumer_group: str) -> None:
        self.url = url
        self.worker_id = worker_id
        self.group = consumer_group
        self._conn: psycopg.Connection | None = None
        self._stages: set[str] = set()  # staging tables created on this connection
        self._staged: set[str] = set()  # staging tables holding rows in the current transaction

    # ------------------------------------------------------------------ plumbing
    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = connect(self.url, timeout=5)
            self._stages.clear()
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
        self._staged.clear()
        try:
            conn = self._connection()
            with conn.transaction():
                return fn(conn)
        except UNAVAILABLE as exc:
            self.close()
            raise DatabaseUnavailable(f"PostgreSQL at {redact(self.url)}: {exc}".strip()) from exc
        except WriteRejected:
            self._stages.clear()  # a staging table created in a rolled-back transaction is gone
            raise
        except psycopg.Error as exc:
            self._stages.clear()
            raise WriteRejected(table or "<transaction>", exc) from exc
        except BaseException:
            self._stages.clear()
            raise

    def write_rows(self, conn: psycopg.Connection, cls: type[Row], rows: Sequence[Row]) -> int:
        """Upsert ``rows`` of one table (ordered by key: the same lock order in every worker).

        One ``unnest`` statement, or a binary COPY into the table's staging table then one
        ``INSERT ... SELECT`` from ``copy_min_rows`` rows on. Returns the rows inserted or changed.
        """
        if not rows:
            return 0
        if len(rows) > 1:
            rows = sorted(rows, key=_SORT_KEYS[cls])
        spec = WRITES[cls]
        try:
            with conn.cursor() as cur:
                if len(rows) < spec.copy_min_rows:
                    cur.execute(_STATEMENTS[cls], column_arrays(cls, rows))  # type: ignore[arg-type]
                    return cur.rowcount
                create, copy_sql, insert = spec.stage_statements()
                if spec.stage not in self._stages:
                    cur.execute(create)  # type: ignore[arg-type]
                    self._stages.add(spec.stage)
                elif spec.stage in self._staged:  # second use in one transaction: empty it first
                    cur.execute(f"DELETE FROM {spec.stage}")  # type: ignore[arg-type]
                with cur.copy(copy_sql) as copy:  # type: ignore[arg-type]
                    copy.set_types(list(cls.PG_TYPES))
                    for values in copy_values(cls, rows):
                        copy.write_row(values)
                self._staged.add(spec.stage)
                cur.execute(insert)  # type: ignore[arg-type]
                return cur.rowcount
        except UNAVAILABLE:
            raise
        except psycopg.Error as exc:
            raise WriteRejected(cls.TABLE, exc) from exc

    # ------------------------------------------------------------------ stream batch
    def write_batch(self, out: BatchOutcome, duration_ms: float) -> None:
        """All rows of one micro-batch + its scoring_log row, in one transaction.

        When every table's rows go in one ``unnest`` statement (a live batch), the statements are sent
        in pipeline mode: one round trip for all of them instead of one each (COPY cannot be pipelined).
        """
        tables: list[tuple[type[Row], Sequence[Row]]] = [
            (TurbineSeenRow, out.turbine_rows),
            (LatestRow, out.latest_rows),
            (AggRow, out.agg_rows),
            (HistoryRow, out.history_rows),
            (StateRow, out.state_rows),
            (DeadLetterRow, self.dead_letter_rows(out.fallback_letters)),
        ]
        pipeline = PIPELINE and all(len(rows) < WRITES[cls].copy_min_rows for cls, rows in tables)

        def tx(conn: psycopg.Connection) -> None:
            with conn.pipeline() if pipeline else contextlib.nullcontext():
                for cls, rows in tables:
                    self.write_rows(conn, cls, rows)
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

    def dead_letter_rows(self, letters: Sequence[DeadLetterRecord]) -> list[DeadLetterRow]:
        """Dead letters the topic did not take, as rows of the fallback table (-1: position unknown)."""
        return [
            DeadLetterRow(
                consumer_group=self.group,
                source_topic=d.source_topic,
                source_partition=-1 if d.source_partition is None else d.source_partition,
                source_offset=-1 if d.source_offset is None else d.source_offset,
                code=d.code,
                reason=d.reason,
                record_key=d.key,
                envelope=d.envelope,
            )
            for d in letters
        ]

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
    def write_checkpoint(self, topic: str, windows: Sequence[WindowRow], offsets: dict[int, int]) -> None:
        """Changed windows and the next offsets of every owned partition, atomically."""
        offset_rows = [OffsetRow(self.group, topic, p, off) for p, off in offsets.items()]

        def tx(conn: psycopg.Connection) -> None:
            self.write_rows(conn, WindowRow, windows)
            self.write_rows(conn, OffsetRow, offset_rows)

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
            windows = [  # binary results: bytea as bytes (as load_partitions)
                StoredWindow(r[0], r[1], r[2], r[3], r[4])
                for r in conn.execute(
                    "SELECT turbine_id, site_id, partition, state, aux FROM scorer_windows "
                    "WHERE consumer_group = %s AND turbine_id = ANY(%s)",
                    (self.group, ids),
                    binary=True,
                ).fetchall()
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
            # binary results: bytea arrives as bytes (no hex text to decode), fetched in one go
            rows = [
                StoredWindow(r[0], r[1], r[2], r[3], r[4])
                for r in conn.execute(
                    "SELECT turbine_id, site_id, partition, state, aux FROM scorer_windows "
                    "WHERE consumer_group = %s AND topic = %s AND partition = ANY(%s)",
                    (self.group, topic, list(partitions)),
                    binary=True,
                ).fetchall()
            ]
            return offs, rows, self._history_marks(conn, [w.turbine_id for w in rows])

        return self.run(tx, "scorer_offsets/scorer_windows/score_history")

    def load_partitions_streamed(
        self,
        topic: str,
        partitions: Sequence[int],
        begin: Callable[[int], object],
        consume: Callable[[StoredChunk], object],
        chunk: int = 1024,
    ) -> tuple[dict[int, int], dict[str, HistoryMark]]:
        """:meth:`load_partitions` with the windows handed over as they arrive: ``begin(count)`` once
        (an upper bound of the rows to come), then ``consume(rows)`` per ``chunk`` rows, in the reading
        thread; returns the next offsets and the history marks. Why: the caller decodes chunk k while
        chunk k+1 is read (a restore no longer waits for the whole read before its first decode). The
        rows come as a :class:`scorer.restore_rows.StoredChunk`: each window state is copied into the
        chunk's buffer as its row arrives (one copy, no per-state ``bytes`` kept, no join later).

        Each window's history mark (the newest ``stream`` row of ``score_history``, as
        :meth:`_history_marks`) comes with it in the same rows (a lateral probe per row while the rows
        stream), not by a query of every id after the read: that one ran after the last chunk, on
        the restore's critical path (~60 ms for 10,000 ids with an empty history)."""

        def tx(conn: psycopg.Connection) -> tuple[dict[int, int], dict[str, HistoryMark]]:
            key = (self.group, topic, list(partitions))
            offs = {
                int(p): int(o)
                for p, o in conn.execute(
                    "SELECT partition, next_offset FROM scorer_offsets WHERE consumer_group = %s "
                    "AND topic = %s AND partition = ANY(%s)",
                    key,
                )
            }
            where = "WHERE consumer_group = %s AND topic = %s AND partition = ANY(%s)"
            row = conn.execute(f"SELECT count(*) FROM scorer_windows {where}", key).fetchone()
            begin(int(row[0]) if row else 0)
            marks: dict[str, HistoryMark] = {}
            ids: list[str] = []
            sites: list[str] = []
            parts: list[int] = []
            auxes: list[bytes] = []
            size = max(1, chunk // 4)  # a smaller first chunk: the decode starts ~3/4 of a chunk sooner
            packer = StatePacker(size * (12 << 10))  # 7.7-11.7 KB per bench window; then sized by take()
            query = (
                "SELECT w.turbine_id, w.site_id, w.partition, w.state, w.aux, h.time, h.score, h.tier "
                "FROM scorer_windows w LEFT JOIN LATERAL (SELECT time, score, tier FROM score_history "
                "WHERE turbine_id = w.turbine_id AND trigger = 'stream' ORDER BY time DESC LIMIT 1) h "
                "ON true WHERE w.consumer_group = %s AND w.topic = %s AND w.partition = ANY(%s)"
            )
            # The probe's key is the row's turbine id, unique among the rows read (the table's key is
            # (consumer_group, turbine_id)): a Memoize node in front of it never hits, it only hashes
            # each id (EXPLAIN ANALYZE, 10,000 rows: 50-57 ms with it, 41-44 without); this
            # transaction only.
            conn.execute("SET LOCAL enable_memoize = off")
            # fetched a quarter chunk at a time too: the first rows reach the loop after 1/4 of a chunk
            # (not after a whole one), and each libpq result holds ~2 MB, not ~9
            for r in conn.cursor(binary=True).stream(query, key, size=size):
                ids.append(r[0])
                sites.append(r[1])
                parts.append(r[2])
                packer.add(r[3])  # copied into the chunk's buffer; the row's bytes go at once
                auxes.append(r[4])
                if r[5] is not None:
                    marks[r[0]] = HistoryMark(r[5].timestamp(), float(r[6]), str(r[7]))
                if len(ids) == size:
                    consume(StoredChunk(ids, sites, parts, packer.take(chunk), auxes))
                    ids, sites, parts, auxes, size = [], [], [], [], chunk
            if ids:
                consume(StoredChunk(ids, sites, parts, packer.take(), auxes))
            return offs, marks

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

    def write_sweep_rows(
        self, conn: psycopg.Connection, history_rows: Sequence[HistoryRow], state_rows: Sequence[StateRow]
    ) -> tuple[int, int]:
        """Paired sweep rows (:func:`sweep_rows_pair`): one binary COPY of their distinct JSON documents
        and one of the rows into the sweep's staging tables, then ``score_history`` and
        ``turbine_state`` filled from them in SQL (same ON CONFLICT rules and key order as
        :meth:`write_rows`). Returns (history rows inserted, state rows changed).

        The two INSERTs and the TRUNCATE that empties the stage for the next part go in pipeline mode:
        one round trip per part after the COPY (was three, plus the TRUNCATE's own before the next
        COPY); each statement keeps its own cursor, so its row count and its server-side preparation."""
        create, create_docs, copy_sql, copy_docs, insert_history, upsert_state = _SWEEP_SQL
        data, docs = sweep_copy_data(history_rows, state_rows)
        table = HistoryRow.TABLE
        try:
            with conn.cursor() as cur:
                if SWEEP_STAGE not in self._stages:
                    cur.execute(create)  # type: ignore[arg-type]
                    cur.execute(create_docs)  # type: ignore[arg-type]
                    self._stages.add(SWEEP_STAGE)
                with cur.copy(copy_docs) as copy:  # type: ignore[arg-type]
                    copy.write(docs)
                with cur.copy(copy_sql) as copy:  # type: ignore[arg-type]
                    copy.write(data)
            table = f"{HistoryRow.TABLE}/{StateRow.TABLE}"
            with conn.pipeline(), conn.cursor() as hist, conn.cursor() as state:
                hist.execute(insert_history)  # type: ignore[arg-type]
                state.execute(upsert_state)  # type: ignore[arg-type]
                conn.execute(_SWEEP_EMPTY)  # type: ignore[arg-type]
            return hist.rowcount, state.rowcount
        except UNAVAILABLE:
            raise
        except psycopg.Error as exc:
            diag = getattr(exc, "diag", None)
            raise WriteRejected(getattr(diag, "table_name", None) or table, exc) from exc

    def finish_sweep(
        self,
        run_id: str,
        status: str,
        turbines: int,
        tier_counts: dict[str, int],
        model_version: str | None,
        error: str | None,
        duration_ms: float,
        history_rows: Sequence[HistoryRow],
        state_rows: Sequence[StateRow],
    ) -> None:
        def tx(conn: psycopg.Connection) -> None:
            self._write_sweep_part(conn, history_rows, state_rows)
            self._finish_run(conn, run_id, status, turbines, tier_counts, model_version, error, duration_ms)

        self.run(tx)

    def write_sweep(
        self,
        run_id: str,
        model_version: str | None,
        parts: Iterable[tuple[Sequence[HistoryRow], Sequence[StateRow]]],
        summary: Callable[[], SweepSummary],
    ) -> None:
        """A succeeded sweep written WHILE it is computed: each part of its rows as ``parts`` yields it
        (the database works on one part while the caller computes the next), then the run's row and
        log from ``summary()``, all in ONE transaction as :meth:`finish_sweep` (nothing is visible
        before the commit; an exception raised by ``parts`` rolls everything back).

        Parts must come in ascending turbine order (Python's string order): each part's state rows are
        locked in key order, so the whole transaction locks them in the order every other writer does.
        """

        def tx(conn: psycopg.Connection) -> None:
            for history_rows, state_rows in parts:
                self._write_sweep_part(conn, history_rows, state_rows)
            done = summary()
            self._finish_run(
                conn,
                run_id,
                "succeeded",
                done.turbines,
                done.tier_counts,
                model_version,
                None,
                done.duration_ms,
            )

        self.run(tx)

    def _write_sweep_part(
        self, conn: psycopg.Connection, history_rows: Sequence[HistoryRow], state_rows: Sequence[StateRow]
    ) -> None:
        if history_rows and sweep_rows_pair(history_rows, state_rows):
            self.write_sweep_rows(conn, history_rows, state_rows)
        else:
            self.write_rows(conn, HistoryRow, history_rows)
            self.write_rows(conn, StateRow, state_rows)

    def _finish_run(
        self,
        conn: psycopg.Connection,
        run_id: str,
        status: str,
        turbines: int,
        tier_counts: dict[str, int],
        model_version: str | None,
        error: str | None,
        duration_ms: float,
    ) -> None:
        """The run's row in ``sweep_runs`` and its ``scoring_log`` line (one round trip: pipeline)."""
        with conn.pipeline():
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
