"""Property tests: whatever arrives on the telemetry topic, the validator ends in an event or InvalidEvent,
and every dead letter fits its topic and gives back the exact payload when it was not cut."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.contracts import (
    INVALID_EVENT_CODES,
    MAX_DEAD_LETTER_KEY_BYTES,
    MAX_REASON_CHARS,
    MIN_DEAD_LETTER_BYTES,
    SIGNALS,
    DeadLetter,
    InvalidEvent,
    TelemetryEvent,
    dead_letter_bytes,
    make_event_id,
    parse_telemetry,
    read_dead_letter,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
FIELDS = tuple(TelemetryEvent.model_fields)
STRING_FIELDS = ("event_id", "turbine_id", "site_id", "event_time")
# Sized so the whole file stays a few seconds: hypothesis keeps its failing examples in its database.
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_REST = _FIRST + "._:/-"


def _outcome(raw: object) -> TelemetryEvent | InvalidEvent:
    """Parse; anything but an event or InvalidEvent propagates and fails the test."""
    try:
        return parse_telemetry(raw, now=NOW)  # type: ignore[arg-type]
    except InvalidEvent as exc:
        assert exc.code in INVALID_EVENT_CODES and exc.code != "invalid_payload", exc.reason
        assert 0 < len(exc.reason) <= MAX_REASON_CHARS
        exc.reason.encode("utf-8")  # loggable as is
        return exc


# Every JSON value, including what Python's json writes and orjson refuses (NaN, Infinity, huge integers).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def _dumps(value: Any) -> bytes:
    """Python's json: writes NaN/Infinity literals, arbitrary big integers and lone surrogates as escapes."""
    return json.dumps(value).encode()


def _valid_event() -> st.SearchStrategy[dict[str, Any]]:
    ident = st.builds(str.__add__, st.sampled_from(_FIRST), st.text(_REST, max_size=63))

    def build(
        turbine: str, site: str, when: datetime, status: int, values: list[float | None]
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "schema_version": 1,
            "event_id": make_event_id(turbine, when),
            "turbine_id": turbine,
            "site_id": site,
            "event_time": when.isoformat(),
            "status_code": status,
        }
        for name, value in zip(SIGNALS, values, strict=True):
            bounds = {m.__class__.__name__: m for m in TelemetryEvent.model_fields[name].metadata}
            low, high = bounds["Ge"].ge, bounds["Le"].le
            record[name] = None if value is None else low + (high - low) * value
        return record

    return st.builds(
        build,
        ident,
        ident,
        st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2026, 3, 1, 12), timezones=st.just(UTC)
        ),
        st.integers(0, 999),
        st.lists(st.none() | st.floats(0, 1), min_size=len(SIGNALS), max_size=len(SIGNALS)),
    )


@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape(raw: bytes) -> None:
    assert isinstance(_outcome(raw), InvalidEvent | TelemetryEvent)


@FAST
@given(st.text(max_size=512))
def test_arbitrary_text_never_escapes(raw: str) -> None:
    """Text input (lone surrogates included) as some clients hand it over."""
    assert isinstance(_outcome(raw), InvalidEvent | TelemetryEvent)


@FAST
@given(json_values)
def test_arbitrary_json_never_escapes(value: Any) -> None:
    assert isinstance(_outcome(_dumps(value)), InvalidEvent)


@FAST
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=8))
def test_objects_with_known_field_names_never_escape(value: dict[str, Any]) -> None:
    """Objects that carry the contract's field names reach the deepest checks; any value type there."""
    value.setdefault("schema_version", 1)
    assert isinstance(_outcome(_dumps(value)), InvalidEvent | TelemetryEvent)


@FAST
@given(_valid_event())
def test_valid_events_are_accepted_and_round_trip(record: dict[str, Any]) -> None:
    event = _outcome(orjson.dumps(record))
    assert isinstance(event, TelemetryEvent), getattr(event, "reason", "")
    assert parse_telemetry(event.to_json(), now=NOW) == event


@FAST
@given(_valid_event(), st.sampled_from((*FIELDS, "extra")), json_values)
def test_one_field_replaced_by_any_json_value(record: dict[str, Any], field: str, value: Any) -> None:
    record[field] = value
    outcome = _outcome(_dumps(record))
    if isinstance(outcome, TelemetryEvent):  # only a value the contract allows for that field
        assert field in FIELDS
        assert value is None or getattr(outcome, field) is not None
    else:
        assert outcome.code in {
            "invalid_field",
            "non_finite",
            "malformed_json",
            "unknown_schema_version",
            "missing_field",
            "time_too_old",
            "time_in_future",
        }


@FAST
@given(
    _valid_event(),
    st.sampled_from(STRING_FIELDS),
    st.characters(max_codepoint=0x9F).filter(lambda c: ord(c) < 0x20 or ord(c) >= 0x7F),
    st.integers(0, 64),
)
def test_control_characters_in_any_string_field_are_refused(
    record: dict[str, Any], field: str, char: str, position: int
) -> None:
    text = record[field]
    record[field] = text[:position] + char + text[position:]
    outcome = _outcome(orjson.dumps(record))
    assert isinstance(outcome, InvalidEvent) and outcome.code == "invalid_field"
    assert field in outcome.reason


@FAST
@given(_valid_event(), st.sampled_from(FIELDS))
def test_any_duplicated_field_is_refused(record: dict[str, Any], field: str) -> None:
    raw = orjson.dumps(record)
    raw = raw[:-1] + b"," + orjson.dumps({field: record[field]})[1:]
    outcome = _outcome(raw)
    assert isinstance(outcome, InvalidEvent) and outcome.code == "duplicate_field"


# ---------------------------------------------------------------------------------------- dead letters
payloads = (
    st.binary(max_size=4096)
    | st.text(max_size=2048).map(lambda t: t.encode("utf-8", "surrogatepass"))
    # large payloads built by repetition: several MB without making hypothesis draw them byte by byte
    | st.builds(
        lambda chunk, n: chunk * n,
        st.binary(min_size=1, max_size=48),
        st.integers(1, 80_000) | st.integers(20_000, 80_000),
    )
    | st.builds(
        lambda chunk, n: chunk.encode("utf-8", "surrogatepass") * n,
        st.text(min_size=1, max_size=16),
        st.integers(1, 200_000),
    )
)


@BIG
@given(
    payloads,
    st.integers(MIN_DEAD_LETTER_BYTES, 2 * 1024 * 1024) | st.integers(MIN_DEAD_LETTER_BYTES, 128 * 1024),
    st.none() | st.binary(max_size=3 * MAX_DEAD_LETTER_KEY_BYTES),
    st.text(max_size=2000),
)
def test_dead_letters_always_fit_and_keep_what_they_can(
    raw: bytes, max_bytes: int, key: bytes | None, reason: str
) -> None:
    out = dead_letter_bytes(
        raw,
        reason=reason,
        code="malformed_json",
        source_topic="telemetry.v1",
        source_partition=0,
        source_offset=7,
        key=key,
        received_at=NOW + timedelta(seconds=1),
        max_bytes=max_bytes,
    )
    assert len(out) <= max_bytes
    assert isinstance(orjson.loads(out), dict)
    letter = read_dead_letter(out)
    assert isinstance(letter, DeadLetter)
    assert letter.payload_size == len(raw) and letter.payload_sha256 == hashlib.sha256(raw).hexdigest()
    kept = letter.payload_bytes()
    if letter.payload_truncated:
        assert raw.startswith(kept) and len(kept) < len(raw)
    else:
        assert kept == raw
    if key is not None:
        assert key.startswith(letter.key_bytes() or b"")
        assert letter.key_truncated == (len(key) > MAX_DEAD_LETTER_KEY_BYTES)
        assert letter.key_truncated or letter.key_bytes() == key
