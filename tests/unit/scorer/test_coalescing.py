"""Rescore coalescing: the pure decisions (scorer/coalescing.py) and their use by the batch processor."""

from __future__ import annotations

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
    NORMAL,
    RescoreMark,
    flush_due,
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


def test_flush_due() -> None:
    assert flush_due(None, 100.0, 10.0)
    assert not flush_due(100.0, 109.9, 10.0)
    assert flush_due(100.0, 110.0, 10.0)
    assert flush_due(100.0, 50.0, 10.0)  # the wall clock went back: flush rather than lag


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
    assert st.pending and proc.pending == {"WT-C"} and st.rescore is not None
    assert st.rescore.ts < last.timestamp()
    assert proc.flush(wall + timedelta(seconds=12.4)) is None  # less than rescore_flush_s waited
    out = proc.flush(wall + timedelta(seconds=12.5))  # 10 s after the oldest deferral (batch 25)
    assert out is not None and out.rescored == 1 and out.events == 0
    assert [r.as_of for r in out.state_rows] == [last]
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
    assert proc2.pending == {"WT-C"}
    out = proc2.flush(wall)
    assert out is not None and [r.as_of for r in out.state_rows] == [T0 + timedelta(seconds=1)]
