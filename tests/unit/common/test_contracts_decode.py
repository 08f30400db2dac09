"""The msgspec decoder of ``parse_telemetry``: what it changes under the hood must not change the contract.

Numbers as JSON gives them (ints in float fields, floats or booleans in integer fields, integers beyond 64
bits, NaN/Infinity literals), nested values, the 64 KiB bound, duplicate keys (also when the first value is
wrong), bytes that are not UTF-8, a BOM, the time grammar; and the event built without a second validation
is the pydantic model callers know (equality, ``__dict__``, ``model_fields_set``, ``model_dump``, frozen).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from common.contracts import (
    INVALID_EVENT_CODES,
    MAX_REASON_CHARS,
    MAX_TELEMETRY_BYTES,
    SIGNALS,
    InvalidEvent,
    TelemetryEvent,
    make_event_id,
    parse_telemetry,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
WHEN = datetime(2026, 3, 1, 11, 50, tzinfo=UTC)
FAST = settings(max_examples=150, deadline=None)


def _record(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema_version": 1,
        "event_id": make_event_id("WT-001", WHEN),
        "turbine_id": "WT-001",
        "site_id": "SITE-A",
        "event_time": "2026-03-01T11:50:00Z",
        **dict.fromkeys(SIGNALS, 1.0),
        "status_code": 0,
    }
    base.update(over)
    return base


def _raw(**over: Any) -> bytes:
    return json.dumps(_record(**over)).encode()  # Python's json: writes NaN, Infinity and big integers


def _with(field: str, literal: bytes, record: dict[str, Any] | None = None) -> bytes:
    """A valid record whose ``field`` holds the JSON text ``literal`` as is."""
    data = dict(record or _record())
    data[field] = orjson.Fragment(literal)
    return orjson.dumps(data)


def _refused(raw: object, **kwargs: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        parse_telemetry(raw, now=NOW, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert error.code in INVALID_EVENT_CODES and error.code != "invalid_payload", error.reason
    assert 0 < len(error.reason) <= MAX_REASON_CHARS
    error.reason.encode("utf-8")
    return error


# ----------------------------------------------------------------------------------------------- numbers
def test_integers_in_float_fields_are_floats() -> None:
    event = parse_telemetry(_with("power_kw", b"900"), now=NOW)
    assert event.power_kw == 900.0 and type(event.power_kw) is float
    assert type(parse_telemetry(_with("wind_speed_ms", b"-0"), now=NOW).wind_speed_ms) is float
    assert parse_telemetry(_with("power_kw", b"9.5e2"), now=NOW).power_kw == 950.0


@pytest.mark.parametrize("literal", [b"1.0", b"0.0", b"1e2", b"1E0", b"-0.0"])
@pytest.mark.parametrize("field", ["status_code", "schema_version"])
def test_floats_are_not_integers(field: str, literal: bytes) -> None:
    error = _refused(_with(field, literal))
    expected = "unknown_schema_version" if field == "schema_version" else "invalid_field"
    assert error.code == expected and error.field == field and field in error.reason


@pytest.mark.parametrize("literal", [b"true", b"false"])
@pytest.mark.parametrize("field", ["power_kw", "vibration_mm_s", "status_code", "schema_version"])
def test_booleans_are_not_numbers(field: str, literal: bytes) -> None:
    error = _refused(_with(field, literal))
    assert error.field == field and field in error.reason
    assert error.code == ("unknown_schema_version" if field == "schema_version" else "invalid_field")


@pytest.mark.parametrize(
    ("literal", "code"),
    [
        (b"9223372036854775807", "invalid_field"),  # 2**63 - 1: out of every range
        (b"9223372036854775808", "invalid_field"),  # 2**63
        (b"18446744073709551616", "invalid_field"),  # 2**64: a double for the decoders, still out of range
        (b"-18446744073709551617", "invalid_field"),
        (b"1" + b"0" * 400, "malformed_json"),  # beyond the double range: not JSON a decoder can hold
        (b"1e400", "malformed_json"),
        (b"-1e400", "malformed_json"),
    ],
)
@pytest.mark.parametrize("field", ["power_kw", "status_code"])
def test_big_numbers_are_refused(field: str, literal: bytes, code: str) -> None:
    error = _refused(_with(field, literal))
    assert error.code == code
    if code == "invalid_field":
        assert error.field == field and field in error.reason


def test_bounds_are_inclusive_and_exact() -> None:
    """The generated constraints are the model's ``Field(ge, le)``: both ends in, just beyond them out."""
    for field, low, high in (("power_kw", -200.0, 20000.0), ("vibration_mm_s", 0.0, 200.0)):
        assert getattr(parse_telemetry(_raw(**{field: low}), now=NOW), field) == low
        assert getattr(parse_telemetry(_raw(**{field: high}), now=NOW), field) == high
        below = _refused(_raw(**{field: low - abs(low) * 1e-15 - 1e-300}))
        above = _refused(_raw(**{field: high * (1 + 1e-15)}))
        assert below.code == above.code == "invalid_field" and below.field == above.field == field
    assert parse_telemetry(_raw(status_code=999), now=NOW).status_code == 999
    assert _refused(_raw(status_code=1000)).field == "status_code"
    assert _refused(_raw(status_code=-1)).field == "status_code"


@pytest.mark.parametrize("literal", [b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"nan", b"inf"])
@pytest.mark.parametrize("field", ["power_kw", "status_code", "turbine_id", "surprise"])
def test_non_finite_literals_are_not_json(field: str, literal: bytes) -> None:
    assert _refused(_with(field, literal)).code == "malformed_json"


# ------------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("value", [{"a": 1}, {"power_kw": 1.0}, [], [1.0], [[[]]], {"a": {"b": [1]}}])
@pytest.mark.parametrize("field", ["power_kw", "status_code", "turbine_id", "event_time", "event_id"])
def test_nested_values_name_their_field(field: str, value: Any) -> None:
    error = _refused(_raw(**{field: value}))
    assert error.code == "invalid_field" and error.field == field and field in error.reason


def test_nested_value_under_an_unknown_field() -> None:
    error = _refused(_raw(extra={"deep": [[[[1]]]]}))
    assert error.code == "invalid_field" and "'extra'" in error.reason and "unknown field" in error.reason


def test_version_is_judged_before_the_other_fields() -> None:
    """A future version's new fields or types must say "unsupported version", whatever their order."""
    record = {"power_kw": "eleven", "firmware": "2.1", **_record(schema_version=2)}
    assert _refused(json.dumps(record).encode()).code == "unknown_schema_version"
    missing = {k: v for k, v in _record(power_kw="x").items() if k != "schema_version"}
    assert _refused(json.dumps(missing).encode()).code == "unknown_schema_version"


def test_json_is_checked_before_fields() -> None:
    """A wrong value early in a text that is not JSON later is malformed, not a field error."""
    raw = _raw(power_kw="x")[:-1] + b", oops}"
    assert _refused(raw).code == "malformed_json"
    assert _refused(b'{"schema_version":1,"power_kw":"x"').code == "malformed_json"


def test_missing_fields_are_named() -> None:
    for field in ("event_id", "turbine_id", "site_id", "event_time"):
        for dropped in (set(), {"wind_speed_ms", "status_code"}):  # omitted optional fields are no matter
            raw = json.dumps({k: v for k, v in _record().items() if k != field and k not in dropped})
            error = _refused(raw.encode())
            assert error.code == "missing_field" and error.field == field and field in error.reason
    error = _refused(json.dumps({"schema_version": 1, "surprise": 1}).encode())
    assert error.code == "invalid_field" and "surprise" in error.reason  # an unknown field is said first


def test_optional_fields_may_be_omitted_and_keep_defaults() -> None:
    raw = json.dumps({k: v for k, v in _record().items() if k not in {"power_kw", "status_code"}}).encode()
    event = parse_telemetry(raw, now=NOW)
    assert event.power_kw is None and event.status_code == 0
    assert event.model_fields_set == set(TelemetryEvent.model_fields) - {"power_kw", "status_code"}


# ------------------------------------------------------------------------------------------------ bounds
def test_size_bound_is_exact() -> None:
    body = orjson.dumps(_record())
    at_limit = body[:-1] + b" " * (MAX_TELEMETRY_BYTES - len(body)) + b"}"
    assert len(at_limit) == MAX_TELEMETRY_BYTES and parse_telemetry(at_limit, now=NOW)
    over = body[:-1] + b" " * (MAX_TELEMETRY_BYTES - len(body) + 1) + b"}"
    error = _refused(over)
    assert error.code == "payload_too_large" and str(MAX_TELEMETRY_BYTES + 1) in error.reason
    assert _refused(over.decode()).code == "payload_too_large"  # text input: its UTF-8 size counts
    assert _refused(b"\xff" * (MAX_TELEMETRY_BYTES + 1)).code == "payload_too_large"  # refused unread


# -------------------------------------------------------------------------------------------- duplicates
@pytest.mark.parametrize(
    ("first", "last", "code"),
    [
        (b'"lots"', b"1.0", "duplicate_field"),  # the wrong value is shadowed: still refused, as ambiguous
        (b"1.0", b"2.0", "duplicate_field"),
        (b"1.0", b'"lots"', "invalid_field"),  # the value kept is wrong: that is what is said
        (b"null", b"1.0", "duplicate_field"),
    ],
)
def test_duplicate_keys_whatever_the_values(first: bytes, last: bytes, code: str) -> None:
    body = orjson.dumps({k: v for k, v in _record().items() if k != "power_kw"})
    raw = b'{"power_kw":' + first + b"," + body[1:-1] + b',"power_kw":' + last + b"}"
    error = _refused(raw)
    assert error.code == code and "power_kw" in error.reason


def test_duplicates_are_counted_when_other_fields_are_omitted() -> None:
    record = {k: v for k, v in _record().items() if k not in {"power_kw", "rotor_rpm", "status_code"}}
    raw = orjson.dumps(record)
    assert parse_telemetry(raw, now=NOW)
    twice = raw[:-1] + b',"wind_speed_ms":1.0}'
    error = _refused(twice)
    assert error.code == "duplicate_field" and "wind_speed_ms" in error.reason
    escaped = raw[:-1] + b',"wind\\u005fspeed_ms":2.0}'  # the same key spelt with an escape
    assert _refused(escaped).code == "duplicate_field"


# ---------------------------------------------------------------------------------------- bytes and text
@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(_record()).replace(b"WT-001", b"WT-\xff01"),  # invalid byte in a string
        orjson.dumps(_record()).replace(b"WT-001", b"WT-\xc0\xaf1"),  # overlong encoding
        orjson.dumps(_record()).replace(b"WT-001", b"WT-\xed\xa0\x801"),  # encoded surrogate
        orjson.dumps(_record()).replace(b"WT-001", b"WT-\xe2\x82"),  # cut multi-byte character
        orjson.dumps(_record()).replace(b'"power_kw"', b'"power_\xffkw"'),  # in a key
        b"\xef\xbb\xbf" + orjson.dumps(_record()),  # UTF-8 BOM
        b"\xff\xfe" + orjson.dumps(_record()).decode().encode("utf-16-le"),  # UTF-16 with BOM
        orjson.dumps(_record()).replace(b"WT-001", b'WT-\\ud800"'),  # escaped lone surrogate
    ],
)
def test_not_utf8_or_bom_is_malformed(raw: bytes) -> None:
    assert _refused(raw).code == "malformed_json"


def test_bom_inside_a_string_is_a_field_error() -> None:
    error = _refused(orjson.dumps(_record(turbine_id="WT\ufeff1")))
    assert error.code == "invalid_field" and error.field == "turbine_id" and "\\ufeff" in error.reason


@pytest.mark.parametrize("field", ["turbine_id", "site_id", "event_id", "event_time"])
def test_a_final_newline_is_not_the_end_of_a_string(field: str) -> None:
    """msgspec matches patterns with ``re.search``, where ``$`` also matches before a final newline."""
    value = _record()[field] + "\n"
    error = _refused(orjson.dumps(_record(**{field: value})))
    assert error.code == "invalid_field" and error.field == field


def test_whitespace_around_the_object_and_text_input() -> None:
    body = orjson.dumps(_record())
    assert parse_telemetry(b" \t\r\n" + body + b"\n", now=NOW) == parse_telemetry(body, now=NOW)
    assert parse_telemetry(body.decode(), now=NOW) == parse_telemetry(memoryview(body), now=NOW)  # type: ignore[arg-type]
    assert _refused(body + b" x").code == "malformed_json"
    assert _refused(body + body).code == "malformed_json"


# -------------------------------------------------------------------------------------------------- time
@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-03-01T11:50:00Z", WHEN),
        ("2026-03-01 11:50:00Z", WHEN),
        ("2026-03-01T11:50Z", WHEN),
        ("2026-03-01T12:50:00+01:00", WHEN),
        ("2026-03-01T12:50:00+0100", WHEN),
        ("2026-03-01T11:50:00-00:00", WHEN),
        ("2026-03-01T11:50:00.9999999Z", WHEN.replace(microsecond=999999)),  # cut to the microsecond
        ("2026-03-01T11:50:00.123456789Z", WHEN.replace(microsecond=123456)),
        ("2026-03-01T11:50:00.5Z", WHEN.replace(microsecond=500000)),
    ],
)
def test_time_forms_accepted(stamp: str, expected: datetime) -> None:
    event = parse_telemetry(_raw(event_time=stamp), now=NOW)
    assert event.event_time == expected and event.event_time.tzinfo is UTC


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-03-01t11:50:00Z",
        "2026-03-01T11:50:00z",
        "2026-03-01T11:50:00+12:60",
        "2026-03-01T11:50:00+01",
        "2026-03-01T11:50:00.Z",
        "2026-03-01T11:50:00.1234567890Z",
        "2026-03-01T24:00:00Z",
        "2026-03-01T23:59:60Z",
        "2026-02-29T11:50:00Z",
        "2026-03-01T11:50:00+25:00",
        "0000-01-01T00:00:00Z",
        "2026-03-01",
        "2026-03-01T11:50:00",
        " 2026-03-01T11:50:00Z",
    ],
)
def test_time_forms_refused(stamp: str) -> None:
    error = _refused(_raw(event_time=stamp))
    assert error.code == "invalid_field" and error.field == "event_time" and "event_time" in error.reason


def test_time_limits_follow_now() -> None:
    raw = _raw(event_time="2026-03-01T12:10:00Z")
    assert parse_telemetry(raw, now=NOW)  # exactly at the skew: accepted
    assert _refused(raw, max_future_skew=timedelta(minutes=10) - timedelta(microseconds=1)).code == (
        "time_in_future"
    )
    assert _refused(_raw(event_time="1999-12-31T23:59:59.999999Z")).code == "time_too_old"
    assert parse_telemetry(_raw(event_time="2000-01-01T00:00:00Z"), now=NOW)


# ------------------------------------------------------------------------------- the event callers get
def test_event_is_the_model_pydantic_would_build() -> None:
    raw = _raw(power_kw=900, status_code=40)
    event = parse_telemetry(raw, now=NOW)
    validated = TelemetryEvent.model_validate_json(raw)
    constructed = TelemetryEvent.model_construct(**validated.__dict__)
    for other in (validated, constructed):
        assert event == other and other == event and hash(event) == hash(other)
        assert event.__dict__ == other.__dict__ and list(event.__dict__) == list(TelemetryEvent.model_fields)
        assert event.model_fields_set == other.model_fields_set
        for slot in ("__pydantic_extra__", "__pydantic_private__"):
            assert getattr(event, slot) == getattr(other, slot)
    assert event.model_dump() == validated.model_dump() and event.to_json() == validated.to_json()
    assert type(event.status_code) is int and type(event.power_kw) is float
    with pytest.raises(ValidationError):
        event.power_kw = 1.0  # type: ignore[misc]  # frozen, like every TelemetryEvent
    copy = event.model_copy(update={"power_kw": 1.0})
    assert copy.power_kw == 1.0 and event.power_kw == 900.0 and "power_kw" in copy.model_fields_set


def test_model_has_nothing_model_construct_would_add() -> None:
    """Events are built like ``model_construct`` for a model without aliases, extras, private attributes
    or post-init: if the model gains one, the fast constructor must be revisited."""
    assert not TelemetryEvent.__private_attributes__
    assert TelemetryEvent.model_config.get("extra") == "forbid"
    assert TelemetryEvent.__pydantic_post_init__ is None
    assert all(f.alias is None and f.validation_alias is None for f in TelemetryEvent.model_fields.values())


# ------------------------------------------------------- the decoder agrees with the model it comes from
@FAST
@given(
    st.sampled_from(SIGNALS),
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53) | st.floats(-500, 25_000),
)
def test_signal_ranges_agree_with_the_model(field: str, value: float) -> None:
    record = _record(**{field: value})
    try:
        expected: TelemetryEvent | None = TelemetryEvent.model_validate({**record, "event_time": WHEN})
    except ValidationError:
        expected = None
    try:
        got: TelemetryEvent | None = parse_telemetry(orjson.dumps(record), now=NOW)
    except InvalidEvent as error:
        assert error.code == "invalid_field" and error.field == field
        got = None
    assert got == expected


@FAST
@given(
    st.sampled_from(["turbine_id", "site_id", "event_id"]),
    st.text(max_size=70) | st.text("AZaz09._:/- \n\t\x00é", max_size=70),
)
def test_identifier_patterns_agree_with_the_model(field: str, value: str) -> None:
    record = _record(**{field: value})
    try:
        expected: TelemetryEvent | None = TelemetryEvent.model_validate({**record, "event_time": WHEN})
    except ValidationError:
        expected = None
    try:
        got: TelemetryEvent | None = parse_telemetry(json.dumps(record).encode(), now=NOW)
    except InvalidEvent as error:
        assert error.code in {"invalid_field", "malformed_json"}  # malformed: a lone surrogate
        got = None
    assert got == expected


@FAST
@given(st.sets(st.sampled_from((*SIGNALS, "status_code"))), st.lists(st.sampled_from(SIGNALS), max_size=2))
def test_omitted_and_repeated_fields(omitted: set[str], repeated: list[str]) -> None:
    record = {k: v for k, v in _record().items() if k not in omitted}
    raw = orjson.dumps(record)
    for name in repeated:
        raw = raw[:-1] + b"," + orjson.dumps({name: 2.0})[1:]
    if any((name in record) + repeated.count(name) > 1 for name in repeated):
        assert _refused(raw).code == "duplicate_field"
    else:
        event = parse_telemetry(raw, now=NOW)
        assert event.model_fields_set == set(record) | set(repeated)
        assert all(
            getattr(event, name) == (0 if name == "status_code" else None) for name in omitted - set(repeated)
        )
