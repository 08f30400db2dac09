"""Rescore coalescing: the pure decisions (scorer/coalescing.py) and their use by the batch processor."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from common.contracts import (
    SIGNALS,
    STATUS_ALARM_TEMPERATURE,
    STATUS_ALARM_VIBRATION,
    STATUS_CURTAILED,
    STATUS_FAULT,
    STATUS_MAINTENANCE,
    STATUS_OK,
    make_event_id,
)
from common.settings import load_settings
from scorer.coalescing import (
    ALARM,
    BIN_SECONDS,
    FAULT,
    LATE_FLUSHES,
    NORMAL,
    PendingRescores,
    RescoreMark,
    flush_gap,
    gap_elapsed,
    rescore_due,
    status_class,
)
from scorer.processing import BatchOutcome, BatchProcessor, RawRecord
from scorer.settings import ScorerSettings
from scorer.state import TurbineState

pytestmark = pytest.mark.unit

H = 3600.0 * 500_000  # an hour boundary (epoch seconds)


def test_bin_width_is_the_windows() -> None:
    from models.features import BIN_SECONDS as WINDOW_BIN

    assert BIN_SECONDS == WINDOW_BIN


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (STATUS_OK, NORMAL),
        (STATUS_CURTAILED, NORMAL),
        (STATUS_MAINTENANCE, NORMAL),
        (None, NORMAL),
        (999, NORMAL),
        (STATUS_ALARM_TEMPERATURE, ALARM),
        (STATUS_ALARM_VIBRATION, ALARM),
        (STATUS_FAULT, FAULT),
    ],
)
def test_status_class(code: int | None, cls: int) -> None:
    assert status_class(code) == cls


def test_never_scored_is_due() -> None:
    assert rescore_due(None, H + 1.0, NORMAL, 60.0)


@pytest.mark.parametrize(
    ("mark_ts", "newest", "due"),
    [
        (H + 10.0, H + 10.0, False),  # nothing newer (out-of-order events only)
        (H + 10.0, H + 11.0, False),  # 1-Hz data: one second later
        (H + 10.0, H + 69.9, False),
        (H + 10.0, H + 70.0, True),  # the interval reached
        (H + 10.0, H + 610.0, True),  # 10-minute SCADA data: every reading
        (H + 3599.0, H + 3600.0, True),  # a new hour bin, one second later
        (H - 1.0, H + 0.5, True),
    ],
)
def test_event_time_interval_and_hour_bin(mark_ts: float, newest: float, due: bool) -> None:
    assert rescore_due(RescoreMark(mark_ts, NORMAL), newest, NORMAL, 60.0) is due


@pytest.mark.parametrize(
    ("before", "after"), [(NORMAL, ALARM), (ALARM, NORMAL), (ALARM, FAULT), (FAULT, NORMAL)]
)
def test_status_class_change_is_due_at_once(before: int, after: int) -> None:
    assert rescore_due(RescoreMark(H + 10.0, before), H + 11.0, after, 60.0)


def test_zero_interval_rescores_every_touch_with_a_newer_event() -> None:
    assert rescore_due(RescoreMark(H + 10.0, NORMAL), H + 10.001, NORMAL, 0.0)


def test_a_1hz_burst_costs_about_one_rescoring_a_minute() -> None:
    """3,600 one-second events in batches of 10: one rescoring per minute of event time (+ first, + hour)."""
    mark: RescoreMark | None = None
    scored = 0
    for batch in range(360):
        newest = H + 10.0 * batch + 9.0
        if rescore_due(mark, newest, NORMAL, 60.0):
            mark = RescoreMark(newest, NORMAL)
            scored += 1
    assert 55 <= scored <= 62


def test_pending_turbines_are_overdue_oldest_first_each_after_its_own_wait() -> None:
    p = PendingRescores()
    p.add("B", 100.0)
    p.add("A", 103.0)
    p.add("C", 105.0)
    p.add("B", 104.0)  # already pending: keeps its first time and place
    assert list(p) == ["B", "A", "C"] and p.since("B") == 100.0 and len(p) == 3
    assert p.overdue(109.9, 10.0, 10) == []
    assert p.overdue(110.0, 10.0, 10) == ["B"]
    assert p.overdue(115.0, 10.0, 10) == ["B", "A", "C"]
    assert p.overdue(115.0, 10.0, 2) == ["B", "A"]  # bounded, oldest first
    assert p.overdue(115.0, 10.0, 2, skip={"A"}) == ["B", "C"]  # skipped ones are not counted
    assert p.overdue(115.0, 10.0, 0) == []
    p.discard("B")
    p.discard("B")
    assert p.overdue(113.0, 10.0, 10) == ["A"] and "B" not in p and p.since("B") is None
    p.add_overdue(["R", "A"])  # restored pending, time unknown: at the head, overdue at once
    assert list(p) == ["R", "A", "C"] and p.overdue(110.0, 10.0, 10) == ["R"]
    p.add("D", 200.0)
    assert p.overdue(50.0, 10.0, 10) == [
        "R",
        "A",
        "C",
        "D",
    ]  # the wall clock went back: flush rather than lag
    p.clear()
    assert not p and p.overdue(1e12, 10.0, 10) == []


# ------------------------------------------------------------------------------------ in the processor
@pytest.fixture(scope="module")
def tiny_scorer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from models.registry import load_version, save_version
    from models.scoring import BatchScorer
    from tests.unit.models.conftest import tiny_models

    reg = tmp_path_factory.mktemp("registry")
    save_version(reg, tiny_models(), {"metrics": {}}, version="v1")
    return BatchScorer(load_version(reg, "v1"))


def _reading(tid: str, t: datetime, status: int = STATUS_OK) -> bytes:
    d: dict[str, object] = dict.fromkeys(SIGNALS, None)
    d.update(
        schema_version=1,
        event_id=make_event_id(tid, t),
        turbine_id=tid,
        site_id="SITE-C",
        event_time=t.isoformat(),
        power_kw=1000.0,
        ambient_temp_c=10.0,
        wind_speed_ms=8.0,
        gearbox_bearing_temp_c=50.0,
        status_code=status,
    )
    return orjson.dumps(d)


class Feed:
    """Feeds readings to a processor as Kafka records with increasing offsets and a wall clock."""

    def __init__(self, proc: BatchProcessor) -> None:
        self.proc = proc
        self.offset = 0

    def __call__(self, values: list[bytes], wall: datetime) -> BatchOutcome:
        recs = [RawRecord(0, self.offset + i, 1.0, v, "telemetry", b"WT-C") for i, v in enumerate(values)]
        self.offset += len(values)
        return self.proc.process(recs, now=wall)


def _processor(scorer: Any, **settings: Any) -> BatchProcessor:
    return BatchProcessor(load_settings(ScorerSettings, **settings), scorer)


T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


def test_a_1hz_burst_is_rescored_once_a_minute_and_flushed_to_its_last_event(tiny_scorer: Any) -> None:
    proc = _processor(tiny_scorer)
    feed = Feed(proc)
    wall = T0 + timedelta(hours=1)
    rescored = deferred = 0
    for b in range(30):  # 300 one-second readings in batches of 10, 0.1 s of wall time apart
        t = [T0 + timedelta(seconds=10 * b + i) for i in range(10)]
        out = feed([_reading("WT-C", x) for x in t], wall + timedelta(seconds=0.1 * b))
        rescored += out.rescored
        deferred += out.deferred
        assert out.accepted == 10 and len(out.latest_rows) == 1  # rows are not coalesced
    # The first batch, then one per minute of event time: 5 rescorings instead of 30.
    assert rescored == 5 and deferred == 25
    last = T0 + timedelta(seconds=299)
    st = proc.turbines["WT-C"]
    assert st.pending and list(proc.pending) == ["WT-C"] and st.rescore is not None
    assert st.rescore.ts < last.timestamp()
    assert proc.flush(wall + timedelta(seconds=12.4)) is None  # less than rescore_flush_s waited
    flushed = proc.flush(wall + timedelta(seconds=12.5))  # 10 s after its deferral (batch 25)
    assert flushed is not None and flushed.rescored == 1 and flushed.events == 0
    assert [r.as_of for r in flushed.state_rows] == [last]
    assert not proc.pending and not st.pending and st.rescore.ts == last.timestamp()
    assert proc.flush(wall + timedelta(seconds=60)) is None  # nothing pending


def test_scada_data_is_rescored_at_every_reading_and_an_alarm_at_once(tiny_scorer: Any) -> None:
    proc = _processor(tiny_scorer)
    feed = Feed(proc)
    wall = T0 + timedelta(days=1)
    for i in range(5):
        out = feed([_reading("WT-C", T0 + timedelta(minutes=10 * i))], wall)
        assert out.rescored == 1 and out.deferred == 0
    t = T0 + timedelta(minutes=40)
    assert feed([_reading("WT-C", t + timedelta(seconds=1))], wall).rescored == 0
    alarm = feed([_reading("WT-C", t + timedelta(seconds=2), STATUS_ALARM_TEMPERATURE)], wall)
    assert alarm.rescored == 1 and alarm.state_rows[0].as_of == t + timedelta(seconds=2)
    assert not proc.pending  # the alarm's rescoring took the pending reading with it


def test_a_batch_flushes_pending_turbines_once_the_flush_is_due(tiny_scorer: Any) -> None:
    proc = _processor(tiny_scorer, rescore_flush_s=5)
    feed = Feed(proc)
    wall = T0 + timedelta(days=1)
    feed([_reading("WT-C", T0)], wall)
    assert feed([_reading("WT-C", T0 + timedelta(seconds=1))], wall).deferred == 1
    assert feed([_reading("WT-C", T0 + timedelta(seconds=2))], wall + timedelta(seconds=4)).rescored == 0
    out = feed([_reading("WT-C", T0 + timedelta(seconds=3))], wall + timedelta(seconds=5))
    assert out.rescored == 1 and out.deferred == 0 and not proc.pending
    assert out.state_rows[0].as_of == T0 + timedelta(seconds=3)


def test_flush_chunks_are_spaced_to_flush_every_pending_turbine_once_per_interval() -> None:
    assert flush_gap(10.0, 100, 1000) == 1.0  # 10 chunks of 100 over 10 s
    assert flush_gap(10.0, 100, 50) == 10.0  # one chunk takes them all: once per interval
    assert flush_gap(10.0, 100, 10_000) == 0.1
    assert gap_elapsed(None, 5.0, 1.0) and gap_elapsed(4.0, 5.0, 1.0) and not gap_elapsed(4.5, 5.0, 1.0)
    assert gap_elapsed(6.0, 5.0, 1.0)  # the wall clock went back: flush rather than lag


def test_zero_interval_turns_coalescing_off(tiny_scorer: Any) -> None:
    proc = _processor(tiny_scorer, rescore_min_event_interval_s=0)
    feed = Feed(proc)
    for i in range(5):
        assert feed([_reading("WT-C", T0 + timedelta(seconds=i))], T0 + timedelta(days=1)).rescored == 1


def test_pending_rescoring_survives_a_checkpoint(tiny_scorer: Any) -> None:
    proc = _processor(tiny_scorer)
    feed = Feed(proc)
    wall = T0 + timedelta(days=1)
    feed([_reading("WT-C", T0)], wall)
    feed([_reading("WT-C", T0 + timedelta(seconds=1))], wall)
    st = proc.turbines["WT-C"]
    assert st.pending
    restored = TurbineState.restore("WT-C", 0, st.window.to_bytes(), st.aux_bytes())
    assert restored.pending and restored.rescore == st.rescore
    proc2 = _processor(tiny_scorer)
    proc2.install([restored])
    assert list(proc2.pending) == ["WT-C"]
    out = proc2.flush(wall)
    assert out is not None and [r.as_of for r in out.state_rows] == [T0 + timedelta(seconds=1)]


# ------------------------------------------------------------------------ a spread flush, no starvation
def _fleet_feed(proc: BatchProcessor) -> Any:
    offset = 0

    def feed(readings: list[tuple[str, datetime]], wall: datetime) -> BatchOutcome:
        nonlocal offset
        recs = [
            RawRecord(0, offset + i, 1.0, _reading(tid, t), "telemetry", tid.encode())
            for i, (tid, t) in enumerate(readings)
        ]
        offset += len(recs)
        return proc.process(recs, now=wall)

    return feed


@pytest.mark.parametrize("touched_every", [1, 3])
def test_under_continuous_traffic_every_pending_turbine_is_rescored_within_the_bound(
    tiny_scorer: Any, touched_every: int
) -> None:
    """20 turbines, a batch every P = 0.1 s for 25 s, each turbine in every batch (touched_every=1)
    or every third one; coalescing never makes them due by event time (1 h interval, one hour bin), so
    only the flush rescores them: at most 1 overdue turbine a batch (capacity 10/s for a fleet that
    wants 20/s at flush_s = 1 s: they fall late). Each pending turbine is rescored, as of its newest
    event, within LATE_FLUSHES * flush_s + ceil(n / max_per_batch) * P of the wall time it became
    pending (scorer/coalescing.py), and no batch flushes more than max_per_batch."""
    n, flush_s, limit, period = 20, 1.0, 1, 0.1
    proc = _processor(
        tiny_scorer,
        rescore_min_event_interval_s=3600,
        rescore_flush_s=flush_s,
        rescore_flush_max_per_batch=limit,
    )
    feed = _fleet_feed(proc)
    ids = [f"WT-{i:02d}" for i in range(n)]
    wall0 = T0 + timedelta(days=1)
    newest: dict[str, datetime] = {}
    since: dict[str, float] = {}  # turbine -> wall time it became pending (this episode)
    waits: dict[str, list[float]] = {t: [] for t in ids}
    bound = LATE_FLUSHES * flush_s + math.ceil(n / limit) * period
    for b in range(250):
        wall = wall0 + timedelta(seconds=period * b)
        t = T0 + timedelta(seconds=period * b)  # event time = send time, all inside one hour bin
        readings = [(tid, t) for k, tid in enumerate(ids) if (b + k) % touched_every == 0]
        newest.update(readings)
        out = feed(readings, wall)
        scored = [r.turbine_id for r in out.state_rows]
        assert len(scored) == len(set(scored)) and (b < touched_every or len(scored) <= limit)
        for r in out.state_rows:  # as of the turbine's newest event, whenever the flush happens
            assert r.as_of == newest[r.turbine_id]
            if r.turbine_id in since:
                waits[r.turbine_id].append(wall.timestamp() - since.pop(r.turbine_id))
        for tid in proc.pending:
            if tid not in since:
                since[tid] = proc.pending.since(tid)  # type: ignore[assignment]
    longest = max(w for ws in waits.values() for w in ws)
    assert flush_s <= longest <= bound + 1e-6
    assert all(len(ws) >= 8 for ws in waits.values())  # every turbine, again and again: none starves
    # the still-pending ones have not waited longer than the bound either
    assert all(wall.timestamp() - s <= bound + 1e-6 for s in since.values())


def test_a_fleet_wide_flush_is_spread_over_the_interval_in_spaced_chunks(tiny_scorer: Any) -> None:
    """All 30 turbines become pending in the same batch: the flush takes 10 at a time, chunks
    flush_gap(2 s, 10, 30) = 0.67 s apart (a batch every 0.1 s: 6-7 batches between two chunks)
    instead of 30 in one batch or 10 in each of 3 consecutive batches; and it stays spread, since a
    rescored turbine is pending again from its next event."""
    n, limit = 30, 10
    proc = _processor(
        tiny_scorer, rescore_min_event_interval_s=3600, rescore_flush_s=2.0, rescore_flush_max_per_batch=limit
    )
    feed = _fleet_feed(proc)
    ids = [f"WT-{i:02d}" for i in range(n)]
    wall0 = T0 + timedelta(days=1)
    per_batch: list[int] = []
    for b in range(100):  # 0.1 s apart, 10 s
        t = T0 + timedelta(seconds=0.1 * b)
        per_batch.append(feed([(tid, t) for tid in ids], wall0 + timedelta(seconds=0.1 * b)).rescored)
    assert per_batch[0] == n  # first scores: due at once, never bounded
    flushing = [k for k, c in enumerate(per_batch) if c and k]
    assert flushing[:3] == [21, 28, 35]  # pending from batch 1, overdue 2 s later, then every 0.67 s
    assert all(per_batch[k] == limit for k in flushing) and sum(per_batch[1:]) >= 3 * n
    assert all(b - a >= 6 for a, b in itertools.pairwise(flushing))


def test_the_timer_flush_drains_what_is_overdue_in_bounded_chunks(tiny_scorer: Any) -> None:
    proc = _processor(
        tiny_scorer, rescore_min_event_interval_s=3600, rescore_flush_s=5.0, rescore_flush_max_per_batch=4
    )
    feed = _fleet_feed(proc)
    wall = T0 + timedelta(days=1)
    old = [f"WT-{i:02d}" for i in range(10)]
    young = ["WT-Y1", "WT-Y2"]
    feed([(tid, T0) for tid in old + young], wall)  # first scores
    feed([(tid, T0 + timedelta(seconds=1)) for tid in old], wall)  # pending from wall
    feed([(tid, T0 + timedelta(seconds=2)) for tid in young], wall + timedelta(seconds=3))
    assert proc.flush(wall + timedelta(seconds=4.9)) is None  # nothing overdue yet
    now = wall + timedelta(seconds=6)
    chunks = []
    while (out := proc.flush(now)) is not None:
        chunks.append([r.turbine_id for r in out.state_rows])
        assert all(r.as_of == T0 + timedelta(seconds=1) for r in out.state_rows)
    assert chunks == [old[:4], old[4:8], old[8:]]  # oldest first, 4 at a time
    assert list(proc.pending) == young  # not overdue as of the timer's start
    assert proc.flush(now) is None
    out = proc.flush(wall + timedelta(seconds=8))
    assert out is not None and [r.turbine_id for r in out.state_rows] == young and not proc.pending


def test_under_traffic_the_timer_flushes_one_spaced_chunk_not_the_whole_backlog(tiny_scorer: Any) -> None:
    proc = _processor(
        tiny_scorer, rescore_min_event_interval_s=3600, rescore_flush_s=5.0, rescore_flush_max_per_batch=4
    )
    feed = _fleet_feed(proc)
    wall = T0 + timedelta(days=1)
    ids = [f"WT-{i:02d}" for i in range(12)]
    feed([(tid, T0) for tid in ids], wall)  # first scores
    feed([(tid, T0 + timedelta(seconds=1)) for tid in ids], wall)  # all pending from wall
    feed([("WT-00", T0 + timedelta(seconds=2))], wall + timedelta(seconds=4.9))  # traffic goes on
    now = wall + timedelta(seconds=5.5)  # all overdue, none late, a batch 0.6 s ago
    first = proc.flush(now)
    assert first is not None and [r.turbine_id for r in first.state_rows] == ids[:4]
    assert proc.flush(now) is None  # the next chunk waits flush_gap(5, 4, 8) = 2.5 s
    feed([("WT-00", T0 + timedelta(seconds=3))], now + timedelta(seconds=2.1))  # too soon for a chunk
    later = proc.flush(now + timedelta(seconds=2.5))  # flush_gap(5, 4, 9) = 2.2 s after the first
    assert later is not None and [r.turbine_id for r in later.state_rows] == ids[4:8]
    assert proc.flush(now + timedelta(seconds=2.5)) is None


def test_a_forgotten_turbine_never_holds_the_head_of_the_pending_order(tiny_scorer: Any) -> None:
    proc = _processor(tiny_scorer, rescore_min_event_interval_s=3600, rescore_flush_s=1.0)
    feed = _fleet_feed(proc)
    wall = T0 + timedelta(days=1)
    feed([("WT-A", T0), ("WT-B", T0)], wall)
    feed([("WT-A", T0 + timedelta(seconds=1)), ("WT-B", T0 + timedelta(seconds=1))], wall)
    del proc.turbines["WT-A"]  # gone without leaving the order (must not happen; must not starve B)
    out = proc.flush(wall + timedelta(seconds=2))
    assert out is not None and [r.turbine_id for r in out.state_rows] == ["WT-B"] and not proc.pending


def test_a_trickle_of_overdue_turbines_is_gathered_into_spaced_scoring_calls(tiny_scorer: Any) -> None:
    """Five turbines first scored together, then each streaming from its own second (A at 1 s, B at
    2 s...), a batch every 0.5 s; flush_s = 2 s, so chunks are flush_gap(2, 100, <=5) = 2 s apart:
    turbines overdue one at a time are flushed together, not one scoring call each."""
    proc = _processor(tiny_scorer, rescore_min_event_interval_s=3600, rescore_flush_s=2.0)
    feed = _fleet_feed(proc)
    ids = ["A", "B", "C", "D", "E"]
    wall0 = T0 + timedelta(days=1)
    flushes: list[tuple[float, list[str]]] = []
    for j in range(17):  # 0 .. 8 s
        at = 0.5 * j
        t = T0 + timedelta(seconds=at)
        readings = [(tid, t) for k, tid in enumerate(ids) if j == 0 or at >= 1 + k]
        out = feed(readings, wall0 + timedelta(seconds=at))
        if j and out.state_rows:
            flushes.append((at, [r.turbine_id for r in out.state_rows]))
            assert all(r.as_of == t for r in out.state_rows)  # as of each one's newest event
    # pending since A 1, B 2, C 3, D 4, E 5 (and again from the batch after each flush)
    assert flushes == [(3.0, ["A"]), (5.0, ["B", "C"]), (7.0, ["A", "D", "E"])]
