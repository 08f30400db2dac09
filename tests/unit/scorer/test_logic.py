"""Pure parts of the scorer: dedup/ordering, history policy, sweep scheduling, DLQ envelope, batches."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from common.contracts import SIGNALS, make_event_id
from common.settings import SettingsError, load_settings
from scorer.processing import BatchProcessor, RawRecord
from scorer.schedule import (
    catch_up_due,
    catch_up_run_id,
    cron_expression,
    previous_slot,
    schedule_run_id,
)
from scorer.settings import ScorerSettings
from scorer.state import HistoryMark, TurbineState, Verdict, classify, should_write_history

pytestmark = pytest.mark.unit

PARIS = ZoneInfo("Europe/Paris")


# ------------------------------------------------------------------------------------ classification
def test_classify_new_duplicate_out_of_order_late() -> None:
    recent = {"a": 1000.0}
    assert classify(-math.inf, {}, "x", 5.0, 3600) is Verdict.NEW
    assert classify(1000.0, recent, "b", 1600.0, 3600) is Verdict.NEW
    assert classify(1000.0, recent, "a", 1000.0, 3600) is Verdict.DUPLICATE
    assert classify(1000.0, recent, "b", 900.0, 3600) is Verdict.OUT_OF_ORDER
    assert classify(10_000.0, recent, "b", 10_000.0 - 3600, 3600) is Verdict.LATE
    assert classify(10_000.0, recent, "b", 10_000.0 - 3599, 3600) is Verdict.OUT_OF_ORDER


def test_recent_ids_pruned_beyond_tolerance() -> None:
    from models.features import FeatureWindow

    st = TurbineState("WT-1", "S", 0, FeatureWindow("WT-1"))
    for i in range(200):
        st.accept(f"id{i}", 600.0 * i, {}, 3600)
    assert len(st.recent) <= 64 + 1
    assert all(ts > st.last_ts - 3600 - 600 * 64 for ts in st.recent.values())
    assert "id199" in st.recent


# ------------------------------------------------------------------------------------ history policy
@pytest.mark.parametrize(
    ("prev", "as_of", "score", "tier", "expected"),
    [
        (None, 100.0, 10.0, "low", True),
        (HistoryMark(100.0, 10.0, "low"), 100.0, 90.0, "critical", False),  # same as-of: nothing new
        (HistoryMark(100.0, 10.0, "low"), 160.0, 30.0, "moderate", True),  # tier change: always
        (HistoryMark(100.0, 10.0, "low"), 160.0, 18.0, "low", False),  # moved, but too soon
        (HistoryMark(100.0, 10.0, "low"), 800.0, 18.0, "low", True),  # moved and min interval passed
        (HistoryMark(100.0, 10.0, "low"), 800.0, 12.0, "low", False),  # small move
        (HistoryMark(100.0, 10.0, "low"), 3700.0, 10.0, "low", True),  # max interval: keep-alive row
    ],
)
def test_history_policy(
    prev: HistoryMark | None, as_of: float, score: float, tier: str, expected: bool
) -> None:
    got = should_write_history(
        prev, as_of, score, tier, min_interval_s=600, max_interval_s=3600, score_delta=5
    )
    assert got is expected


# ------------------------------------------------------------------------------------ scheduling
def test_cron_and_previous_slot_in_paris_across_dst() -> None:
    assert cron_expression(2, 0) == "0 2 * * *"
    # Winter (UTC+1): 02:00 Paris = 01:00 UTC.
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert previous_slot(now, 2, 0, PARIS) == datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
    # Before today's slot: yesterday's.
    early = datetime(2026, 1, 15, 0, 30, tzinfo=UTC)
    assert previous_slot(early, 2, 0, PARIS) == datetime(2026, 1, 14, 1, 0, tzinfo=UTC)
    # Summer (UTC+2): 02:00 Paris = 00:00 UTC.
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert previous_slot(summer, 2, 0, PARIS) == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)


def test_catch_up_decision() -> None:
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    day = timedelta(hours=24)
    assert catch_up_due(now - timedelta(hours=30), now, day, fleet_size=10)
    assert not catch_up_due(now - timedelta(hours=7), now, day, fleet_size=10)
    assert catch_up_due(None, now, day, fleet_size=10)  # never swept: the first sweep is owed now
    assert not catch_up_due(None, now, day, fleet_size=0)  # ... once turbines are known
    assert not catch_up_due(now - timedelta(days=3), now, day, fleet_size=0)


def test_run_ids_are_deterministic() -> None:
    slot = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
    assert schedule_run_id(slot) == schedule_run_id(slot.astimezone(PARIS))
    assert schedule_run_id(slot) != schedule_run_id(slot + timedelta(days=1))
    assert catch_up_run_id(None) == catch_up_run_id(None)
    assert catch_up_run_id(slot) != catch_up_run_id(None)
    uuid.UUID(schedule_run_id(slot))


# ------------------------------------------------------------------------------------ settings
def test_settings_validation_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="COCKPIT_SWEEP_TIME"):
        load_settings(ScorerSettings, sweep_time="25:00")
    with pytest.raises(SettingsError, match="COCKPIT_SWEEP_TIMEZONE"):
        load_settings(ScorerSettings, sweep_timezone="Mars/Olympus")
    s = load_settings(ScorerSettings)
    assert (s.sweep_time, s.sweep_timezone, s.sweep_hour_minute) == ("02:00", "Europe/Paris", (2, 0))


# ------------------------------------------------------------------------------------ batches
def _event(tid: str, t: datetime, value: float = 50.0, **extra: object) -> bytes:
    d: dict[str, object] = {
        "schema_version": 1,
        "event_id": make_event_id(tid, t),
        "turbine_id": tid,
        "site_id": "SITE-A",
        "event_time": t.isoformat(),
    }
    d.update(dict.fromkeys(SIGNALS, None))
    d.update(
        {"power_kw": 1000.0, "ambient_temp_c": 10.0, "wind_speed_ms": 8.0, "gearbox_bearing_temp_c": value}
    )
    d["status_code"] = 0
    d.update(extra)
    return orjson.dumps(d)


def _records(values: list[bytes], start: int = 0, partition: int = 0) -> list[RawRecord]:
    return [RawRecord(partition, start + i, 1.0, v, "telemetry") for i, v in enumerate(values)]


def test_batch_dedup_out_of_order_late_and_dead_letters() -> None:
    proc = BatchProcessor(load_settings(ScorerSettings))
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    evs = [_event("WT-1", t0 + timedelta(minutes=10 * i), 50.0 + i) for i in range(12)]
    ooo = _event("WT-1", t0 + timedelta(minutes=10 * 11 - 5))  # 5 min older than newest: in tolerance
    late = _event("WT-1", t0 - timedelta(hours=2))  # 2 h older than newest... by then: late
    bad = b'{"schema_version": 1, "turbine_id": "WT-1"'
    batch = [*evs, evs[3], ooo, late, bad]
    out = proc.process(_records(batch))
    assert out.events == len(batch)
    assert out.accepted == 13 and out.duplicates == 1 and out.late == 1
    assert out.invalid == {"malformed_json": 1}
    letter = orjson.loads(out.dead_letters[0])
    assert letter["payload"] == bad.decode() and letter["source_offset"] == len(batch) - 1
    assert letter["code"] == "malformed_json" and letter["source_topic"] == "telemetry"
    st = proc.turbines["WT-1"]
    assert st.window.n_events == 13 and st.late == 1 and st.duplicates == 1
    # Aggregates: one sample per accepted event, buckets rewritten whole (idempotent upserts).
    assert sum(r[2] for r in out.agg_rows) == 13
    # telemetry_latest carries the newest event, not the out-of-order one.
    assert out.latest_rows[0][1] == t0 + timedelta(minutes=110)
    assert out.next_offsets == {0: len(batch)}


def test_replayed_offsets_are_skipped_and_state_round_trips() -> None:
    settings = load_settings(ScorerSettings)
    proc = BatchProcessor(settings)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    evs = [_event("WT-2", t0 + timedelta(minutes=10 * i)) for i in range(10)]
    proc.process(_records(evs[:6]))
    st = proc.turbines["WT-2"]
    restored = TurbineState.restore("WT-2", 0, st.window.to_bytes(), st.aux_bytes())
    assert restored.recent == st.recent and restored.agg == st.agg and restored.last_ts == st.last_ts

    # A restarted worker: restored state + checkpointed offset; Kafka redelivers from an older commit.
    proc2 = BatchProcessor(settings)
    proc2.turbines["WT-2"] = restored
    proc2.next_offset[0] = 6
    out = proc2.process(_records(evs))  # offsets 0..9, of which 0..5 are already in the window
    assert out.skipped_replayed == 6 and out.accepted == 4 and out.duplicates == 0
    ref = BatchProcessor(settings)
    ref.process(_records(evs))
    assert proc2.turbines["WT-2"].window.to_bytes() == ref.turbines["WT-2"].window.to_bytes()
    assert proc2.turbines["WT-2"].agg == ref.turbines["WT-2"].agg


def test_replayed_duplicate_without_offsets_is_still_deduplicated() -> None:
    proc = BatchProcessor(load_settings(ScorerSettings))
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    evs = [_event("WT-3", t0 + timedelta(minutes=10 * i)) for i in range(4)]
    proc.process(_records(evs, partition=1))
    out = proc.process(_records(evs, start=100, partition=1))  # re-sent by a producer: new offsets
    assert out.duplicates == 4 and out.accepted == 0
    assert proc.turbines["WT-3"].window.n_events == 4


def test_drop_partitions_forgets_state() -> None:
    proc = BatchProcessor(load_settings(ScorerSettings))
    t = datetime.now(UTC) - timedelta(hours=1)
    proc.process(_records([_event("A", t)], partition=0) + _records([_event("B", t)], partition=2))
    proc.drop_partitions({0})
    assert set(proc.turbines) == {"A"} and set(proc.next_offset) == {0}
