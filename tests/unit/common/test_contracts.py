"""Telemetry contract: what is accepted, and why each refused payload is refused (issue 9 regressions)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contracts import (
    DEAD_LETTER_RECORD_OVERHEAD,
    DEFAULT_MIN_EVENT_TIME,
    IDENTIFIER_PATTERN,
    INVALID_EVENT_CODES,
    MAX_REASON_CHARS,
    MAX_TELEMETRY_BYTES,
    MIN_DEAD_LETTER_BYTES,
    SIGNALS,
    DeadLetter,
    InvalidEvent,
    TelemetryEvent,
    check_record_key,
    dead_letter_bytes,
    make_event_id,
    parse_telemetry,
    read_dead_letter,
)

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


def _refused(payload: object, **kwargs: object) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        parse_telemetry(payload, now=NOW, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert error.code in INVALID_EVENT_CODES
    assert len(error.reason) <= MAX_REASON_CHARS
    error.reason.encode("utf-8")  # always loggable
    return error


def test_event_id_is_stable_and_distinct() -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    assert make_event_id("WT-001", ts) == make_event_id("WT-001", ts.astimezone(UTC))
    assert make_event_id("WT-001", ts) != make_event_id("WT-002", ts)
    assert make_event_id("WT-001", ts) != make_event_id("WT-001", ts + timedelta(seconds=1))


def test_roundtrip_keeps_every_field() -> None:
    event = parse_telemetry(orjson.dumps(_valid()), now=NOW)
    assert parse_telemetry(event.to_json(), now=NOW) == event
    assert len(event.signal_values()) == len(SIGNALS)


def test_accepted_forms() -> None:
    """What producers send: Z or an offset, integers in float fields, nulls, str input, every field."""
    full = _valid(**{**dict.fromkeys(SIGNALS, None), "power_kw": 900, "status_code": 40})
    full["event_time"] = "2026-03-01T12:50:00+01:00"
    event = parse_telemetry(orjson.dumps(full), now=NOW)
    assert event.event_time == datetime(2026, 3, 1, 11, 50, tzinfo=UTC) and event.power_kw == 900.0
    assert parse_telemetry(orjson.dumps(_valid(event_time="2026-03-01T11:50:00.123456Z")).decode(), now=NOW)
    assert parse_telemetry(bytearray(orjson.dumps(_valid())), now=NOW)  # type: ignore[arg-type]
    for ident in ("WT-001", "a", "site_1.north:b/7", "X" * 64, "0"):
        assert (
            parse_telemetry(orjson.dumps(_valid(turbine_id=ident, site_id=ident)), now=NOW).turbine_id
            == ident
        )


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
    error = _refused(payload)
    assert error.code == code
    assert fragment in error.reason


# ----------------------------------------------------------------------- issue 9: unhashable / odd types
@pytest.mark.parametrize("version", [[1], {"v": 1}, True, 1.0, "1", None, 2**70, -1])
def test_schema_version_of_any_type_is_refused_cleanly(version: object) -> None:
    """Regression: ``{"schema_version":[1]}`` raised TypeError (unhashable list): worker crash loop."""
    raw = json.dumps({"schema_version": version}).encode()
    assert _refused(raw).code == "unknown_schema_version"
    assert _refused(json.dumps(_valid(schema_version=version)).encode()).code == "unknown_schema_version"


@pytest.mark.parametrize("field", sorted(TelemetryEvent.model_fields.keys() - {"schema_version"}))
@pytest.mark.parametrize("value", [[1], {"a": [1]}, [], {}, True, "x" * 100_000, 2**80, -(2**80)])
def test_every_field_refuses_values_of_the_wrong_type(field: str, value: object) -> None:
    error = _refused(json.dumps(_valid(**{field: value})).encode())
    assert error.code in {"invalid_field", "payload_too_large"}
    assert field in error.reason or error.code == "payload_too_large"


def test_no_lax_coercion_on_the_wire() -> None:
    """Strings are not numbers, booleans are not integers, unix seconds are not an event time."""
    assert "power_kw" in _refused(orjson.dumps(_valid(power_kw="8.5"))).reason
    assert "status_code" in _refused(orjson.dumps(_valid(status_code=True))).reason
    assert "status_code" in _refused(orjson.dumps(_valid(status_code=1.0))).reason
    assert "event_time" in _refused(orjson.dumps(_valid(event_time=1772365800))).reason
    assert "event_time" in _refused(orjson.dumps(_valid(event_time="1772365800"))).reason
    assert "event_time" in _refused(orjson.dumps(_valid(event_time="2026-03-01"))).reason


def test_huge_numbers_are_refused_not_crashing() -> None:
    for literal in (b"1" + b"0" * 5000, b"18446744073709551616", b"1e308", b"-1e400", b"1e400"):
        body = orjson.dumps(_valid())[:-1] + b',"status_code":' + literal + b"}"
        assert _refused(body).code in {"invalid_field", "malformed_json"}
        body = orjson.dumps(_valid())[:-1] + b',"vibration_mm_s":' + literal + b"}"
        assert _refused(body).code in {"invalid_field", "malformed_json"}


def test_deep_nesting_is_refused() -> None:
    for depth in (100, 1500, 20_000):
        nested = b"[" * depth + b"]" * depth
        assert _refused(b'{"schema_version":1,"power_kw":' + nested + b"}").code in {
            "invalid_field",
            "malformed_json",
            "payload_too_large",
        }
        assert _refused(nested).code in {"not_an_object", "malformed_json", "payload_too_large"}


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe\x00garbage",
        b"\xef\xbb\xbf" + orjson.dumps(_valid()),  # BOM
        orjson.dumps(_valid()).replace(b"900.0", b"Infinity"),
        orjson.dumps(_valid()).replace(b"900.0", b"-Infinity"),
        orjson.dumps(_valid()).replace(b"WT-001", b"WT-\xed\xa0\x80"),  # UTF-8-encoded surrogate
        orjson.dumps(_valid()).replace(b"WT-001", b'WT-\\ud800"'),  # escaped lone surrogate
        b"",
        b"   ",
        b"null",
        b'"a string"',
        b"42",
    ],
)
def test_not_json_objects_are_refused(raw: bytes) -> None:
    assert _refused(raw).code in {"malformed_json", "not_an_object"}


def test_text_input_with_lone_surrogate_and_tombstones() -> None:
    assert _refused('{"schema_version":1,"turbine_id":"\ud800"}').code == "malformed_json"
    assert _refused(None).code == "malformed_json"  # a Kafka tombstone has no value
    assert _refused(12).code == "malformed_json"


def test_duplicate_keys_are_refused() -> None:
    """orjson keeps the last duplicate; other parsers keep the first: refuse the ambiguity."""
    raw = orjson.dumps(_valid())[:-1] + b',"power_kw":1.0}'
    error = _refused(raw)
    assert error.code == "duplicate_field" and "power_kw" in error.reason
    raw = orjson.dumps(_valid())[:-1] + b',"turbine_id":"WT-002"}'
    assert _refused(raw).code == "duplicate_field"


def test_oversized_payload_is_refused_unread() -> None:
    padded = orjson.dumps(_valid())[:-1] + b"," + b" " * MAX_TELEMETRY_BYTES + b'"x":1}'
    error = _refused(padded)
    assert error.code == "payload_too_large" and str(MAX_TELEMETRY_BYTES) in error.reason


def test_long_unknown_field_name_keeps_reason_bounded() -> None:
    error = _refused(orjson.dumps(_valid(**{"k" * 50_000: 1})))
    assert error.code == "invalid_field" and len(error.reason) < 200


# ----------------------------------------------------------------------- issue 9: NUL / control in ids
@pytest.mark.parametrize("field", ["turbine_id", "site_id", "event_id"])
@pytest.mark.parametrize(
    "bad", ["WT\x00001", "\x00", "WT-1\n", "WT\t1", "WT\x7f", "WT\x851", "WT 1", " WT", "é", "-WT"]
)
def test_identifiers_refuse_nul_control_space_and_non_ascii(field: str, bad: str) -> None:
    """Regression: a NUL in turbine_id passed validation, then PostgreSQL refused the row forever."""
    if field == "event_id" and bad == "-WT":  # event ids may start with '-' (not identifiers)
        assert parse_telemetry(orjson.dumps(_valid(event_id=bad)), now=NOW).event_id == bad
        return
    error = _refused(orjson.dumps(_valid(**{field: bad})))
    assert error.code == "invalid_field" and error.field == field and field in error.reason
    assert "\x00" not in error.reason
    with pytest.raises(ValueError):
        TelemetryEvent(**{**_valid(), "event_time": NOW, field: bad})  # type: ignore[arg-type]


def test_nul_reason_names_the_position() -> None:
    assert "U+0000 at position 2" in _refused(orjson.dumps(_valid(turbine_id="WT\x00001"))).reason


def test_identifier_length_is_bounded() -> None:
    assert "at most 64" in _refused(orjson.dumps(_valid(turbine_id="W" * 65))).reason
    assert "empty" in _refused(orjson.dumps(_valid(site_id=""))).reason
    assert IDENTIFIER_PATTERN.startswith("^") and IDENTIFIER_PATTERN.endswith("$")


# ----------------------------------------------------------------------- time
def test_timestamps_without_utc_representation_are_refused() -> None:
    """Regression: ``astimezone`` raised OverflowError (not a ValueError) past year 9999 / before year 1."""
    for stamp in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):
        assert _refused(orjson.dumps(_valid(event_time=stamp))).code == "invalid_field"


def test_time_floor_protects_from_garbage_but_history_is_accepted() -> None:
    error = _refused(orjson.dumps(_valid(event_time="1970-01-01T00:00:00Z")))
    assert error.code == "time_too_old" and DEFAULT_MIN_EVENT_TIME.isoformat() in error.reason
    years_old = parse_telemetry(orjson.dumps(_valid(event_time="2015-06-01T00:00:00Z")), now=NOW)
    assert years_old.event_time.year == 2015  # history imports are scored in event time: no age limit
    floor = datetime(2020, 1, 1, tzinfo=UTC)
    assert _refused(orjson.dumps(_valid(event_time="2015-06-01T00:00:00Z")), min_event_time=floor).code == (
        "time_too_old"
    )


def test_too_old_events_are_rejected_when_a_max_age_is_set() -> None:
    with pytest.raises(InvalidEvent, match="older"):
        parse_telemetry(orjson.dumps(_valid()), now=NOW + timedelta(days=400), max_age=timedelta(days=365))


def test_future_limit_follows_the_skew() -> None:
    soon = orjson.dumps(_valid(event_time="2026-03-01T12:05:00Z"))
    assert parse_telemetry(soon, now=NOW)
    assert _refused(soon, max_future_skew=timedelta(minutes=1)).code == "time_in_future"


def test_huge_limits_mean_no_limit_not_an_error() -> None:
    far = orjson.dumps(_valid(event_time="9999-12-31T23:59:59Z"))
    assert parse_telemetry(far, now=NOW, max_future_skew=timedelta.max).event_time.year == 9999
    assert parse_telemetry(orjson.dumps(_valid()), now=NOW, max_age=timedelta.max)


def test_naive_now_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_telemetry(orjson.dumps(_valid()), now=datetime(2026, 3, 1))


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


# ----------------------------------------------------------------------- record key
def test_record_key_must_be_the_turbine_id() -> None:
    event = parse_telemetry(orjson.dumps(_valid()), now=NOW)
    check_record_key(event, b"WT-001")
    check_record_key(event, bytearray(b"WT-001"))  # type: ignore[arg-type]
    for key, fragment in ((None, "no key"), (b"WT-002", "'WT-002'"), (b"\xff\xfe", "non-UTF-8"), (b"", "''")):
        with pytest.raises(InvalidEvent) as info:
            check_record_key(event, key)
        assert info.value.code == "key_mismatch" and fragment in info.value.reason
        assert "WT-001" in info.value.reason


# ----------------------------------------------------------------------- dead letters
RECEIVED = datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)


def _letter(raw: bytes, max_bytes: int, key: bytes | None = b"WT-001", reason: str = "bad") -> bytes:
    return dead_letter_bytes(
        raw,
        reason=reason,
        code="malformed_json",
        source_topic="telemetry.v1",
        source_partition=3,
        source_offset=42,
        key=key,
        received_at=RECEIVED,
        max_bytes=max_bytes,
    )


def test_small_dead_letters_are_lossless() -> None:
    for raw in (b'{"schema_version":[1]}', "événement \x00 \u2028".encode(), b"\xff\x00\x80", b""):
        out = _letter(raw, 64 * 1024)
        letter = read_dead_letter(out)
        assert letter.payload_bytes() == raw and not letter.payload_truncated
        assert letter.payload_size == len(raw) and letter.payload_sha256 == hashlib.sha256(raw).hexdigest()
        assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("telemetry.v1", 3, 42)
        assert letter.key_bytes() == b"WT-001" and letter.received_at == RECEIVED
    assert read_dead_letter(_letter(b"ok", MIN_DEAD_LETTER_BYTES)).payload_encoding == "utf-8"
    assert read_dead_letter(_letter(b"\xff", MIN_DEAD_LETTER_BYTES)).payload_encoding == "base64"


def test_oversized_payload_is_truncated_with_size_and_hash() -> None:
    """Regression: a 1.5 MB payload gave a dead letter the topic refused (MessageSizeTooLargeError)."""
    raw = b'{"schema_version":1,"pad":"' + b"x" * 1_500_000 + b'"}'
    limit = 2_097_152 - DEAD_LETTER_RECORD_OVERHEAD  # fits the topic's default limit: kept whole
    out = _letter(raw, limit)
    assert len(out) <= limit and read_dead_letter(out).payload_bytes() == raw
    small = _letter(raw, 1_000_000)
    letter = read_dead_letter(small)
    assert len(small) <= 1_000_000 and letter.payload_truncated
    assert raw.startswith(letter.payload_bytes()) and len(letter.payload_bytes()) > 900_000
    assert letter.payload_size == len(raw) and letter.payload_sha256 == hashlib.sha256(raw).hexdigest()


def test_invalid_utf8_payload_is_base64_and_bounded() -> None:
    """Regression: 700 KB of 0xFF became a 2.1 MB envelope after UTF-8 replacement."""
    raw = b"\xff" * 700_000
    out = _letter(raw, 2_097_152 - DEAD_LETTER_RECORD_OVERHEAD)
    letter = read_dead_letter(out)
    assert letter.payload_encoding == "base64" and not letter.payload_truncated
    assert letter.payload_bytes() == raw and len(out) < 1_000_000
    out = _letter(raw, 500_000)
    letter = read_dead_letter(out)
    assert len(out) <= 500_000 and letter.payload_truncated and raw.startswith(letter.payload_bytes())


def test_escape_heavy_text_is_bounded() -> None:
    """Control characters cost 6 bytes each in JSON: the cut accounts for the escaping."""
    for raw in (b"\x01" * 900_000, b"a" * 400_000 + b"\x01" * 400_000, '"é'.encode() * 300_000):
        out = _letter(raw, 300_000)
        letter = read_dead_letter(out)
        assert len(out) <= 300_000 and letter.payload_truncated and raw.startswith(letter.payload_bytes())
        assert len(out) > 0.95 * 300_000  # the cut uses the room it has


def test_worst_case_metadata_still_fits_the_minimum() -> None:
    out = dead_letter_bytes(
        b"x" * 100_000,
        reason="\x01" * 10_000,
        code="\x01" * 100,
        source_topic="\x01" * 300,
        source_partition=2**62,
        source_offset=2**62,
        key=b"\x01" * 5000,
        received_at=RECEIVED,
        max_bytes=MIN_DEAD_LETTER_BYTES,
    )
    letter = read_dead_letter(out)
    assert len(out) <= MIN_DEAD_LETTER_BYTES and letter.payload_truncated and letter.payload


def test_key_and_reason_are_bounded_and_encoded() -> None:
    out = _letter(b"x", MIN_DEAD_LETTER_BYTES, key=b"\xff" * 100_000, reason="\ud800" + "r" * 100_000)
    letter = read_dead_letter(out)
    assert len(out) <= MIN_DEAD_LETTER_BYTES
    assert letter.key_encoding == "base64" and letter.key_truncated and letter.key_bytes() == b"\xff" * 1024
    assert len(letter.reason) <= MAX_REASON_CHARS and letter.reason.startswith("\\ud800")
    assert read_dead_letter(_letter(b"x", MIN_DEAD_LETTER_BYTES, key=None)).key_bytes() is None


def test_dead_letter_limit_below_minimum_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="minimum"):
        _letter(b"x", MIN_DEAD_LETTER_BYTES - 1)


def test_version_1_dead_letters_are_still_readable() -> None:
    old = orjson.dumps(
        {
            "schema_version": 1,
            "reason": "r",
            "code": "malformed_json",
            "source_topic": "telemetry.v1",
            "source_partition": 0,
            "source_offset": 1,
            "received_at": "2026-03-01T12:00:00Z",
            "payload": "{oops",
        }
    )
    letter = read_dead_letter(old)
    assert letter.schema_version == 2 and letter.payload_bytes() == b"{oops" and letter.payload_size == 5
    for bad in (b"[]", b"{", b'{"schema_version":2}'):
        with pytest.raises(InvalidEvent):
            read_dead_letter(bad)


def test_dead_letter_model_is_the_documented_envelope() -> None:
    fields = set(DeadLetter.model_fields)
    assert {
        "payload",
        "payload_encoding",
        "payload_size",
        "payload_sha256",
        "payload_truncated",
        "key",
    } <= fields
    assert set(orjson.loads(_letter(b"x", MIN_DEAD_LETTER_BYTES))) == fields
