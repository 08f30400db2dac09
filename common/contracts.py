"""Event contracts exchanged over Kafka.

Why a single module: producers, the scorer and tests must agree byte-for-byte on the telemetry
event, the dead-letter envelope and the sweep command. Every contract carries an explicit
``schema_version`` so that consumers can reject what they do not understand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import attrgetter, eq
from typing import Annotated, Any, Literal, get_args

import msgspec
import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

TELEMETRY_SCHEMA_VERSION: Literal[1] = 1
SUPPORTED_TELEMETRY_VERSIONS = frozenset({TELEMETRY_SCHEMA_VERSION})

#: Namespace for deterministic event ids: uuid5(namespace, "turbine_id|event_time").
EVENT_ID_NAMESPACE = uuid.UUID("6f1c3b8e-5d0a-4c53-9a77-0e0b6c1d2f41")

#: Numeric telemetry signals, in contract order. ``None`` means "no value" (sensor dropout).
SIGNALS: tuple[str, ...] = (
    "wind_speed_ms",
    "wind_direction_deg",
    "ambient_temp_c",
    "power_kw",
    "rotor_rpm",
    "generator_rpm",
    "pitch_angle_deg",
    "nacelle_direction_deg",
    "gearbox_oil_temp_c",
    "gearbox_bearing_temp_c",
    "generator_winding_temp_c",
    "generator_bearing_temp_c",
    "main_bearing_temp_c",
    "vibration_mm_s",
    "converter_temp_c",
    "pitch_hydraulic_pressure_bar",
)

#: Status codes carried by ``status_code`` (SCADA-like).
STATUS_OK = 0
STATUS_CURTAILED = 10
STATUS_LOW_WIND = 20
STATUS_HIGH_WIND_CUTOUT = 30
STATUS_MAINTENANCE = 40
STATUS_FAULT = 50
STATUS_ALARM_TEMPERATURE = 60
STATUS_ALARM_VIBRATION = 70
STATUS_ALARM_PRESSURE = 80

#: How far event time may run ahead of the wall clock before the event is refused (a sender's clock error).
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=10)

#: Oldest event time accepted by default. Why a floor and no age limit: imported history (years old) is
#: scored in event time, but an epoch-zero or year-1 timestamp is garbage that would poison windows.
DEFAULT_MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

#: Largest raw telemetry value parsed (a real event is ~600 bytes); anything bigger is refused unread.
MAX_TELEMETRY_BYTES = 64 * 1024

#: Turbine and site ids: an ASCII letter or digit, then up to 63 of letters, digits and ``._:/-``.
#: No space, NUL or control character: ids end up in SQL rows, URLs, Kafka keys and log lines.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
#: Event ids: 1-64 of letters, digits and ``._:-`` (``make_event_id`` gives a uuid).
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
#: ``event_time`` on the wire: ISO 8601 date, ``T`` (or a space), time, optional fraction, then a UTC
#: offset (``Z`` or ``+hh:mm``), e.g. ``2026-03-01T11:50:00Z``. A time without an offset is refused.
EVENT_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-5][0-9])$"
)
_IDENTIFIER_RE = re.compile(IDENTIFIER_PATTERN)
_EVENT_ID_RE = re.compile(EVENT_ID_PATTERN)
_EVENT_TIME_RE = re.compile(EVENT_TIME_PATTERN)
_MAX_EVENT_TIME_CHARS = 40

#: Longest ``InvalidEvent.reason`` / dead-letter ``reason`` (characters); longer ones are cut.
MAX_REASON_CHARS = 512

#: Stable ``InvalidEvent.code`` values (metrics label ``code``, dead-letter ``code``).
INVALID_EVENT_CODES: tuple[str, ...] = (
    "payload_too_large",  # raw value over MAX_TELEMETRY_BYTES
    "malformed_json",  # not JSON (incl. empty, non-UTF-8, BOM, NaN literal, nesting over 1024)
    "not_an_object",  # JSON, but not an object
    "unknown_schema_version",  # schema_version missing, of the wrong type or unsupported
    "non_finite",  # a number that is not finite
    "missing_field",  # a required field is absent
    "invalid_field",  # wrong JSON type, out of range, bad identifier, naive time, unknown field
    "duplicate_field",  # the same field twice in the object (ambiguous: parsers differ on which wins)
    "time_in_future",  # event_time > now + max_future_skew
    "time_too_old",  # event_time < min_event_time (or older than max_age when one is set)
    "key_mismatch",  # Kafka record key missing or != turbine_id (check_record_key)
    "invalid_payload",  # safety net: an unexpected error while validating (a bug to report)
)


def make_event_id(turbine_id: str, event_time: datetime) -> str:
    """Deterministic id: re-sending the same reading gives the same id, so consumers can deduplicate."""
    stamp = event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{turbine_id}|{stamp}"))


def _aware_utc(value: datetime) -> datetime:
    """``value`` in UTC; ValueError when it has no timezone or no UTC representation."""
    if value.tzinfo is None:
        raise ValueError("event_time must carry a timezone (UTC expected)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 has no UTC representation
        raise ValueError("event_time is out of range once converted to UTC") from None


class TelemetryEvent(BaseModel):
    """One SCADA reading of one turbine (version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: Literal[1] = TELEMETRY_SCHEMA_VERSION
    event_id: str = Field(min_length=1, max_length=64, pattern=EVENT_ID_PATTERN)
    turbine_id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, examples=["WT-007"])
    site_id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, examples=["SITE-A"])
    event_time: datetime
    wind_speed_ms: float | None = Field(default=None, ge=0, le=80)
    wind_direction_deg: float | None = Field(default=None, ge=0, le=360)
    ambient_temp_c: float | None = Field(default=None, ge=-60, le=70)
    power_kw: float | None = Field(default=None, ge=-200, le=20000)
    rotor_rpm: float | None = Field(default=None, ge=0, le=100)
    generator_rpm: float | None = Field(default=None, ge=0, le=3000)
    pitch_angle_deg: float | None = Field(default=None, ge=-10, le=100)
    nacelle_direction_deg: float | None = Field(default=None, ge=0, le=360)
    gearbox_oil_temp_c: float | None = Field(default=None, ge=-60, le=250)
    gearbox_bearing_temp_c: float | None = Field(default=None, ge=-60, le=250)
    generator_winding_temp_c: float | None = Field(default=None, ge=-60, le=300)
    generator_bearing_temp_c: float | None = Field(default=None, ge=-60, le=250)
    main_bearing_temp_c: float | None = Field(default=None, ge=-60, le=250)
    vibration_mm_s: float | None = Field(default=None, ge=0, le=200)
    converter_temp_c: float | None = Field(default=None, ge=-60, le=250)
    pitch_hydraulic_pressure_bar: float | None = Field(default=None, ge=0, le=400)
    status_code: int = Field(default=STATUS_OK, ge=0, le=999)

    @field_validator("event_time")
    @classmethod
    def _must_be_aware_utc(cls, value: datetime) -> datetime:
        return _aware_utc(value)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    def signal_values(self) -> tuple[float | None, ...]:
        return tuple(getattr(self, name) for name in SIGNALS)


def _safe_text(text: str, limit: int) -> str:
    """Bounded text that any UTF-8 encoder accepts (lone surrogates escaped), for reasons and logs."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InvalidEvent(Exception):
    """A payload does not satisfy its contract: ``code`` is stable (metrics, dead letters), ``reason`` is
    for humans, names the field and is bounded (``MAX_REASON_CHARS``, printable: safe to log)."""

    def __init__(self, reason: str, code: str, *, field: str | None = None) -> None:
        reason = _safe_text(reason, MAX_REASON_CHARS)
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.field = field


_FIELD_NAMES = frozenset(TelemetryEvent.model_fields)
_ID_FIELDS = {"turbine_id": _IDENTIFIER_RE, "site_id": _IDENTIFIER_RE, "event_id": _EVENT_ID_RE}
_ID_ALLOWED = {
    "turbine_id": "letters, digits and ._:/- (first a letter or digit), at most 64",
    "site_id": "letters, digits and ._:/- (first a letter or digit), at most 64",
    "event_id": "letters, digits and ._:- , 1 to 64",
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _preview(value: object, limit: int = 60) -> str:
    """A short, printable rendering of any JSON value (never fails: no huge-int repr, no surrogates)."""
    if value is None or isinstance(value, bool):
        return orjson.dumps(value).decode()
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        shown = ascii(value[:limit])
        return shown + ("..." if len(value) > limit else "")
    if isinstance(value, list):
        return f"<array of {len(value)} items>"
    if isinstance(value, dict):
        return f"<object of {len(value)} keys>"
    return f"<{type(value).__name__}>"


def _identifier_problem(name: str, value: str) -> str | None:
    """Why ``value`` is not a valid ``name`` (None when it is), precise enough to fix the sender."""
    if _ID_FIELDS[name].fullmatch(value):
        return None
    if not value:
        return f"{name}: must not be empty"
    if len(value) > 64:
        return f"{name}: {len(value)} characters, at most 64 allowed"
    for pos, char in enumerate(value):
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"{name}: control character U+{code:04X} at position {pos} (allowed: {_ID_ALLOWED[name]})"
    for pos, char in enumerate(value):
        if not _ID_FIELDS[name].fullmatch(("A" if pos else "") + char):
            return f"{name}: character {char!a} at position {pos} not allowed (allowed: {_ID_ALLOWED[name]})"
    return f"{name}: {_preview(value)} does not match {_ID_FIELDS[name].pattern}"  # pragma: no cover


# ------------------------------------------------------------------------------- telemetry wire decoding
# One msgspec call decodes AND validates a record: JSON syntax, UTF-8, object shape, required fields,
# unknown fields, strict JSON types (no "8.5" for a number, no true or 1.0 for an integer), ranges,
# lengths and patterns. The Struct below is GENERATED from ``TelemetryEvent``'s fields, so every range,
# length and pattern has one source (the model); Python adds only what msgspec cannot express: the size
# bound before decoding, duplicate fields, the calendar (``datetime.fromisoformat``) and the time limits.


def _anchored(pattern: str) -> str:
    """``pattern`` for msgspec (``re.search``): Python's ``$`` also matches before a final newline, so
    ``"WT-1\\n"`` would pass; ``\\Z`` is the end of the text (what pydantic's ``$`` means)."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"contract pattern must be anchored with ^...$: {pattern}")
    return pattern[:-1] + r"\Z"


def _wire_struct() -> tuple[type[msgspec.Struct], type[msgspec.Struct], dict[str, Any]]:
    """``(wire Struct, version-only Struct, defaults of the optional fields)`` from ``TelemetryEvent``.

    The wire form differs from the model in three ways: ``schema_version`` is required; ``event_time`` is
    a string of ``EVENT_TIME_PATTERN`` (converted by the caller); an omitted optional field decodes as
    ``UNSET`` (not its default) so that duplicates can be counted.
    """
    fields: list[tuple[str, Any, Any]] = []
    defaults: dict[str, Any] = {}
    version_type: Any = None
    for name, info in TelemetryEvent.model_fields.items():
        kind: Any
        if name == "schema_version":
            version_type = kind = info.annotation  # Literal[supported versions]: required on the wire
            fields.append((name, kind, msgspec.NODEFAULT))
            continue
        if name == "event_time":
            meta = msgspec.Meta(max_length=_MAX_EVENT_TIME_CHARS, pattern=_anchored(EVENT_TIME_PATTERN))
            fields.append((name, Annotated[str, meta], msgspec.NODEFAULT))
            continue
        args = [arg for arg in get_args(info.annotation) if arg is not type(None)]
        base = args[0] if args else info.annotation
        if base not in (str, int, float) or (base is str and not info.is_required()):  # pragma: no cover
            # a new kind of field needs a decision here (and an optional string breaks the quote count)
            raise TypeError(f"TelemetryEvent.{name}: no wire type for {info.annotation}")
        constraints: dict[str, Any] = {}
        for item in info.metadata:
            for attr in ("ge", "le", "min_length", "max_length", "pattern"):
                value = getattr(item, attr, None)
                if value is not None:
                    constraints[attr] = _anchored(value) if attr == "pattern" else value
        kind = Annotated[base, msgspec.Meta(**constraints)] if constraints else base
        if args:  # Optional in the model
            kind = kind | None
        if info.is_required():
            fields.append((name, kind, msgspec.NODEFAULT))
        else:
            defaults[name] = info.get_default()
            fields.append((name, kind | msgspec.UnsetType, msgspec.UNSET))
    # gc=False: only scalars inside, never part of a cycle (msgspec then skips GC tracking).
    wire = msgspec.defstruct("TelemetryWire", fields, forbid_unknown_fields=True, gc=False)
    probe = msgspec.defstruct("TelemetryVersion", [("schema_version", version_type)])
    return wire, probe, defaults


_WireEvent, _VersionProbe, _OPTIONAL_DEFAULTS = _wire_struct()


def _loose_struct() -> tuple[type[msgspec.Struct], dict[str, Any]]:
    """``(Struct, sentinels)``: the wire Struct without patterns, each omitted optional field decoding
    as a sentinel no valid value can be (below its ``ge`` bound: ``-inf`` for a float, ``ge - 1`` for an
    integer) instead of ``UNSET``. For :func:`decode_telemetry_batch`, which checks the patterns once per
    distinct id or time (or once per batch) and counts omitted fields over arrays; same field order."""
    fields: list[tuple[str, Any, Any]] = []
    sentinels: dict[str, Any] = {}
    for name in _WireEvent.__struct_fields__:
        info = TelemetryEvent.model_fields[name]
        if name == "schema_version":
            fields.append((name, info.annotation, msgspec.NODEFAULT))
            continue
        if name == "event_time":
            fields.append(
                (name, Annotated[str, msgspec.Meta(max_length=_MAX_EVENT_TIME_CHARS)], msgspec.NODEFAULT)
            )
            continue
        args = [arg for arg in get_args(info.annotation) if arg is not type(None)]
        base: Any = args[0] if args else info.annotation
        kind: Any
        constraints = {
            attr: getattr(item, attr)
            for item in info.metadata
            for attr in ("ge", "le", "min_length", "max_length")
            if getattr(item, attr, None) is not None
        }
        kind = Annotated[base, msgspec.Meta(**constraints)] if constraints else base
        if args:
            kind = kind | None
        if info.is_required():
            fields.append((name, kind, msgspec.NODEFAULT))
            continue
        if base not in (int, float) or "ge" not in constraints:  # pragma: no cover
            raise TypeError(f"TelemetryEvent.{name}: an optional field needs a lower bound (its sentinel)")
        sentinel = -math.inf if base is float else int(constraints["ge"]) - 1
        sentinels[name] = sentinel
        fields.append((name, kind, sentinel))
    struct = msgspec.defstruct("TelemetryLoose", fields, forbid_unknown_fields=True, gc=False)
    return struct, sentinels


_LooseEvent, _SENTINELS = _loose_struct()
_LOOSE_DECODER = msgspec.json.Decoder(_LooseEvent)
_GET_EVENT_ID = attrgetter("event_id")
_GET_TURBINE_ID = attrgetter("turbine_id")
_GET_SITE_ID = attrgetter("site_id")
_GET_EVENT_TIME = attrgetter("event_time")
_GET_SIGNALS = attrgetter(*SIGNALS)
_GET_STATUS = attrgetter("status_code")
_WIRE_DECODER = msgspec.json.Decoder(_WireEvent)
_N_FIELDS = len(_WireEvent.__struct_fields__)
_REQUIRED_FIELDS = tuple(name for name in _WireEvent.__struct_fields__ if name not in _OPTIONAL_DEFAULTS)
#: Fields that are strings on the wire (all required): each adds 2 quotes to a valid payload.
_N_STRING_FIELDS = sum(
    1 for name, info in TelemetryEvent.model_fields.items() if info.annotation in (str, datetime)
)
_UNSET = msgspec.UNSET
_asdict = msgspec.structs.asdict
_fromisoformat = datetime.fromisoformat
_new_object = object.__new__
_set_attribute = object.__setattr__


def _refusal(exc: msgspec.ValidationError, data: Any) -> InvalidEvent:
    """The :class:`InvalidEvent` for msgspec's first error on the object ``data`` (already decoded).

    msgspec decides what is wrong and where (``... - at `$.field` ``); this only picks the stable code
    and says it with the offending value, precisely enough for the sender to fix it.
    """
    text, _, where = str(exc).partition(" - at `$")
    field = where[1:-1] if where.startswith(".") else None
    if not isinstance(data, dict):
        return InvalidEvent(f"payload is not a JSON object (got {_json_type(data)})", "not_an_object")
    try:  # the version comes first: an unsupported version's other fields mean nothing to us
        msgspec.convert(data, _VersionProbe)
    except msgspec.ValidationError:
        return InvalidEvent(
            f"unsupported schema_version {_preview(data.get('schema_version'))};"
            f" supported: {sorted(SUPPORTED_TELEMETRY_VERSIONS)}",
            "unknown_schema_version",
            field="schema_version",
        )
    if field is None:  # about the object itself: an unknown field (seen first), else a missing one
        unknown = next((key for key in data if key not in _FIELD_NAMES), None)
        if unknown is not None:
            return InvalidEvent(
                f"{_preview(unknown)}: unknown field (extra fields are not allowed)", "invalid_field"
            )
        missing = next((name for name in _REQUIRED_FIELDS if name not in data), None)
        if missing is not None:
            return InvalidEvent(f"{missing}: required field is missing", "missing_field", field=missing)
        return InvalidEvent(f"invalid payload: {text}", "invalid_field")  # pragma: no cover
    value = data.get(field)
    if field in _ID_FIELDS and type(value) is str:
        reason = _identifier_problem(field, value) or f"{field}: {text}"
    elif field == "event_time" and type(value) is str:
        if len(value) < _MAX_EVENT_TIME_CHARS and _EVENT_TIME_RE.fullmatch(value + "Z"):
            reason = f"event_time: {_preview(value)} must carry a timezone offset (Z or +hh:mm)"
        else:
            reason = (
                f"event_time: {_preview(value)} is not an ISO 8601 date-time with offset"
                " (e.g. 2026-03-01T11:50:00Z)"
            )
    else:
        reason = f"{field}: {text[:1].lower()}{text[1:]} (value: {_preview(value)})"
    return InvalidEvent(reason, "invalid_field", field=field)


def _malformed(data: bytes, exc: Exception) -> InvalidEvent:
    """The refusal of bytes msgspec could not read, in orjson's words when it agrees (they say where:
    line, column, BOM, empty document; msgspec only gives a byte offset)."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as why:
        return InvalidEvent(f"malformed JSON: {why}", "malformed_json")
    return InvalidEvent(f"malformed JSON: {exc}", "malformed_json")


def _revalidated(data: bytes) -> msgspec.Struct:
    """Slow path, for a record msgspec refused: the refusal, or the Struct when the only wrong value was
    shadowed by a later duplicate of its key (the duplicate check then refuses the record).

    The whole text must be JSON before any field is judged (orjson's view, as before: a number beyond the
    double range or nesting over 1024 is not JSON), and the object is judged with the last of duplicated
    keys, as msgspec keeps it.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {exc}", "malformed_json") from None
    try:
        return msgspec.convert(value, _WireEvent)
    except msgspec.ValidationError as exc:
        raise _refusal(exc, value) from None


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, str):
        try:
            return raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidEvent(
                f"malformed JSON: text is not valid Unicode ({exc.reason})", "malformed_json"
            ) from None
    if raw is None:
        raise InvalidEvent("malformed JSON: empty record value (null / tombstone)", "malformed_json")
    raise InvalidEvent(f"malformed JSON: value is {type(raw).__name__}, not bytes", "malformed_json")


def parse_telemetry(
    raw: bytes | str,
    *,
    now: datetime | None = None,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    min_event_time: datetime = DEFAULT_MIN_EVENT_TIME,
    max_age: timedelta | None = None,
) -> TelemetryEvent:
    """Validate a raw Kafka value against the contract or raise :class:`InvalidEvent` with the reason.

    Raises nothing else, whatever the input (any bytes, any JSON): one bad record must never stop a
    stream. ``min_event_time`` is the floor against garbage timestamps; ``max_age`` (off by default) is an
    optional wall-clock age limit, left off so that imported history is scored in event time.
    ``now`` (the wall clock, tz-aware) only judges the future limit and ``max_age``.
    """
    current = now or datetime.now(UTC)
    if current.tzinfo is None or min_event_time.tzinfo is None:
        raise ValueError("parse_telemetry: now and min_event_time must be timezone-aware")  # caller's bug
    try:
        return _parse(raw, current, max_future_skew, min_event_time, max_age)
    except InvalidEvent:
        raise
    except Exception as exc:
        raise InvalidEvent(
            f"unexpected {type(exc).__name__} while validating: {exc}", "invalid_payload"
        ) from exc


def _parse(
    raw: object,
    current: datetime,
    max_future_skew: timedelta,
    min_event_time: datetime,
    max_age: timedelta | None,
) -> TelemetryEvent:
    data = raw if type(raw) is bytes else _as_bytes(raw)
    if len(data) > MAX_TELEMETRY_BYTES:
        raise InvalidEvent(
            f"payload of {len(data)} bytes exceeds the {MAX_TELEMETRY_BYTES} bytes accepted for one event",
            "payload_too_large",
        )
    try:  # JSON syntax, UTF-8, shape, types, ranges, lengths, patterns: one call
        wire = _WIRE_DECODER.decode(data)
    except msgspec.ValidationError:
        wire = _revalidated(data)
    except (msgspec.DecodeError, RecursionError) as exc:  # recursion: not expected (scalars only)
        raise _malformed(data, exc) from None
    values = _asdict(wire)
    present = _N_FIELDS
    fields_set: set[str] | None = None
    if _UNSET in values.values():  # a sender may omit optional fields: they take the model's default
        fields_set = set(values)
        for name, default in _OPTIONAL_DEFAULTS.items():
            if values[name] is _UNSET:
                values[name] = default
                fields_set.discard(name)
                present -= 1
    stamp = values["event_time"]
    try:
        when = _aware_utc(_fromisoformat(stamp))
    except ValueError as exc:  # the pattern matched, the calendar did not (2026-02-30, 24:00, +25:00)
        raise InvalidEvent(
            f"event_time: {_preview(stamp)} is not a valid date-time ({exc})",
            "invalid_field",
            field="event_time",
        ) from None
    # Every accepted string is free of quotes, so each key adds 2 quotes and each string value 2 more:
    # any surplus is a key given twice (msgspec silently keeps the last one).
    if data.count(b'"') != 2 * (present + _N_STRING_FIELDS):
        raise InvalidEvent(
            f"{_duplicate_field(data)}: field given more than once (ambiguous)", "duplicate_field"
        )
    if when < min_event_time:
        raise InvalidEvent(
            f"event_time {when.isoformat()} is before the accepted floor {min_event_time.isoformat()}",
            "time_too_old",
            field="event_time",
        )
    if when > _shifted(current, max_future_skew):
        raise InvalidEvent(
            f"event_time {when.isoformat()} is more than {max_future_skew} in the future",
            "time_in_future",
            field="event_time",
        )
    if max_age is not None and when < _shifted(current, max_age, earlier=True):
        raise InvalidEvent(
            f"event_time {when.isoformat()} is older than the accepted {max_age}",
            "time_too_old",
            field="event_time",
        )
    values["event_time"] = when
    return _event_from(values, fields_set)


def _event_from(values: dict[str, Any], fields_set: set[str] | None) -> TelemetryEvent:
    """``TelemetryEvent.model_construct(fields_set, **values)`` for ``values`` already validated and
    holding every field in model order: no second validation. It sets the same four attributes as
    pydantic's ``model_construct`` (this model has no aliases, extra, private attributes or post-init;
    ``test_contracts`` checks that the two agree) without its per-field Python loop, which cost more
    than decoding and validating the whole record (17 us against 8 us per event)."""
    event = _new_object(TelemetryEvent)
    _set_attribute(event, "__dict__", values)
    _set_attribute(event, "__pydantic_fields_set__", set(_FIELD_NAMES) if fields_set is None else fields_set)
    _set_attribute(event, "__pydantic_extra__", None)
    _set_attribute(event, "__pydantic_private__", None)
    return event


def _duplicate_field(raw: bytes) -> str:
    """Name a field that occurs twice in ``raw`` (slow path, only once duplicates are known to exist)."""
    seen: set[str] = set()
    dups: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        for key, _ in pairs:
            if key in seen:
                dups.append(key)
            seen.add(key)
        return {}

    try:
        json.loads(raw, object_pairs_hook=hook)
    except Exception:
        return "a field"
    return _preview(dups[0]) if dups else "a field"


def _shifted(moment: datetime, delta: timedelta, *, earlier: bool = False) -> datetime:
    """``moment + delta`` (``- delta`` when earlier), saturated at the calendar's ends: a huge skew or age
    means "no limit", not an error on every event."""
    try:
        return moment - delta if earlier else moment + delta
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if earlier else datetime.max.replace(tzinfo=UTC)


def check_record_key(event: TelemetryEvent, key: bytes | None) -> None:
    """Refuse a record whose Kafka key is missing or is not the event's ``turbine_id`` (UTF-8).

    Why: a turbine's state lives on the partition its key hashes to; a record elsewhere would break
    per-turbine ordering. It goes to the dead-letter topic with this reason; the sender fixes its key and
    re-publishes (nothing is lost).
    """
    expected = event.turbine_id.encode()
    if key is None:
        raise InvalidEvent(
            f"record has no key; the key must be the turbine_id {event.turbine_id!r}",
            "key_mismatch",
            field="key",
        )
    if bytes(key) != expected:
        try:
            shown = _preview(bytes(key).decode("utf-8"))
        except UnicodeDecodeError:
            shown = f"<{len(key)} non-UTF-8 bytes>"
        raise InvalidEvent(
            f"record key {shown} differs from turbine_id {event.turbine_id!r};"
            " the key must be the turbine_id",
            "key_mismatch",
            field="key",
        )


# ------------------------------------------------------------------------------- a batch, column-wise
_SEARCH = {
    name: re.compile(_anchored(pattern)).search
    for name, pattern in (
        ("event_id", EVENT_ID_PATTERN),
        ("turbine_id", IDENTIFIER_PATTERN),
        ("site_id", IDENTIFIER_PATTERN),
        ("event_time", EVENT_TIME_PATTERN),
    )
}
#: Every event id of a batch at once: ids joined by a newline (a character no id may hold).
_EVENT_IDS = re.compile(f"(?:{EVENT_ID_PATTERN[1:-1]}\n)*{EVENT_ID_PATTERN[1:-1]}")


@dataclass(slots=True)
class TelemetryBatch:
    """The valid events of a batch of raw values, column-wise (:func:`decode_telemetry_batch`).

    Row ``i`` is the value at ``positions[i]`` of the input (input order kept); ``signals`` holds
    :data:`SIGNALS` in that order, NaN where the event has no value; ``errors`` the refused values
    (input position, exception), in input order.
    """

    positions: list[int]
    event_id: list[str]
    turbine_id: list[str]
    site_id: list[str]
    event_time: list[datetime]  # aware, UTC
    ts: Any  # numpy float64 (n,): event_time as epoch seconds
    signals: Any  # numpy float64 (n, len(SIGNALS)), NaN = no value
    status_code: Any  # numpy int64 (n,)
    errors: list[tuple[int, Exception]]

    def __len__(self) -> int:
        return len(self.positions)

    @classmethod
    def failed(cls, exc: Exception) -> TelemetryBatch:
        """A batch of one value whose decoding raised ``exc`` (the caller's fallback)."""
        import numpy as np

        empty = np.empty(0, dtype=np.float64)
        sig = np.empty((0, len(SIGNALS)), dtype=np.float64)
        return cls([], [], [], [], [], empty, sig, np.empty(0, dtype=np.int64), [(0, exc)])

    @classmethod
    def join(cls, parts: Sequence[tuple[int, TelemetryBatch]]) -> TelemetryBatch:
        """One batch of ``parts`` (input offset, batch of the values from that offset on), in order."""
        import numpy as np

        out = cls.failed(Exception())
        out.errors = []
        for offset, b in parts:
            out.positions += [offset + p for p in b.positions]
            out.event_id += b.event_id
            out.turbine_id += b.turbine_id
            out.site_id += b.site_id
            out.event_time += b.event_time
            out.errors += [(offset + p, e) for p, e in b.errors]
        out.ts = np.concatenate([out.ts, *(b.ts for _, b in parts)])
        out.signals = np.concatenate([out.signals, *(b.signals for _, b in parts)])
        out.status_code = np.concatenate([out.status_code, *(b.status_code for _, b in parts)])
        return out

    def event(self, i: int) -> TelemetryEvent:
        """Row ``i`` as the model (what :func:`parse_telemetry` gives for its value)."""
        values: dict[str, Any] = {
            "schema_version": TELEMETRY_SCHEMA_VERSION,
            "event_id": self.event_id[i],
            "turbine_id": self.turbine_id[i],
            "site_id": self.site_id[i],
            "event_time": self.event_time[i],
        }
        for name, v in zip(SIGNALS, self.signals[i].tolist(), strict=True):
            values[name] = None if v != v else v
        values["status_code"] = int(self.status_code[i])
        return TelemetryEvent.model_validate(values)


def decode_telemetry_batch(
    values: Sequence[object],
    keys: Sequence[bytes | None] | None = None,
    *,
    now: datetime | None = None,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    min_event_time: datetime = DEFAULT_MIN_EVENT_TIME,
    max_age: timedelta | None = None,
) -> TelemetryBatch:
    """:func:`parse_telemetry` (then :func:`check_record_key` against ``keys[i]`` when keys are given)
    of every value, column-wise: the same events, the same refusals (code and reason), a fraction of
    the Python per event.

    How: one msgspec call per value into a Struct without patterns (:func:`_loose_struct`); then per
    batch the event-id pattern (one regular expression over all ids), the turbine and site patterns,
    calendar and time limits once per distinct string, the duplicate-field count over arrays, and the
    key. A value that fails any of it, or that msgspec refuses, is decided by :func:`parse_telemetry`
    itself (and :func:`check_record_key`), so every refusal is the one it gives: the fast path only
    accepts what it accepts. Raises nothing for a bad value (it is in ``errors``).
    """
    import numpy as np  # the scorer's path only: common stays importable without numpy

    current = now or datetime.now(UTC)
    if current.tzinfo is None or min_event_time.tzinfo is None:
        raise ValueError("decode_telemetry_batch: now and min_event_time must be timezone-aware")
    upper = _shifted(current, max_future_skew)
    lower = None if max_age is None else _shifted(current, max_age, earlier=True)
    decode = _LOOSE_DECODER.decode
    structs: list[Any] | None = None
    pos: list[int] = list(range(len(values)))
    slow: list[int] = []
    raws: Sequence[Any] = values
    if set(map(type, raws)) <= {bytes} and max(map(len, raws), default=0) <= MAX_TELEMETRY_BYTES:
        try:  # the usual batch: every value decodes
            structs = list(map(decode, raws))
        except Exception:
            structs = None
    if structs is None:  # record by record: what msgspec refuses (or is no bytes) is decided slowly
        structs, pos = [], []
        for i, raw in enumerate(values):
            if type(raw) is bytes and len(raw) <= MAX_TELEMETRY_BYTES:
                try:
                    structs.append(decode(raw))
                except Exception:  # msgspec refused it: parse_telemetry says why
                    slow.append(i)
                    continue
                pos.append(i)
            else:
                slow.append(i)
    m = len(structs)
    eids: list[str] = list(map(_GET_EVENT_ID, structs))
    tids: list[str] = list(map(_GET_TURBINE_ID, structs))
    sites: list[str] = list(map(_GET_SITE_ID, structs))
    stamps: list[str] = list(map(_GET_EVENT_TIME, structs))
    ok = np.ones(m, dtype=bool)
    nsig = len(SIGNALS)
    when: list[Any] = []
    ts = np.empty(0, dtype=np.float64)
    sig = np.empty((0, nsig), dtype=np.float64)
    status = np.empty(0, dtype=np.int64)
    if m:
        joined = "\n".join(eids)
        if joined.count("\n") != m - 1 or not _EVENT_IDS.fullmatch(joined):
            ok &= np.fromiter((_SEARCH["event_id"](e) is not None for e in eids), dtype=bool, count=m)
        for name, col in (("turbine_id", tids), ("site_id", sites)):
            search = _SEARCH[name]
            bad = {v for v in set(col) if search(v) is None}
            if bad:
                ok &= np.fromiter((v not in bad for v in col), dtype=bool, count=m)
        when_of: dict[str, datetime | None] = {}
        ts_of: dict[str, float] = {}
        for stamp in set(stamps):
            w = when_of[stamp] = _valid_time(stamp, min_event_time, upper, lower)
            ts_of[stamp] = math.nan if w is None else w.timestamp()
        when = [when_of[s] for s in stamps]
        ts = np.array([ts_of[s] for s in stamps], dtype=np.float64)
        ok &= ~np.isnan(ts)
        try:  # no null among the values (the usual batch): straight from the structs
            sig = np.fromiter(chain.from_iterable(map(_GET_SIGNALS, structs)), np.float64, m * nsig)
        except TypeError:  # a null: np.array makes it NaN
            sig = np.array(list(map(_GET_SIGNALS, structs)), dtype=np.float64)
        sig = sig.reshape(m, nsig)
        status = np.fromiter(map(_GET_STATUS, structs), dtype=np.int64, count=m)
        omitted_sig = sig == -math.inf
        omitted_status = status == _SENTINELS["status_code"]
        omitted = omitted_sig.sum(axis=1) + omitted_status
        # Each key adds 2 quotes and each string value 2 more (accepted strings hold none): a surplus
        # is a field given twice (msgspec keeps the last): parse_telemetry refuses it.
        expected = 2 * (_N_FIELDS - omitted + _N_STRING_FIELDS)
        quoted = [raws[p] for p in pos] if slow else raws
        quotes = list(map(bytes.count, quoted, repeat(b'"')))
        ok &= np.array(quotes, dtype=np.int64) == expected
        if omitted_sig.any():
            sig[omitted_sig] = math.nan  # the model's default: no value
        if omitted_status.any():
            status[omitted_status] = _OPTIONAL_DEFAULTS["status_code"]
        if keys is not None:
            encoded = {t: t.encode() for t in set(tids)}
            given = [keys[p] for p in pos] if slow else keys
            ok &= np.array(list(map(eq, given, map(encoded.__getitem__, tids))), dtype=bool)
    if ok.all():
        batch = TelemetryBatch(pos, eids, tids, sites, when, ts, sig, status, [])
    else:
        keep = np.flatnonzero(ok)
        idx = keep.tolist()
        slow.extend(pos[i] for i in np.flatnonzero(~ok).tolist())
        slow.sort()
        batch = TelemetryBatch(
            positions=[pos[i] for i in idx],
            event_id=[eids[i] for i in idx],
            turbine_id=[tids[i] for i in idx],
            site_id=[sites[i] for i in idx],
            event_time=[when[i] for i in idx],
            ts=ts[keep],
            signals=sig[keep],
            status_code=status[keep],
            errors=[],
        )
    if slow:
        _decide_slow(batch, values, keys, slow, current, max_future_skew, min_event_time, max_age)
    return batch


def _valid_time(stamp: str, floor: datetime, upper: datetime, lower: datetime | None) -> datetime | None:
    """The UTC time of a wire ``event_time`` the contract accepts, None for any other (decided slowly)."""
    if _SEARCH["event_time"](stamp) is None:
        return None
    try:
        when = _aware_utc(_fromisoformat(stamp))
    except ValueError:
        return None
    if when < floor or when > upper or (lower is not None and when < lower):
        return None
    return when


def _decide_slow(
    batch: TelemetryBatch,
    values: Sequence[object],
    keys: Sequence[bytes | None] | None,
    slow: list[int],
    current: datetime,
    max_future_skew: timedelta,
    min_event_time: datetime,
    max_age: timedelta | None,
) -> None:
    """The values the fast path did not accept, each by :func:`parse_telemetry` (+ the key check): a
    refusal goes to ``batch.errors``, an event (the fast path was only cautious) joins its rows in
    input order."""
    import numpy as np

    extra: list[tuple[int, TelemetryEvent]] = []
    for i in slow:
        try:
            ev = parse_telemetry(
                values[i],  # type: ignore[arg-type]
                now=current,
                max_future_skew=max_future_skew,
                min_event_time=min_event_time,
                max_age=max_age,
            )
            if keys is not None:
                check_record_key(ev, keys[i])
        except Exception as exc:  # InvalidEvent, or a key of a strange type: the caller decides
            batch.errors.append((i, exc))
            continue
        extra.append((i, ev))
    if not extra:
        return
    n = len(batch)
    order = np.argsort(np.array(batch.positions + [i for i, _ in extra], dtype=np.int64), kind="stable")
    rows = order.tolist()
    evs = [ev for _, ev in extra]

    def merged(column: list[Any], more: list[Any]) -> list[Any]:
        both = column + more
        return [both[r] for r in rows]

    batch.positions = merged(batch.positions, [i for i, _ in extra])
    batch.event_id = merged(batch.event_id, [e.event_id for e in evs])
    batch.turbine_id = merged(batch.turbine_id, [e.turbine_id for e in evs])
    batch.site_id = merged(batch.site_id, [e.site_id for e in evs])
    batch.event_time = merged(batch.event_time, [e.event_time for e in evs])
    more_ts = np.array([e.event_time.timestamp() for e in evs], dtype=np.float64)
    batch.ts = np.concatenate([batch.ts, more_ts])[order]
    more_sig = np.array([e.signal_values() for e in evs], dtype=np.float64).reshape(len(evs), len(SIGNALS))
    batch.signals = np.concatenate([batch.signals.reshape(n, len(SIGNALS)), more_sig])[order]
    more_status = np.array([e.status_code for e in evs], dtype=np.int64)
    batch.status_code = np.concatenate([batch.status_code, more_status])[order]


# ---------------------------------------------------------------------------------------- dead letters
DEAD_LETTER_SCHEMA_VERSION: Literal[2] = 2
#: Record keys longer than this are cut in the envelope (``key_truncated``).
MAX_DEAD_LETTER_KEY_BYTES = 1024
#: Smallest ``max_bytes`` accepted by :func:`dead_letter_bytes` (room for every bounded field, escaped).
MIN_DEAD_LETTER_BYTES = 16 * 1024
#: Bytes to keep free below a topic's ``max.message.bytes`` (record batch header, record key, headers).
#: ``max_bytes = min(topic max.message.bytes, producer max_request_size) - DEAD_LETTER_RECORD_OVERHEAD``.
DEAD_LETTER_RECORD_OVERHEAD = 2048

PayloadEncoding = Literal["utf-8", "base64"]


def _encode_bytes(data: bytes) -> tuple[str, PayloadEncoding]:
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def _decode_text(text: str, encoding: str) -> bytes:
    return base64.b64decode(text, validate=True) if encoding == "base64" else text.encode("utf-8")


class DeadLetter(BaseModel):
    """Envelope written to the dead-letter topic (version 2): the refused record and why.

    ``payload`` is the original value as UTF-8 text when it decodes, else base64 (``payload_encoding``);
    when the envelope would exceed the topic's size limit the payload is cut (``payload_truncated``) and
    ``payload_size`` / ``payload_sha256`` still describe the whole original. Same scheme for the record key.
    Build it with :func:`dead_letter_bytes`, read it with :func:`read_dead_letter`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2] = DEAD_LETTER_SCHEMA_VERSION
    reason: str = Field(max_length=MAX_REASON_CHARS)
    code: str = Field(min_length=1, max_length=64)
    source_topic: str = Field(max_length=249)
    source_partition: int | None = None
    source_offset: int | None = None
    received_at: datetime
    key: str | None = None
    key_encoding: PayloadEncoding = "utf-8"
    key_truncated: bool = False
    payload: str
    payload_encoding: PayloadEncoding = "utf-8"
    payload_size: int = Field(ge=0)
    payload_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    payload_truncated: bool = False

    @model_validator(mode="before")
    @classmethod
    def _describe_complete_payload(cls, data: Any) -> Any:
        """Fill ``payload_size`` / ``payload_sha256`` when omitted for a complete payload (v1 envelopes)."""
        if isinstance(data, dict) and "payload_sha256" not in data and not data.get("payload_truncated"):
            payload = data.get("payload")
            if isinstance(payload, str):
                try:
                    original = _decode_text(payload, str(data.get("payload_encoding", "utf-8")))
                except (ValueError, UnicodeEncodeError):
                    return data
                data = {**data, "payload_sha256": hashlib.sha256(original).hexdigest()}
                data.setdefault("payload_size", len(original))
        return data

    def payload_bytes(self) -> bytes:
        """The original record value (its first bytes only when ``payload_truncated``)."""
        return _decode_text(self.payload, self.payload_encoding)

    def key_bytes(self) -> bytes | None:
        return None if self.key is None else _decode_text(self.key, self.key_encoding)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


def _fit_text(data: bytes, budget: int) -> str:
    """A long prefix of valid UTF-8 ``data`` whose JSON string encoding is at most ``budget`` bytes.

    Escapes make the encoding up to 6x the raw size, so the cut is searched: two proportional guesses,
    then bisection until the room or the cut is within 1 %, at most 12 rounds (each encodes a prefix).
    """
    best = ""  # always fits: budget >= 2 since max_bytes >= MIN_DEAD_LETTER_BYTES
    hi = min(len(data), max(budget - 2, 0))  # n raw bytes encode to at least n + 2 bytes
    lo, n = 0, hi
    hi += 1  # smallest length known not to fit
    for rounds in range(12):
        piece = data[:n].decode("utf-8", "ignore")  # drops only a character cut in half at the end
        size = len(orjson.dumps(piece))
        if size <= budget:
            lo, best = n, piece
            if size >= budget - budget // 128:  # fills 99 % of the room
                break
        else:
            hi = n
        if hi - lo <= max(1, lo // 128):  # within 1 % of the best cut: good enough, stop paying
            break
        n = n * budget // size if size > budget and rounds < 2 else (lo + hi) // 2
        n = min(max(n, lo + 1), hi - 1)
    return best


def dead_letter_bytes(
    raw: bytes | None,
    *,
    reason: str,
    code: str,
    source_topic: str,
    source_partition: int | None,
    source_offset: int | None,
    key: bytes | None,
    received_at: datetime,
    max_bytes: int,
) -> bytes:
    """The JSON :class:`DeadLetter` for a refused record, ALWAYS at most ``max_bytes`` long.

    Lossless when it fits (UTF-8 text or base64); otherwise the payload is cut and flagged, with the
    original size and sha256. Why bounded: a dead letter the topic refuses would stop the stream.
    ``max_bytes`` must be at least ``MIN_DEAD_LETTER_BYTES`` (a configuration error otherwise).
    """
    if max_bytes < MIN_DEAD_LETTER_BYTES:
        raise ValueError(
            f"max_bytes={max_bytes} is below the minimum {MIN_DEAD_LETTER_BYTES} for a dead letter"
        )
    value = b"" if raw is None else bytes(raw)
    key_text: str | None = None
    key_encoding: PayloadEncoding = "utf-8"
    key_truncated = False
    if key is not None:
        key_raw = bytes(key)
        key_truncated = len(key_raw) > MAX_DEAD_LETTER_KEY_BYTES
        key_raw = key_raw[:MAX_DEAD_LETTER_KEY_BYTES]
        key_text, key_encoding = _encode_bytes(key_raw)
    text, encoding = _encode_bytes(value)
    fields: dict[str, Any] = {
        "reason": _safe_text(reason, MAX_REASON_CHARS),
        "code": _safe_text(code, 64) or "unknown",
        "source_topic": _safe_text(source_topic, 249),
        "source_partition": source_partition,
        "source_offset": source_offset,
        "received_at": received_at,
        "key": key_text,
        "key_encoding": key_encoding,
        "key_truncated": key_truncated,
        "payload_encoding": encoding,
        "payload_size": len(value),
        "payload_sha256": hashlib.sha256(value).hexdigest(),
    }
    # The whole payload encodes to at least its raw size (text) or its base64 size: try it only if that fits.
    out = DeadLetter(**fields, payload=text).to_json() if max(len(value), len(text)) < max_bytes else b""
    if not out or len(out) > max_bytes:
        skeleton = len(DeadLetter(**fields, payload="", payload_truncated=True).to_json())
        budget = max_bytes - (skeleton - 2)  # room for the payload's JSON string, quotes included
        if encoding == "base64":
            cut = base64.b64encode(value[: max(budget - 2, 0) // 4 * 3]).decode("ascii")
        else:
            cut = _fit_text(value, budget)
        out = DeadLetter(**fields, payload=cut, payload_truncated=True).to_json()
    if len(out) > max_bytes:  # an invariant, checked even under python -O
        raise AssertionError(f"dead letter of {len(out)} bytes exceeds max_bytes={max_bytes}")
    return out


def read_dead_letter(raw: bytes) -> DeadLetter:
    """Decode a dead-letter record (version 2, or a version 1 envelope upgraded) or raise InvalidEvent."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {exc}", "malformed_json") from None
    if not isinstance(data, dict):
        raise InvalidEvent(f"dead letter is not a JSON object (got {_json_type(data)})", "not_an_object")
    version = data.get("schema_version")
    if type(version) is int and version == 1:  # v1: payload was text after UTF-8 replacement, no size/hash
        data = {k: v for k, v in data.items() if k != "schema_version"}
    try:
        return DeadLetter.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = ".".join(str(p) for p in first["loc"]) or "<root>"
        kind = "missing_field" if first["type"] == "missing" else "invalid_field"
        raise InvalidEvent(f"dead letter {loc}: {first['msg']}", kind, field=loc) from None


class SweepCommand(BaseModel):
    """Command sent on the scorer's command topic to ask for a full-fleet sweep."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    command: Literal["sweep"] = "sweep"
    run_id: uuid.UUID
    requested_at: datetime
    requested_by: str = "api"

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


#: Findings after which the component was replaced/repaired: the window before it no longer describes it.
REPAIR_FINDINGS: frozenset[str] = frozenset({"failure_confirmed", "preventive_replacement"})


class RepairCommand(BaseModel):
    """Command on the scorer's command topic: forget a turbine's history before its repair
    (published by the API when an intervention is recorded as done; see scorer/repairs.py)."""

    model_config = ConfigDict(extra="forbid", strict=False)

    schema_version: Literal[1] = 1
    command: Literal["repair"] = "repair"
    intervention_id: uuid.UUID
    turbine_id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)
    done_at: AwareDatetime
    component: str = Field(min_length=1, max_length=64)
    finding: Literal["failure_confirmed", "preventive_replacement"]
    requested_at: AwareDatetime
    requested_by: str = Field(default="api", max_length=64)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


Tier = Literal["critical", "high", "moderate", "low", "unknown"]
TIERS: tuple[str, ...] = ("critical", "high", "moderate", "low", "unknown")


def dumps(obj: Any) -> bytes:
    """orjson with numpy and datetime support; one place so every component serialises alike."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
