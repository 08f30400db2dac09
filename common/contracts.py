"""Event contracts exchanged over Kafka.

Why a single module: producers, the scorer and tests must agree byte-for-byte on the telemetry
event, the dead-letter envelope and the sweep command. Every contract carries an explicit
``schema_version`` so that consumers can reject what they do not understand.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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

#: How far event time may deviate from wall-clock before the scorer rejects the event.
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=10)


def make_event_id(turbine_id: str, event_time: datetime) -> str:
    """Deterministic id: re-sending the same reading gives the same id, so consumers can deduplicate."""
    stamp = event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{turbine_id}|{stamp}"))


class TelemetryEvent(BaseModel):
    """One SCADA reading of one turbine (version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: Literal[1] = TELEMETRY_SCHEMA_VERSION
    event_id: str = Field(min_length=1, max_length=64)
    turbine_id: str = Field(min_length=1, max_length=64, examples=["WT-007"])
    site_id: str = Field(min_length=1, max_length=64, examples=["SITE-A"])
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
        if value.tzinfo is None:
            raise ValueError("event_time must carry a timezone (UTC expected)")
        return value.astimezone(UTC)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    def signal_values(self) -> tuple[float | None, ...]:
        return tuple(getattr(self, name) for name in SIGNALS)


class InvalidEvent(Exception):
    """Raised when a payload does not satisfy the telemetry contract; ``reason`` is for humans."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def parse_telemetry(
    raw: bytes | str,
    *,
    now: datetime | None = None,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    max_age: timedelta | None = None,
) -> TelemetryEvent:
    """Validate a raw Kafka value against the contract or raise :class:`InvalidEvent` with the reason."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {exc}", "malformed_json") from exc
    if not isinstance(data, dict):
        raise InvalidEvent("payload is not a JSON object", "not_an_object")
    version = data.get("schema_version")
    if version not in SUPPORTED_TELEMETRY_VERSIONS:
        raise InvalidEvent(
            f"unsupported schema_version {version!r}; supported: {sorted(SUPPORTED_TELEMETRY_VERSIONS)}",
            "unknown_schema_version",
        )
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidEvent(f"{key}: NaN/inf is not allowed", "non_finite")
    try:
        event = TelemetryEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "<root>"
        kind = "missing_field" if first["type"] == "missing" else "invalid_field"
        raise InvalidEvent(f"{loc}: {first['msg']}", kind) from exc
    current = now or datetime.now(UTC)
    if event.event_time > current + max_future_skew:
        raise InvalidEvent(
            f"event_time {event.event_time.isoformat()} is more than {max_future_skew} in the future",
            "time_in_future",
        )
    if max_age is not None and event.event_time < current - max_age:
        raise InvalidEvent(
            f"event_time {event.event_time.isoformat()} is older than the accepted {max_age}",
            "time_too_old",
        )
    return event


class DeadLetter(BaseModel):
    """Envelope written to the dead-letter topic: the original bytes (as text) and why they were refused."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    reason: str
    code: str
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    received_at: datetime
    payload: str

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


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


Tier = Literal["critical", "high", "moderate", "low", "unknown"]
TIERS: tuple[str, ...] = ("critical", "high", "moderate", "low", "unknown")


def dumps(obj: Any) -> bytes:
    """orjson with numpy and datetime support; one place so every component serialises alike."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
