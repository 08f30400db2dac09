"""Pure parts of the scorer: dedup/ordering, history policy, sweep scheduling, DLQ envelope, batches."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from common.contracts import DEAD_LETTER_RECORD_OVERHEAD, SIGNALS, make_event_id
from common.settings import SettingsError, load_settings
from scorer.processing import BatchOutcome, BatchProcessor, RawRecord
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
        st.accept(f"id{i}", 600.0 * i, 3600)
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


def _key(value: bytes) -> bytes | None:
    """The producer's key: the event's turbine id (None when the value is not an event)."""
    try:
        tid = orjson.loads(value).get("turbine_id")
    except Exception:
        return None
    return tid.encode() if isinstance(tid, str) else None


def _records(values: list[bytes], start: int = 0, partition: int = 0) -> list[RawRecord]:
    return [RawRecord(partition, start + i, 1.0, v, "telemetry", _key(v)) for i, v in enumerate(values)]


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
    letter = orjson.loads(out.dead_letters[0].envelope)
    assert letter["payload"] == bad.decode() and letter["source_offset"] == len(batch) - 1
    assert letter["code"] == "malformed_json" and letter["source_topic"] == "telemetry"
    st = proc.turbines["WT-1"]
    assert st.window.n_events == 13 and st.late == 1 and st.duplicates == 1
    # Aggregates: one sample per accepted event, buckets rewritten whole (idempotent upserts).
    assert sum(r.samples for r in out.agg_rows) == 13
    # telemetry_latest carries the newest event, not the out-of-order one.
    assert out.latest_rows[0].event_time == t0 + timedelta(minutes=110)
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


# ------------------------------------------------------------------------------------ poison records
def _letters(out: BatchOutcome) -> list[dict[str, object]]:
    return [orjson.loads(d.envelope) for d in out.dead_letters]


def test_key_must_be_the_turbine_id() -> None:
    proc = BatchProcessor(load_settings(ScorerSettings))
    t = datetime.now(UTC) - timedelta(hours=1)
    ok = _event("WT-1", t)
    other = _event("WT-1", t + timedelta(minutes=10))
    keyless = _event("WT-1", t + timedelta(minutes=20))
    recs = [
        RawRecord(0, 0, 1.0, ok, "telemetry", b"WT-1"),
        RawRecord(0, 1, 1.0, other, "telemetry", b"WT-2"),
        RawRecord(0, 2, 1.0, keyless, "telemetry", None),
    ]
    out = proc.process(recs)
    assert out.accepted == 1 and out.invalid == {"key_mismatch": 2}
    letters = _letters(out)
    assert [d["source_offset"] for d in letters] == [1, 2]
    assert all(d["code"] == "key_mismatch" and d["reason"] for d in letters)
    assert out.dead_letters[0].key == b"WT-2" and out.dead_letters[1].key is None
    assert proc.turbines["WT-1"].window.n_events == 1  # refused records are not applied
    assert out.next_offsets == {0: 3}  # ... but accounted for


@pytest.mark.parametrize(
    "value",
    [
        b'{"schema_version":[1]}',
        b'{"schema_version":{"a":1}}',
        b'{"schema_version":1,"turbine_id":["WT-1"]}',
        b"\xff\xfe\x00",
        b"",
        b"null",
        b"[1,2,3]",
    ],
)
def test_unhashable_and_garbage_values_become_dead_letters(value: bytes) -> None:
    proc = BatchProcessor(load_settings(ScorerSettings))
    t = datetime.now(UTC) - timedelta(hours=1)
    good = _event("WT-1", t)
    out = proc.process(
        [RawRecord(0, 0, 1.0, value, "telemetry", b"WT-1"), RawRecord(0, 1, 1.0, good, "telemetry", b"WT-1")]
    )
    assert out.accepted == 1 and sum(out.invalid.values()) == 1
    (letter,) = _letters(out)
    assert letter["source_offset"] == 0 and letter["code"] and letter["reason"]


@pytest.mark.parametrize("field", ["turbine_id", "site_id"])
def test_nul_and_control_characters_in_identifiers_are_refused(field: str) -> None:
    proc = BatchProcessor(load_settings(ScorerSettings))
    t = datetime.now(UTC) - timedelta(hours=1)
    bad = orjson.loads(_event("WT-1", t))
    bad[field] = "WT\x00-1" if field == "turbine_id" else "SITE\x00A"
    out = proc.process([RawRecord(0, 0, 1.0, orjson.dumps(bad), "telemetry", b"WT-1")])
    assert out.accepted == 0 and out.invalid == {"invalid_field": 1}
    assert not proc.turbines and not out.turbine_rows  # nothing reaches PostgreSQL


def test_unexpected_exception_on_one_record_is_its_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug hit by one record (here: in its turbine's bookkeeping) must not stop the batch or the stream."""
    original = TurbineState.admit

    def flaky(self: TurbineState, *args: Any) -> Any:
        if self.turbine_id == "WT-BUG":
            raise KeyError("boom")
        return original(self, *args)

    monkeypatch.setattr(TurbineState, "admit", flaky)
    proc = BatchProcessor(load_settings(ScorerSettings))
    t = datetime.now(UTC) - timedelta(hours=1)
    values = [_event("WT-1", t), _event("WT-BUG", t), _event("WT-1", t + timedelta(minutes=10))]
    out = proc.process(_records(values))
    assert out.accepted == 2 and out.invalid == {"internal_error": 1}
    (letter,) = _letters(out)
    assert letter["code"] == "internal_error" and "KeyError" in str(letter["reason"])
    assert letter["source_offset"] == 1
    assert proc.turbines["WT-1"].window.n_events == 2


def test_validator_bug_is_an_internal_error_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    import scorer.processing as processing

    real = processing.decode_telemetry_batch

    def broken(values: list[bytes], *args: Any, **kw: Any) -> Any:
        if any(b"WT-BUG" in v for v in values):  # a bug hit by one record: the batch call raises
            raise TypeError("unhashable type: 'list'")
        return real(values, *args, **kw)

    monkeypatch.setattr(processing, "decode_telemetry_batch", broken)
    proc = BatchProcessor(load_settings(ScorerSettings))
    t = datetime.now(UTC) - timedelta(hours=1)
    values = [_event("WT-1", t), _event("WT-BUG", t), _event("WT-1", t + timedelta(minutes=10)), b"{"]
    out = proc.process(_records(values))
    assert out.invalid == {"internal_error": 1, "malformed_json": 1} and out.accepted == 2
    assert "TypeError" in out.dead_letters[0].reason and out.dead_letters[0].source_offset == 1
    assert out.dead_letters[1].source_offset == 3
    assert proc.turbines["WT-1"].window.n_events == 2


def test_history_import_is_accepted_and_only_garbage_times_refused() -> None:
    """No wall-clock age limit: years-old history is scored in event time; the floor stops garbage."""
    proc = BatchProcessor(load_settings(ScorerSettings))
    old = datetime(2011, 3, 1, tzinfo=UTC)
    values = [_event("WT-H", old + timedelta(minutes=10 * i)) for i in range(3)]
    ancient = _event("WT-H", datetime(1999, 12, 31, tzinfo=UTC))
    out = proc.process(_records([*values, ancient]))
    assert out.accepted == 3 and out.invalid == {"time_too_old": 1}
    assert proc.turbines["WT-H"].window.as_of == old + timedelta(minutes=20)
    custom = load_settings(ScorerSettings, min_event_time="2015-01-01T00:00:00Z")
    assert BatchProcessor(custom).process(_records(values)).invalid == {"time_too_old": 3}
    with pytest.raises(SettingsError, match="COCKPIT_MIN_EVENT_TIME"):
        load_settings(ScorerSettings, min_event_time="2015-01-01T00:00:00")


def test_dead_letter_envelope_always_fits_the_topic() -> None:
    """700 KB of 0xFF once became a 2.1 MB envelope; 1.5 MB payloads were refused by the broker."""
    settings = load_settings(ScorerSettings, dead_letter_max_message_bytes=1_048_576)
    proc = BatchProcessor(settings)
    assert proc.dead_letter_max_bytes == 1_048_576 - DEAD_LETTER_RECORD_OVERHEAD
    payloads = [b"\xff" * 700_000, b"x" * 1_500_000, ("\u00e9" * 600_000).encode()]
    out = proc.process([RawRecord(0, i, 1.0, v, "telemetry", b"k" * 5000) for i, v in enumerate(payloads)])
    assert len(out.dead_letters) == 3
    for d, raw in zip(out.dead_letters, payloads, strict=True):
        assert len(d.envelope) <= proc.dead_letter_max_bytes
        letter = orjson.loads(d.envelope)
        assert letter["payload_size"] == len(raw) and letter["payload_sha256"]
        assert d.key is None  # a 5000-byte key is not reused as the dead letter's record key
    with pytest.raises(ValueError, match="DEAD_LETTER_MAX_MESSAGE_BYTES"):
        BatchProcessor(load_settings(ScorerSettings, dead_letter_max_message_bytes=4096))


# ------------------------------------------------------------------------------------ restore by turbine
def test_parse_names_missing_turbines_and_install_restores_them_on_another_partition() -> None:
    settings = load_settings(ScorerSettings)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    evs = [_event("WT-M", t0 + timedelta(minutes=10 * i)) for i in range(30)]
    first = BatchProcessor(settings)
    first.process(_records(evs[:20], partition=1))
    st = first.turbines["WT-M"]
    saved = TurbineState.restore("WT-M", 1, st.window.to_bytes(), st.aux_bytes())

    # After a partition-count change the turbine arrives on partition 4.
    proc = BatchProcessor(settings)
    parsed = proc.parse(_records(evs[20:], partition=4))
    assert proc.missing(parsed.turbine_ids) == ["WT-M"]
    assert proc.install([saved]) == 1
    out = proc.apply(parsed)
    assert out.accepted == 10 and out.duplicates == 0
    ref = BatchProcessor(settings)
    ref.process(_records(evs))
    assert proc.turbines["WT-M"].window.to_bytes() == ref.turbines["WT-M"].window.to_bytes()
    assert proc.turbines["WT-M"].partition == 4
    assert proc.missing(["WT-M", "WT-N"]) == ["WT-N"]


def test_history_mark_from_score_history_governs_the_replay() -> None:
    """Rows written after the checkpoint (then a crash) are the predecessor the policy judges against."""
    settings = load_settings(ScorerSettings)
    proc = BatchProcessor(settings)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    evs = [_event("WT-K", t0 + timedelta(minutes=10 * i)) for i in range(6)]
    newest_row = (t0 + timedelta(minutes=50)).timestamp()
    parsed = proc.parse(_records(evs))
    # No checkpoint for WT-K, but a stream row at the last event time exists already.
    proc.install([], {"WT-K": HistoryMark(newest_row, 10.0, "low")})
    proc.apply(parsed)
    assert proc.turbines["WT-K"].history == HistoryMark(newest_row, 10.0, "low")
    # With a checkpoint whose mark is older, the newer row wins; a newer checkpoint mark is kept.
    st = proc.turbines["WT-K"]
    st.history = HistoryMark(newest_row - 3000, 5.0, "low")
    proc2 = BatchProcessor(settings)
    restored = TurbineState.restore("WT-K", 0, st.window.to_bytes(), st.aux_bytes())
    proc2.install([restored], {"WT-K": HistoryMark(newest_row, 10.0, "low")})
    assert proc2.turbines["WT-K"].history == HistoryMark(newest_row, 10.0, "low")
    proc3 = BatchProcessor(settings)
    restored = TurbineState.restore("WT-K", 0, st.window.to_bytes(), st.aux_bytes())
    proc3.install([restored], {"WT-K": HistoryMark(newest_row - 6000, 1.0, "low")})
    assert proc3.turbines["WT-K"].history == HistoryMark(newest_row - 3000, 5.0, "low")


def test_closed_aggregate_buckets_are_forgotten() -> None:
    """10-minute data never has 64 recent ids: its written buckets were kept forever (memory, checkpoint)."""
    settings = load_settings(ScorerSettings)
    proc = BatchProcessor(settings)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    evs = [_event("WT-A", t0 + timedelta(minutes=10 * i)) for i in range(2 * 144)]
    for start in range(0, len(evs), 6):
        out = proc.process(_records(evs[start : start + 6], start=start))
        assert sum(r.samples for r in out.agg_rows) == 6
    st = proc.turbines["WT-A"]
    assert len(st.agg) <= settings.out_of_order_tolerance_s // 600 + 2
    assert len(st.recent) <= 8 and len(st.aux_bytes()) < 2000  # ids and buckets within the tolerance
