from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contracts import SIGNALS, InvalidEvent, TelemetryEvent, make_event_id, parse_telemetry

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _valid(**over: object) -> dict[str, object]:
    ts = datetime(2026, 3, 1, 11, 50, tzinfo=UTC)
    base: dict[str, object] = {
        "schema_version": 1,
        "event_id": make_event_id("WT-001", ts),
        "turbine_id": "WT-001",
        "site_id": "SITE-A",
        "event_time": ts.isoformat(),
        "wind_speed_ms": 8.0,
        "power_kw": 900.0,
    }
    base.update(over)
    return base


def test_event_id_is_stable_and_distinct() -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    assert make_event_id("WT-001", ts) == make_event_id("WT-001", ts.astimezone(UTC))
    assert make_event_id("WT-001", ts) != make_event_id("WT-002", ts)
    assert make_event_id("WT-001", ts) != make_event_id("WT-001", ts + timedelta(seconds=1))


def test_roundtrip_keeps_every_field() -> None:
    event = parse_telemetry(orjson.dumps(_valid()), now=NOW)
    assert parse_telemetry(event.to_json(), now=NOW) == event
    assert len(event.signal_values()) == len(SIGNALS)


@pytest.mark.parametrize(
    ("payload", "code", "fragment"),
    [
        (b"{not json", "malformed_json", "malformed JSON"),
        (b"[1,2]", "not_an_object", "not a JSON object"),
        (orjson.dumps(_valid(schema_version=7)), "unknown_schema_version", "schema_version 7"),
        (
            orjson.dumps({k: v for k, v in _valid().items() if k != "turbine_id"}),
            "missing_field",
            "turbine_id",
        ),
        (orjson.dumps(_valid(power_kw="lots")), "invalid_field", "power_kw"),
        (orjson.dumps(_valid(vibration_mm_s=-3.0)), "invalid_field", "vibration_mm_s"),
        (orjson.dumps(_valid(event_time="2026-03-01T11:50:00")), "invalid_field", "timezone"),
        (orjson.dumps(_valid(event_time="2026-03-02T00:00:00+00:00")), "time_in_future", "future"),
        (orjson.dumps(_valid(surprise=1)), "invalid_field", "surprise"),
        (b'{"schema_version":1,"power_kw":NaN}', "malformed_json", "malformed"),
    ],
)
def test_invalid_payloads_say_why(payload: bytes, code: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_telemetry(payload, now=NOW)
    assert info.value.code == code
    assert fragment in info.value.reason


def test_too_old_events_are_rejected_when_a_max_age_is_set() -> None:
    with pytest.raises(InvalidEvent, match="older"):
        parse_telemetry(orjson.dumps(_valid()), now=NOW + timedelta(days=400), max_age=timedelta(days=365))


@given(st.sampled_from(SIGNALS), st.sampled_from([float("nan"), float("inf"), float("-inf")]))
def test_no_non_finite_number_passes(signal: str, value: float) -> None:
    with pytest.raises(ValueError):
        TelemetryEvent(**{**_valid(), "event_time": NOW, signal: value})  # type: ignore[arg-type]
    # On the wire, JSON has no NaN literal: the parser refuses it as malformed.
    raw = orjson.dumps(_valid(**{signal: 1.0})).replace(b"1.0", b"NaN")
    with pytest.raises(InvalidEvent):
        parse_telemetry(raw, now=NOW)


def test_naive_model_construction_is_refused() -> None:
    with pytest.raises(ValueError):
        TelemetryEvent(event_id="x", turbine_id="t", site_id="s", event_time=datetime(2026, 1, 1))
