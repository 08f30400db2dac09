"""The column-wise batch path decides and writes exactly what the event-by-event path did.

The oracle below is the per-event algorithm the batch path replaced (``classify`` then
``TurbineState.accept`` per event, the prune as a rebuild of the id dict, one aggregate update per
event): random streams with duplicates, out-of-order, late and invalid records, split into random
batches, must give the same verdict counts, dead letters, rows (and their order), recent ids (and their
order), 10-minute aggregates and windows. Readings are multiples of 1/4 so that every sum is exact in
any order.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from common.contracts import SIGNALS, InvalidEvent, check_record_key, make_event_id, parse_telemetry
from common.settings import load_settings
from models.features import FeatureWindow
from scorer.coalescing import status_class
from scorer.processing import BatchProcessor, RawRecord
from scorer.settings import ScorerSettings
from scorer.state import AGG_BUCKET_S, AGG_SIGNALS, MAX_RECENT_IDS, TurbineState, Verdict, classify

pytestmark = pytest.mark.unit
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class OracleState:
    """One turbine as the event-by-event path kept it (prune = rebuild of the dict)."""

    def __init__(self, tid: str) -> None:
        self.tid = tid
        self.last_ts = -math.inf
        self.recent: dict[str, float] = {}
        self.agg: dict[int, list[float]] = {}
        self.dirty: set[int] = set()
        self.window = FeatureWindow(tid)
        self.newest_status = 0
        self.late = self.duplicates = 0
        self.compacted_at = -math.inf

    def prune(self, tol: float) -> None:
        horizon = self.last_ts - tol
        self.recent = {k: v for k, v in self.recent.items() if v > horizon}
        if len(self.recent) > MAX_RECENT_IDS:
            self.recent = dict(sorted(self.recent.items(), key=lambda kv: kv[1])[-MAX_RECENT_IDS:])
        oldest_open = int((horizon - AGG_BUCKET_S) // AGG_BUCKET_S) * AGG_BUCKET_S
        for b in [b for b in self.agg if b < oldest_open and b not in self.dirty]:
            del self.agg[b]

    def accept(self, eid: str, ts: float, tol: float, status: int) -> None:
        self.recent[eid] = ts
        self.dirty.add(int(ts // AGG_BUCKET_S) * AGG_BUCKET_S)
        if ts > self.last_ts:
            self.last_ts = ts
            self.newest_status = status_class(status)
            if len(self.recent) > 64:
                self.prune(tol)


def oracle_batch(
    states: dict[str, OracleState], records: list[RawRecord], wall: datetime, tol: float
) -> dict[str, Any]:
    """What one batch gave, event by event (no scorer: rows, counters, dead-letter codes)."""
    res: dict[str, Any] = {"accepted": 0, "duplicates": 0, "late": 0, "codes": [], "agg": [], "latest": []}
    touched: dict[str, OracleState] = {}
    latest: dict[str, tuple[float, Any]] = {}
    pending: list[tuple[OracleState, float, list[float | None]]] = []
    for rec in records:
        try:
            ev = parse_telemetry(rec.value, now=wall)
            check_record_key(ev, rec.key)
        except InvalidEvent as exc:
            res["codes"].append((rec.offset, exc.code))
            continue
        st = touched.get(ev.turbine_id) or states.setdefault(ev.turbine_id, OracleState(ev.turbine_id))
        ts = ev.event_time.timestamp()
        verdict = classify(st.last_ts, st.recent, ev.event_id, ts, tol)
        if verdict is Verdict.DUPLICATE:
            st.duplicates += 1
            res["duplicates"] += 1
            continue
        if verdict is Verdict.LATE:
            st.late += 1
            res["late"] += 1
            touched.setdefault(ev.turbine_id, st)
            continue
        st.accept(ev.event_id, ts, tol, ev.status_code)
        st.window.update(ev)
        pending.append((st, ts, [getattr(ev, s) for s in AGG_SIGNALS]))
        touched[ev.turbine_id] = st
        res["accepted"] += 1
        prev = latest.get(ev.turbine_id)
        if (prev is None or ts >= prev[0]) and ts >= st.last_ts:
            latest[ev.turbine_id] = (ts, ev)
    for st, ts, vals in pending:  # exact sums (quarters): the order of additions does not matter
        b = int(ts // AGG_BUCKET_S) * AGG_BUCKET_S
        acc = st.agg.setdefault(b, [0.0] * (1 + 2 * len(AGG_SIGNALS)))
        acc[0] += 1
        for i, v in enumerate(vals):
            if v is not None:
                acc[1 + i] += v
                acc[1 + len(AGG_SIGNALS) + i] += 1
    for tid, st in touched.items():
        for b in sorted(st.dirty):
            acc = st.agg.get(b)
            if acc is None:
                continue
            n = len(AGG_SIGNALS)
            means = [acc[1 + i] / acc[1 + n + i] if acc[1 + n + i] else None for i in range(n)]
            res["agg"].append((tid, b, int(acc[0]), means))
        st.dirty.clear()
        if st.last_ts - st.compacted_at >= AGG_BUCKET_S:
            st.compacted_at = st.last_ts
            st.prune(tol)
    res["touched"] = list(touched)
    for tid, (_, ev) in latest.items():
        res["latest"].append((tid, ev.event_time, [getattr(ev, s) for s in SIGNALS], ev.status_code))
    return res


def _value(tid: str, when: datetime, rng: random.Random, **over: Any) -> bytes:
    d: dict[str, Any] = {
        "schema_version": 1,
        "event_id": make_event_id(tid, when),
        "turbine_id": tid,
        "site_id": "SITE-Q",
        "event_time": when.isoformat(),
    }
    for name in SIGNALS:
        d[name] = None if rng.random() < 0.1 else rng.randint(0, 160) / 4
    d["status_code"] = rng.choice((0, 0, 0, 10, 50, 60))
    d.update(over)
    return orjson.dumps(d)


def _stream(rng: random.Random, turbines: int, n: int, step_s: float) -> list[tuple[bytes, bytes]]:
    """Readings in time order with duplicates, out-of-order and late ones, some invalid records."""
    out: list[tuple[bytes, bytes]] = []
    sent: list[tuple[bytes, bytes]] = []
    for k in range(n):
        tid = f"WT-{rng.randrange(turbines)}"
        when = T0 + timedelta(seconds=step_s * k)
        roll = rng.random()
        if roll < 0.08 and sent:  # a re-sent reading (same id)
            out.append(rng.choice(sent[-200:]))
            continue
        if roll < 0.16:  # out of order, often beyond the tolerance
            when -= timedelta(seconds=rng.choice((30, 300, 3000, 4000, 20000)))
        rec = (tid.encode(), _value(tid, when, rng))
        if roll > 0.98:
            rec = (tid.encode(), rec[1][:-3])  # cut in transit
        elif roll > 0.97:
            rec = (b"WT-other", rec[1])  # wrong key
        out.append(rec)
        sent.append(rec)
    return out


def _compare(
    proc: BatchProcessor, states: dict[str, OracleState], stream: list[Any], sizes: list[int]
) -> None:
    tol = proc.settings.out_of_order_tolerance_s
    wall = T0 + timedelta(days=30)
    offset = 0
    for size in sizes:
        part = stream[offset : offset + size]
        recs = [RawRecord(0, offset + i, 1.0, v, "telemetry", k) for i, (k, v) in enumerate(part)]
        offset += size
        out = proc.process(recs, wall)
        ref = oracle_batch(states, recs, wall, tol)
        assert (out.accepted, out.duplicates, out.late) == (ref["accepted"], ref["duplicates"], ref["late"])
        assert [(d.source_offset, d.code) for d in out.dead_letters] == ref["codes"]
        assert [r.turbine_id for r in out.turbine_rows] == ref["touched"]
        got_agg = [
            (r.turbine_id, int(r.bucket.timestamp()), r.samples, [getattr(r, s) for s in AGG_SIGNALS])
            for r in out.agg_rows
        ]
        assert got_agg == ref["agg"]
        got_latest = [
            (r.turbine_id, r.event_time, [orjson.loads(r.measurements)[s] for s in SIGNALS], r.status_code)
            for r in out.latest_rows
        ]
        assert got_latest == ref["latest"]
        for tid, o in states.items():
            st = proc.turbines[tid]
            assert list(st.recent.items()) == list(o.recent.items()), tid  # same ids, same order
            assert {b: list(a) for b, a in st.agg.items()} == o.agg, tid
            assert (st.last_ts, st.newest_status, st.late, st.duplicates) == (
                o.last_ts,
                o.newest_status,
                o.late,
                o.duplicates,
            )
            assert st.window.to_bytes() == o.window.to_bytes(), tid
        assert len(out.event_time_lag_s) == len(out.arrival_ts) == out.accepted


@pytest.mark.parametrize(
    ("seed", "turbines", "step_s", "tolerance"),
    [(1, 3, 1.0, 3600.0), (2, 5, 600.0, 3600.0), (3, 2, 7.0, 120.0), (4, 4, 60.0, 0.0), (5, 1, 1.0, 100.0)],
)
def test_batches_match_the_event_by_event_path(
    seed: int, turbines: int, step_s: float, tolerance: float
) -> None:
    rng = random.Random(seed)
    settings = load_settings(ScorerSettings).model_copy(update={"out_of_order_tolerance_s": tolerance})
    stream = _stream(rng, turbines, 1500, step_s)
    sizes = []
    left = len(stream)
    while left > 0:
        sizes.append(min(left, rng.choice((1, 7, 50, 200, 500))))
        left -= sizes[-1]
    _compare(BatchProcessor(settings), {}, stream, sizes)


def test_a_restored_turbine_continues_like_the_reference() -> None:
    """Side structures of the id dict are rebuilt from a checkpoint (order and out-of-order ids kept)."""
    rng = random.Random(9)
    settings = load_settings(ScorerSettings)
    stream = _stream(rng, 2, 800, 5.0)
    proc = BatchProcessor(settings)
    states: dict[str, OracleState] = {}
    _compare(proc, states, stream[:400], [400])
    proc2 = BatchProcessor(settings)
    for tid, st in proc.turbines.items():
        proc2.install([TurbineState.restore(tid, 0, st.window.to_bytes(), st.aux_bytes())])
    _compare(proc2, states, stream[400:], [150, 250])


def test_fast_prune_keeps_the_rebuilt_dict() -> None:
    """accept() with a 1-Hz turbine's thousands of ids, out-of-order ones among them."""
    rng = random.Random(5)
    st = TurbineState("WT-1", "S", 0, FeatureWindow("WT-1"))
    ref = OracleState("WT-1")
    t = 0.0
    for k in range(6000):
        t += 1.0
        ts = t - rng.choice((0, 0, 0, 0, 5, 50)) if k % 7 else t
        if ts <= st.last_ts - 300 or f"id{ts}" in st.recent:
            continue
        st.accept(f"id{ts}", ts, 300, 0)
        ref.accept(f"id{ts}", ts, 300, 0)
        if k % 500 == 0:
            st.compact(300)
            ref.dirty.clear()
            ref.prune(300)
        assert list(st.recent.items()) == list(ref.recent.items())


def test_replayed_offsets_are_skipped_as_record_by_record() -> None:
    """Offsets over arrays (the usual batch) or one by one: the same records, next offsets and newest
    record timestamp as the per-record rule (skip below the offset after the last record applied)."""
    rng = random.Random(11)
    settings = load_settings(ScorerSettings)
    for _ in range(300):
        proc = BatchProcessor(settings)
        floors = {p: rng.randrange(0, 20) for p in range(3) if rng.random() < 0.5}
        proc.next_offset.update(floors)
        recs = []
        cursor = {p: rng.randrange(0, 25) for p in range(3)}
        for i in range(rng.randrange(0, 30)):
            p = rng.randrange(3)
            cursor[p] += rng.choice((1, 1, 1, 2, 0, -3))
            stamp = None if rng.random() < 0.2 else float(i)
            recs.append(RawRecord(p, cursor[p], stamp, b"{}", "t", b"k"))
        expected_next = dict(floors)
        kept, last = [], None
        for r in recs:
            floor = expected_next.get(r.partition)
            if floor is not None and r.offset < floor:
                continue
            expected_next[r.partition] = r.offset + 1
            last = r.timestamp if r.timestamp is not None else last
            kept.append(r)
        out = proc.parse(recs, T0 + timedelta(days=30))
        assert proc.next_offset == expected_next and out.out.next_offsets == expected_next
        assert out.out.skipped_replayed == len(recs) - len(kept)
        assert out.out.last_record_ts == last
        assert [(d.source_partition, d.source_offset) for d in out.out.dead_letters] == [
            (r.partition, r.offset) for r in kept
        ]
