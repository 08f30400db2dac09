"""CPU side of a micro-batch: validate, deduplicate, update windows, score touched turbines once.

Why a plain class without faust or database: the whole batch runs in one thread-executor call (the
event loop keeps heartbeats, commits and web requests going), and the same code is exercised by unit
tests and by the benchmark without Kafka.

All windows of the worker live in ONE ``models.window_store.WindowStore`` (each ``TurbineState.window``
is a view on its row): a batch's accepted events are ingested in one vectorised call, and the
features and data quality of the turbines to rescore are computed over the store's arrays. Rescoring
is coalesced per turbine by event time (scorer/coalescing.py): a burst of events costs one rescoring.

A batch runs in two steps so that the runtime can restore state between them: :meth:`parse` (offsets,
validation, key check) tells which turbines the batch touches; the runtime installs the checkpointed
state of every touched turbine not in memory, whichever partition it was on (:meth:`install`); then
:meth:`apply` updates windows and scores. :meth:`process` does both for tests and benchmarks.

One bad record never stops the stream: every per-record step runs under its own ``try``; an invalid
record becomes a dead letter with the contract's reason, and an unexpected exception on one record
becomes a dead letter with code ``internal_error`` and the exception class (the record is not applied).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any, Protocol

import numpy as np
import orjson

from common.contracts import (
    DEAD_LETTER_RECORD_OVERHEAD,
    MIN_DEAD_LETTER_BYTES,
    SIGNALS,
    TIERS,
    InvalidEvent,
    TelemetryBatch,
    TelemetryEvent,
    dead_letter_bytes,
    decode_telemetry_batch,
)
from common.rows import AggRow, HistoryRow, LatestRow, StateRow, TurbineSeenRow
from models.features import TRACKED_SIGNALS, window_data_quality, window_features
from models.fleet_scoring import FleetScorer
from models.scoring import MAX_BATCH, BatchScorer, RiskAssessment
from models.window_store import PackedStates, WindowStore
from scorer.book import book_for
from scorer.coalescing import (
    IDLE_FLUSHES,
    LATE_FLUSHES,
    PendingRescores,
    RescoreMark,
    flush_gap,
    gap_elapsed,
    rescore_due,
    status_class,
)
from scorer.drift import DriftMonitor
from scorer.repairs import annotate_from_window
from scorer.restore_rows import StoredChunk
from scorer.settings import ScorerSettings
from scorer.state import (
    AGG_COLUMNS,
    HistoryMark,
    TurbineState,
    add_to_buckets,
    should_write_history,
)

#: A source key longer than this is not reused as the dead letter's record key (it stays in the
#: envelope); with it the record's overhead stays well inside contracts' DEAD_LETTER_RECORD_OVERHEAD.
DEAD_LETTER_MAX_KEY_BYTES = 256
INTERNAL_ERROR = "internal_error"
#: Auxiliary fields of an event kept by the window (WindowStore.ingest's ``aux`` columns, in order).
AUX_FIELDS: tuple[str, ...] = ("pitch_angle_deg", "wind_direction_deg", "nacelle_direction_deg")
_TRACKED_COLUMNS = np.array([SIGNALS.index(name) for name in TRACKED_SIGNALS])
_AUX_COLUMNS = np.array([SIGNALS.index(name) for name in AUX_FIELDS])
_FIRST = itemgetter(0)
_VALUE = attrgetter("value")
_KEY = attrgetter("key")
_PARTITION = attrgetter("partition")
_OFFSET = attrgetter("offset")
_TIMESTAMP = attrgetter("timestamp")


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Checkpointed(Protocol):
    """A checkpointed turbine as the sink loads it (``scorer.sink.StoredWindow``)."""

    turbine_id: str
    partition: int
    state: bytes
    aux: bytes


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as the agent hands it over (faust-independent)."""

    partition: int
    offset: int
    timestamp: float | None  # Kafka record timestamp, epoch seconds (arrival in the system)
    value: bytes
    topic: str = ""
    key: bytes | None = None


@dataclass(frozen=True)
class DeadLetterRecord:
    """A refused record: the bounded envelope to publish, and what the fallback table indexes it by."""

    envelope: bytes
    code: str
    reason: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    key: bytes | None  # record key on the dead-letter topic (the source key when short)


@dataclass
class BatchOutcome:
    """Everything the sink writes for one batch, plus counters for metrics and the scoring log."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    skipped_replayed: int = 0
    invalid: dict[str, int] = field(default_factory=dict)
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)
    # Dead letters the topic did not take (set by the runtime): written to PostgreSQL with the batch.
    fallback_letters: list[DeadLetterRecord] = field(default_factory=list)
    turbine_rows: list[TurbineSeenRow] = field(default_factory=list)
    latest_rows: list[LatestRow] = field(default_factory=list)
    agg_rows: list[AggRow] = field(default_factory=list)
    history_rows: list[HistoryRow] = field(default_factory=list)
    state_rows: list[StateRow] = field(default_factory=list)
    tiers: dict[str, str] = field(default_factory=dict)
    arrival_ts: list[float] = field(default_factory=list)
    event_time_lag_s: list[float] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    turbines_scored: int = 0
    # Rescore coalescing: touched turbines rescored (plus pending ones flushed) vs left pending.
    rescored: int = 0
    deferred: int = 0
    scoring_s: float = 0.0
    model_version: str | None = None
    last_record_ts: float | None = None


@dataclass
class ParsedBatch:
    """Result of :meth:`BatchProcessor.parse`: the valid events column-wise (record order) and the
    record of each, with the outcome begun."""

    out: BatchOutcome
    wall: datetime
    decoded: TelemetryBatch
    records: list[RawRecord]

    @property
    def turbine_ids(self) -> set[str]:
        return set(self.decoded.turbine_id)

    @property
    def events(self) -> list[tuple[RawRecord, TelemetryEvent]]:
        """The valid events as models, with their records (tests and tools; the stream uses columns)."""
        return [(rec, self.decoded.event(i)) for i, rec in enumerate(self.records)]


def _json(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


#: A reading's measurements as JSON: one ``%s`` per signal (``_measurements``).
_MEASUREMENTS = "{" + ",".join(f"{orjson.dumps(name).decode()}:%s" for name in SIGNALS) + "}"


def _measurements(signals: np.ndarray) -> list[str]:
    """Each row of ``signals`` (float64, ``SIGNALS`` order) as the JSON object ``_json`` makes of
    ``{signal: value}`` with NaN as null, byte for byte: orjson writes the whole array at once (NaN as
    null, the same number format) and each row fills the object's template (half the CPU of a dict
    and a dumps per reading)."""
    body = orjson.dumps(np.ascontiguousarray(signals, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    if len(signals) == 0:
        return []
    return [_MEASUREMENTS % tuple(row.split(",")) for row in body.decode()[2:-2].split("],[")]


def assessment_rows(
    a: RiskAssessment,
    trigger: str,
    site_id: str,
    last_event: datetime | None,
    as_of: datetime,
    run_id: str | None = None,
) -> tuple[HistoryRow, StateRow]:
    """(score_history row, turbine_state row) of one assessment.

    The calibration version (lineage, migration 0008) is the one ``models.fleet_scoring.FleetScorer``
    put in ``data_quality`` (None: no calibration involved).
    """
    dq = a.data_quality
    calibration = dq.get("calibration_version") if dq else None
    lineage = str(calibration) if calibration else None
    reasons, quality = _json(a.reasons), _json(dq)
    # keywords, no shared dict unpacked twice: a sweep builds 10,000 pairs (~45 -> ~27 ms)
    hist = HistoryRow(
        score=a.score,
        tier=a.tier,
        probability=a.probability,
        ttf_days=a.ttf_days,
        ttf_low_days=a.ttf_low_days,
        ttf_high_days=a.ttf_high_days,
        model_version=a.model_version,
        run_id=run_id,
        time=as_of,
        turbine_id=a.turbine_id,
        trigger=trigger,
        reasons=reasons,
        data_quality=quality,
        calibration_version=lineage,
    )
    state = StateRow(
        score=a.score,
        tier=a.tier,
        probability=a.probability,
        ttf_days=a.ttf_days,
        ttf_low_days=a.ttf_low_days,
        ttf_high_days=a.ttf_high_days,
        model_version=a.model_version,
        run_id=run_id,
        turbine_id=a.turbine_id,
        site_id=site_id,
        as_of=as_of,
        trigger=trigger,
        reasons=reasons,
        data_quality=quality,
        last_event_time=last_event,
        calibration_version=lineage,
    )
    return hist, state


class BatchProcessor:
    """Owns the in-memory turbine states of this worker and turns raw batches into rows to write."""

    def __init__(self, settings: ScorerSettings, scorer: BatchScorer | None = None) -> None:
        self.settings = settings
        self.scorer = scorer
        # Set by the runtime: routes each turbine to the model set its fitted sensors allow (register),
        # with the fleet's calibration. None (unit tests, benchmarks): every turbine gets ``scorer``.
        self.fleet: FleetScorer | None = None
        # Set by the runtime: samples scored feature rows for drift monitoring (scorer/drift.py).
        self.drift: DriftMonitor | None = None
        self.store = WindowStore()  # every window of this worker; TurbineState.window is a view on a row
        self.turbines: dict[str, TurbineState] = {}
        self.dirty: set[str] = set()
        # Touched turbines whose rescoring is deferred (coalescing), oldest first, with the wall time each
        # became pending: flushed once overdue, a bounded number per batch (scorer/coalescing.py).
        self.pending = PendingRescores()
        self._last_flush: float | None = None  # wall time of the last flush chunk (batch or timer)
        self._last_batch: float | None = None  # wall time of the last batch that touched turbines
        self.next_offset: dict[int, int] = {}  # partition -> first offset not yet applied
        self._pending_marks: dict[str, HistoryMark] = {}  # marks of turbines without a checkpoint
        # The envelope always fits the dead-letter topic: its max message size (the producer's maximum
        # request size is the same setting) minus the record's own overhead.
        self.dead_letter_max_bytes = settings.dead_letter_max_message_bytes - DEAD_LETTER_RECORD_OVERHEAD
        if self.dead_letter_max_bytes < MIN_DEAD_LETTER_BYTES:
            raise ValueError(
                f"COCKPIT_DEAD_LETTER_MAX_MESSAGE_BYTES={settings.dead_letter_max_message_bytes} too small: "
                f"a dead letter needs {MIN_DEAD_LETTER_BYTES + DEAD_LETTER_RECORD_OVERHEAD} bytes"
            )

    # ------------------------------------------------------------------ state management
    def state_for(self, turbine_id: str, site_id: str, partition: int) -> TurbineState:
        st = self.turbines.get(turbine_id)
        if st is None:
            st = TurbineState(turbine_id, site_id, partition, self.store.window(turbine_id))
            self.turbines[turbine_id] = st
        elif st.window.store is not self.store:  # put in place by hand (tests): its window moves in
            self._adopt(st)
        st.partition = partition
        return st

    def _adopt(self, st: TurbineState) -> None:
        """Move a state's window built elsewhere (its own 1-row store) into the worker's store."""
        self.store.load(st.turbine_id, st.window.to_bytes())
        st.window = self.store.window(st.turbine_id)

    def missing(self, turbine_ids: Iterable[str]) -> list[str]:
        """Turbine ids not in memory (their checkpoint, if any, must be installed before apply)."""
        return sorted(t for t in turbine_ids if t not in self.turbines)

    def install(self, states: Iterable[TurbineState], marks: dict[str, HistoryMark] | None = None) -> int:
        """Install restored states of turbines not in memory; raise each one's history mark to ``marks``.

        Why the marks: rows in ``score_history`` may be newer than the checkpoint (a batch written after
        the last checkpoint, then a crash); the replay must judge the history policy against the row
        that is really there, or it writes rows the policy forbids. A turbine with a mark but no
        checkpoint gets a fresh state carrying the mark.
        """
        marks = dict(marks or {})
        n = 0
        restored_pending: list[str] = []
        for st in states:
            if st.turbine_id in self.turbines:
                continue
            if st.window.store is not self.store:  # a state built elsewhere: its window moves in
                self._adopt(st)
            self.turbines[st.turbine_id] = st
            if st.pending:
                restored_pending.append(st.turbine_id)
            n += 1
        self.pending.add_overdue(restored_pending)  # since when is unknown: overdue at once
        for tid, mark in marks.items():
            known = self.turbines.get(tid)
            if known is None:
                continue  # no checkpoint: the mark is given to the state apply() creates
            if known.history is None or mark.ts > known.history.ts:
                known.history = mark
        self._pending_marks = {t: m for t, m in marks.items() if t not in self.turbines}
        return n

    def restore(
        self, stored: Iterable[Checkpointed] | StoredChunk, marks: dict[str, HistoryMark] | None = None
    ) -> int:
        """Install checkpointed turbines not in memory: window bytes straight into the store (no
        per-window object), bookkeeping from their aux (recent ids and 10-minute buckets decoded when
        the turbine is first touched: ``TurbineState.from_aux(lazy=True)``); then the history marks
        (see :meth:`install`).

        All windows go into the store in one ``WindowStore.load_many`` (one kernel call, on a helper
        thread while the aux of every turbine is decoded here; the first checkpoint of a turbine given
        twice counts). A bad window or aux raises ``ValueError`` and leaves nothing of this call in the
        store. A :class:`scorer.restore_rows.StoredChunk` (the streamed read's) is decoded from its
        packed states in place.
        """
        chunk = stored if isinstance(stored, StoredChunk) else None  # the streamed read's: states packed
        rows = [] if chunk is not None else list(stored)
        turbine_ids = chunk.turbine_ids if chunk is not None else [w.turbine_id for w in rows]
        turbines = self.turbines
        pick: dict[str, int] = {}  # the first checkpoint of each turbine not held
        for i, tid in enumerate(turbine_ids):
            if tid not in turbines and tid not in pick:
                pick[tid] = i
        ids = list(pick)
        at = list(pick.values())
        blobs: Sequence[bytes] | PackedStates
        if chunk is not None:  # decoded in place from its packed states
            parts = [chunk.partitions[i] for i in at]
            auxes = [chunk.aux[i] for i in at]
            blobs = chunk.states if len(at) == len(chunk) else chunk.states.take(at)
        else:
            parts = [rows[i].partition for i in at]
            auxes = [rows[i].aux for i in at]
            blobs = [rows[i].state for i in at]
        if not ids:
            return self.install([], marks)
        states: list[TurbineState] = []

        def bookkeeping(rows: np.ndarray) -> None:  # runs while the windows decode (another thread)
            states.extend(TurbineState.from_aux_many(ids, parts, self.store, rows.tolist(), auxes))

        try:
            self.store.load_many(ids, blobs, overlap=bookkeeping)
        except Exception:
            self.store.remove(ids)
            raise
        return self.install(states, marks)

    def forget(self, turbine_ids: Iterable[str]) -> None:
        """Forget these turbines as if never restored (a restore that failed after part of it ran)."""
        gone = [t for t in turbine_ids if self.turbines.pop(t, None) is not None]
        for tid in gone:
            self.dirty.discard(tid)
            self.pending.discard(tid)
        self.store.remove(gone)

    def drop_partitions(self, keep: set[int]) -> None:
        """Forget turbines and offsets of partitions no longer assigned (another worker owns them now)."""
        gone = [t for t, st in self.turbines.items() if st.partition not in keep]
        for tid in gone:
            del self.turbines[tid]
            self.dirty.discard(tid)
            self.pending.discard(tid)
        self.store.remove(gone)
        for p in [p for p in self.next_offset if p not in keep]:
            del self.next_offset[p]

    def tier_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(TIERS, 0)
        for st in self.turbines.values():
            if st.last_tier:
                counts[st.last_tier] = counts.get(st.last_tier, 0) + 1
        return counts

    # ------------------------------------------------------------------ dead letters
    def dead_letter(self, rec: RawRecord, reason: str, code: str, wall: datetime, out: BatchOutcome) -> None:
        """Count and wrap one refused record (the envelope always fits the dead-letter topic)."""
        topic = rec.topic or self.settings.telemetry_topic
        out.invalid[code] = out.invalid.get(code, 0) + 1
        envelope = dead_letter_bytes(
            rec.value,
            reason=reason,
            code=code,
            source_topic=topic,
            source_partition=rec.partition,
            source_offset=rec.offset,
            key=rec.key,
            received_at=wall,
            max_bytes=self.dead_letter_max_bytes,
        )
        key = rec.key if rec.key is not None and len(rec.key) <= DEAD_LETTER_MAX_KEY_BYTES else None
        out.dead_letters.append(
            DeadLetterRecord(envelope, code, reason[:2000], topic, rec.partition, rec.offset, key)
        )

    def _internal_error(self, rec: RawRecord, exc: BaseException, wall: datetime, out: BatchOutcome) -> None:
        reason = f"internal error while processing the record: {type(exc).__name__}: {exc}"[:2000]
        self.dead_letter(rec, reason, INTERNAL_ERROR, wall, out)

    # ------------------------------------------------------------------ the batch
    def process(self, records: Sequence[RawRecord], now: datetime | None = None) -> BatchOutcome:
        """Parse + apply without a store (tests, benchmarks): unknown turbines start empty."""
        return self.apply(self.parse(records, now))

    def parse(self, records: Sequence[RawRecord], now: datetime | None = None) -> ParsedBatch:
        """Offsets, validation and the key check of every record; nothing is applied to windows yet.

        The records not already applied are validated column-wise in one call
        (``common.contracts.decode_telemetry_batch``: the same events and refusals as
        ``parse_telemetry`` + ``check_record_key`` per record).
        """
        s = self.settings
        out = BatchOutcome(events=len(records))
        wall = now or datetime.now(UTC)
        next_offset = self.next_offset
        live = self._not_applied(records, out)
        for p, off in next_offset.items():
            out.next_offsets[p] = off
        limits: dict[str, Any] = {
            "now": wall,
            "max_future_skew": s.max_future_skew,
            "min_event_time": s.min_event_time,
        }
        try:
            decoded = decode_telemetry_batch(list(map(_VALUE, live)), list(map(_KEY, live)), **limits)
        except Exception:  # a decoder bug must not stop the stream: record by record, its victim alone
            parts: list[tuple[int, TelemetryBatch]] = []
            for pos, rec in enumerate(live):
                try:
                    parts.append((pos, decode_telemetry_batch([rec.value], [rec.key], **limits)))
                except Exception as exc:
                    parts.append((pos, TelemetryBatch.failed(exc)))
            decoded = TelemetryBatch.join(parts)
        for pos, err in decoded.errors:
            if isinstance(err, InvalidEvent):
                self.dead_letter(live[pos], err.reason, err.code, wall, out)
            else:  # a validator bug (or a key of a strange type) must not stop the stream
                self._internal_error(live[pos], err, wall, out)
        return ParsedBatch(out, wall, decoded, [live[p] for p in decoded.positions])

    def _not_applied(self, records: Sequence[RawRecord], out: BatchOutcome) -> Sequence[RawRecord]:
        """The records not applied before the last checkpoint (offsets below a partition's next one are
        skipped: replayed); the next offsets and the newest record timestamp move on.

        The usual batch (each partition's offsets rising from its next offset) is checked over arrays;
        any other one record by record: a record is skipped when its offset is below the one after the
        last record applied from its partition.
        """
        next_offset = self.next_offset
        if records:
            parts = np.fromiter(map(_PARTITION, records), dtype=np.int64, count=len(records))
            offs = np.fromiter(map(_OFFSET, records), dtype=np.int64, count=len(records))
            ends: dict[int, int] = {}
            for p in dict.fromkeys(parts.tolist()):  # in order of first record, as one by one
                o = offs[parts == p]
                floor = next_offset.get(p)
                if (floor is not None and o[0] < floor) or (len(o) > 1 and not (o[1:] > o[:-1]).all()):
                    break
                ends[p] = int(o[-1]) + 1
            else:
                next_offset.update(ends)
                stamps = [t for t in map(_TIMESTAMP, records) if t is not None]
                if stamps:
                    out.last_record_ts = stamps[-1]
                return records
        live: list[RawRecord] = []
        for rec in records:
            floor = next_offset.get(rec.partition)
            if floor is not None and rec.offset < floor:
                out.skipped_replayed += 1  # already applied before the last checkpoint
                continue
            next_offset[rec.partition] = rec.offset + 1
            if rec.timestamp is not None:
                out.last_record_ts = rec.timestamp
            live.append(rec)
        return live

    def apply(self, batch: ParsedBatch) -> BatchOutcome:
        """Apply parsed events to windows, then rescore the touched turbines that are due in ONE call.

        Per turbine, its events in arrival order: the dedup/ordering verdicts, recent ids, newest time
        and status (``TurbineState.admit``). The accepted events (arrival order) are ingested by the
        store in ONE vectorised call (the same end state as one update per event, in that order) and the
        10-minute aggregates are summed per turbine and bucket over the same arrays.
        """
        s = self.settings
        out = batch.out
        ev = batch.decoded
        n = len(ev)
        if n == 0:
            self._pending_marks = {}  # as after any batch: a mark waits for the batch after install
            return out
        wall_ts = batch.wall.timestamp()
        tol = s.out_of_order_tolerance_s
        recs = batch.records
        tids = ev.turbine_id
        # Each turbine's events in arrival order, turbines in order of first appearance.
        code_of = {t: k for k, t in enumerate(dict.fromkeys(tids))}
        codes = np.fromiter(map(code_of.__getitem__, tids), dtype=np.intp, count=n)
        order = np.argsort(codes, kind="stable").tolist()
        ends = np.cumsum(np.bincount(codes, minlength=len(code_of))).tolist()
        groups = {t: order[(ends[k - 1] if k else 0) : ends[k]] for t, k in code_of.items()}
        ids = ev.event_id
        ts_list: list[float] = ev.ts.tolist()
        status = ev.status_code
        pending_marks = self._pending_marks
        accepted: list[int] = []
        touched: list[tuple[int, TurbineState]] = []  # (first event not a duplicate, state)
        latest: list[tuple[int, int, str]] = []  # (first newest event, latest event, turbine)
        for tid, rows in groups.items():
            done = len(accepted)
            try:
                first = rows[0]
                st = self.state_for(tid, ev.site_id[first], recs[first].partition)
                mark = pending_marks.pop(tid, None) if pending_marks else None
                if mark is not None and (st.history is None or mark.ts > st.history.ts):
                    st.history = mark
                res = st.admit(rows, ids, ts_list, tol, accepted)
            except Exception as exc:  # this turbine's undecided records are dead letters, not the batch
                taken = set(accepted[done:])
                for i in rows:
                    if i not in taken:
                        self._internal_error(recs[i], exc, batch.wall, out)
                continue
            out.duplicates += res.duplicates
            out.late += res.late
            # the partition of the record that touched it (of its last record when all were duplicates)
            st.partition = recs[rows[-1] if res.first is None else res.first].partition
            if res.first is not None:
                touched.append((res.first, st))
            if res.newest is not None:
                st.newest_status = status_class(int(status[res.newest]))
            if res.latest is not None:
                assert res.latest_first is not None
                latest.append((res.latest_first, res.latest, tid))
        self._pending_marks = {}
        touched.sort(key=_FIRST)
        latest.sort(key=_FIRST)
        states = [st for _, st in touched]
        agg_rows: list[AggRow] = []
        if accepted:
            acc = np.sort(np.array(accepted, dtype=np.intp))
            m = len(acc)
            out.accepted += m
            ts_arr = ev.ts[acc]
            sig = ev.signals[acc]
            vals = sig[:, _TRACKED_COLUMNS]
            rank = np.zeros(len(code_of), dtype=np.int64)  # turbine code -> index in states (touched)
            rank[[code_of[st.turbine_id] for st in states]] = np.arange(len(states))
            owner = rank[codes[acc]]  # accepted => touched
            rows = np.array([st.window.row for st in states], dtype=np.intp)
            self.store.ingest(rows[owner], ts_arr, vals, status[acc], sig[:, _AUX_COLUMNS])
            agg_rows = add_to_buckets(states, owner, ts_arr, vals[:, AGG_COLUMNS])
            stamps = list(map(_TIMESTAMP, recs)) if m == n else [recs[i].timestamp for i in acc.tolist()]
            out.arrival_ts.extend(t for t in stamps if t is not None)
            out.event_time_lag_s.extend((wall_ts - ts_arr).tolist())
        if states:
            self._rows_and_scores(states, latest, ev, agg_rows, out, wall_ts)
        return out

    def _rows_and_scores(
        self,
        touched: list[TurbineState],
        latest: list[tuple[int, int, str]],
        ev: TelemetryBatch,
        agg_rows: list[AggRow],
        out: BatchOutcome,
        wall_ts: float,
    ) -> None:
        tol = self.settings.out_of_order_tolerance_s
        out.agg_rows.extend(agg_rows)
        last_ts = self.store.last_event_ts(np.array([st.window.row for st in touched], dtype=np.intp))
        for st, last in zip(touched, last_ts.tolist(), strict=True):
            tid = st.turbine_id
            self.dirty.add(tid)
            st.compact(tol)
            out.turbine_rows.append(
                TurbineSeenRow(tid, st.site_id, None if last == -math.inf else _utc(last))
            )
        book_for(self.store).shrink_buckets()  # after the prunes: a batch's peak of buckets freed
        if latest:
            picked = [i for _, i, _ in latest]
            codes = ev.status_code[picked].tolist()
            for (_, i, tid), doc, code in zip(latest, _measurements(ev.signals[picked]), codes, strict=True):
                out.latest_rows.append(LatestRow(tid, ev.event_time[i], doc, code))
        if self.scorer is None:
            return
        # Coalescing (scorer/coalescing.py): a touched turbine is rescored when due, else it is pending
        # until a later batch makes it due or it is overdue (pending rescore_flush_s of wall time): then
        # a chunk of at most rescore_flush_max_per_batch, oldest first, is flushed by a batch or the
        # timer, chunks spaced by coalescing.flush_gap unless late (spread, never one stall).
        s = self.settings
        interval = s.rescore_min_event_interval_s
        due: list[TurbineState] = []
        pending = self.pending
        for st, newest in zip(touched, last_ts.tolist(), strict=True):
            if newest == -math.inf:
                continue
            if rescore_due(st.rescore, newest, st.newest_status, interval):
                due.append(st)
            elif not st.pending:
                st.pending = True
                pending.add(st.turbine_id, wall_ts)
        self._last_batch = wall_ts
        if pending:
            extra = self._flush_chunk(wall_ts, {st.turbine_id for st in due}, rescoring=bool(due))
            due.extend(extra)
        self._rescore(due, out)
        out.deferred = sum(1 for st in touched if st.pending)

    def _overdue(
        self, wall_ts: float, limit: int, skip: set[str] | None = None, after_s: float | None = None
    ) -> list[TurbineState]:
        """Up to ``limit`` turbines pending at least ``after_s`` (default ``rescore_flush_s``), oldest
        first, not in ``skip`` (an id no longer in memory is dropped from the order: it never holds the
        head)."""
        flush_s = self.settings.rescore_flush_s if after_s is None else after_s
        skip = set(skip or ())
        out: list[TurbineState] = []
        while len(out) < limit:
            ids = self.pending.overdue(wall_ts, flush_s, limit - len(out), skip)
            if not ids:
                break
            stale = [t for t in ids if t not in self.turbines]
            out.extend(self.turbines[t] for t in ids if t in self.turbines)
            if not stale:
                break
            for t in stale:
                self.pending.discard(t)
            skip.update(ids)
        return out

    def _flush_chunk(
        self, wall_ts: float, skip: set[str], rescoring: bool, quiet: bool = False
    ) -> list[TurbineState]:
        """The overdue turbines to flush now (scorer/coalescing.py): late ones whenever there are some;
        else overdue ones when the chunk gap elapsed, the caller rescores anyway, or ``quiet``."""
        s = self.settings
        limit = s.rescore_flush_max_per_batch
        late = self._overdue(wall_ts, limit, skip, LATE_FLUSHES * s.rescore_flush_s)
        if late:
            chunk = late
        else:
            gap = flush_gap(s.rescore_flush_s, limit, len(self.pending))
            if not (rescoring or quiet or gap_elapsed(self._last_flush, wall_ts, gap)):
                return []
            chunk = self._overdue(wall_ts, limit, skip)
        if chunk:
            self._last_flush = wall_ts
        return chunk

    def flush(self, now: datetime | None = None) -> BatchOutcome | None:
        """Rescore one chunk of overdue pending turbines (runtime timer, nothing to ack; the timer
        calls it until it returns None): late ones, or overdue ones when the chunk gap elapsed or no
        batch ran for ``IDLE_FLUSHES * rescore_flush_s`` (no traffic: everything overdue is drained).

        None when no model is loaded or nothing is to be flushed now.
        """
        wall_ts = (now or datetime.now(UTC)).timestamp()
        if not self.pending or self.scorer is None:
            return None
        quiet = gap_elapsed(self._last_batch, wall_ts, IDLE_FLUSHES * self.settings.rescore_flush_s)
        due = self._flush_chunk(wall_ts, set(), rescoring=False, quiet=quiet)
        if not due:
            return None
        out = BatchOutcome()
        self._rescore(due, out)
        return out

    def _rescore(self, due: list[TurbineState], out: BatchOutcome) -> None:
        """Score ``due`` turbines, each as of its own newest event; rows; history policy; marks.

        As of its own newest event: deterministic on replay, and a turbine whose partition lags behind
        another one in the same batch is not called stale (staleness against the wall clock is the
        sweep's job). Features of all windows gathered from the store (chunks of MAX_BATCH), one
        predict per model per chunk, policy over arrays.
        """
        if not due or self.scorer is None:
            return
        s = self.settings
        scorer = self.scorer
        t0 = time.perf_counter()
        items = [(st.turbine_id, st.window) for st in due]
        assessments: list[RiskAssessment] = []
        if self.fleet is not None:
            # Each turbine by the model set its fitted sensors allow; now=None: as of its newest event.
            assessments = self.fleet.score(items, None)
        else:
            for start in range(0, len(items), MAX_BATCH):  # bounds the feature computation's memory
                windows = [w for _, w in items[start : start + MAX_BATCH]]
                x = window_features(windows, scorer.bundle.normal_model)
                as_ofs = [w.as_of for w in windows]
                dqs = window_data_quality(windows, as_ofs)
                ids = [tid for tid, _ in items[start : start + MAX_BATCH]]
                assessments.extend(scorer.score_features(ids, x, as_ofs, dqs))
        out.scoring_s += time.perf_counter() - t0
        out.turbines_scored += len(assessments)
        out.rescored += len(assessments)
        out.model_version = scorer.bundle.version
        for st, a in zip(due, assessments, strict=True):
            if st.late:
                a.data_quality["late_events_rejected"] = st.late
            as_of = st.window.as_of
            assert as_of is not None
            annotate_from_window(a, st.window)  # a just-repaired turbine says so (its window reaches back)
            hist, state = assessment_rows(a, "stream", st.site_id, as_of, as_of)
            out.state_rows.append(state)
            st.last_tier = a.tier
            out.tiers[st.turbine_id] = a.tier
            ts = as_of.timestamp()
            if should_write_history(
                st.history,
                ts,
                a.score,
                a.tier,
                min_interval_s=s.history_min_interval_s,
                max_interval_s=s.history_max_interval_s,
                score_delta=s.history_score_delta,
            ):
                out.history_rows.append(hist)
                st.history = HistoryMark(ts, a.score, a.tier)
            st.rescore = RescoreMark(ts, st.newest_status)
            st.pending = False
            self.pending.discard(st.turbine_id)  # always: a stale entry must not hold the head
            self.dirty.add(st.turbine_id)  # the marks are checkpointed with the window
        if self.drift is not None:  # once per turbine per drift_sample_hours of event time; never raises
            self.drift.observe(list(zip(due, assessments, strict=True)), scorer.bundle.normal_model)
