"""The hand-built JSON must be byte-identical to the pydantic contract's output."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contracts import (
    IDENTIFIER_PATTERN,
    SIGNALS,
    TelemetryEvent,
    make_event_id,
    parse_telemetry,
)
from producers.replay import BOUNDS
from producers.serialize import encode_record

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _signal(name: str) -> st.SearchStrategy[float | None]:
    low, high = BOUNDS[name]
    return st.one_of(st.none(), st.floats(low, high, allow_nan=False), st.integers(int(low), int(high)))


records = st.fixed_dictionaries(
    {
        # identifiers as the contract allows them (IDENTIFIER_PATTERN: ASCII, no space/NUL/control)
        "turbine_id": st.from_regex(IDENTIFIER_PATTERN, fullmatch=True),
        "site_id": st.from_regex(IDENTIFIER_PATTERN, fullmatch=True),
        "event_time": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
        ),
        "status_code": st.integers(0, 999),
        **{name: _signal(name) for name in SIGNALS},
    }
)


@settings(max_examples=300, deadline=None)
@given(records)
def test_bytes_equal_pydantic_and_parse(record: dict[str, object]) -> None:
    record["event_id"] = make_event_id(record["turbine_id"], record["event_time"])  # type: ignore[arg-type]
    key, value = encode_record(record)
    assert key == str(record["turbine_id"]).encode()
    assert value == TelemetryEvent(**record).to_json()  # type: ignore[arg-type]
    assert parse_telemetry(value, now=NOW) == TelemetryEvent(**record)  # type: ignore[arg-type]


def test_simulator_records_are_byte_identical() -> None:
    from simulator.config import FleetConfig
    from simulator.fleet import Fleet

    fleet = Fleet(FleetConfig(n_turbines=5, duration_days=2, preset="training", seed=3))
    n = 0
    for record in fleet.iter_records():
        _, value = encode_record(record)
        assert value == TelemetryEvent(**record).to_json()
        n += 1
    assert n == 5 * 2 * 144


def test_missing_event_id_is_derived_and_stable() -> None:
    when = datetime(2024, 3, 1, 12, 10, tzinfo=UTC)
    _, value = encode_record({"turbine_id": "WT-001", "site_id": "S", "event_time": when})
    assert orjson.loads(value)["event_id"] == make_event_id("WT-001", when)


def test_other_zones_pandas_timestamps_and_nan() -> None:
    cet = timezone(timedelta(hours=1))
    local = datetime(2024, 3, 1, 13, 10, tzinfo=cet)
    base = {"turbine_id": "WT-001", "site_id": "S", "power_kw": float("nan"), "rotor_rpm": 12}
    _, a = encode_record({**base, "event_time": local})
    _, b = encode_record({**base, "event_time": pd.Timestamp("2024-03-01T12:10:00Z")})
    assert a == b
    data = orjson.loads(a)
    assert data["event_time"] == "2024-03-01T12:10:00Z"
    assert data["power_kw"] is None and data["rotor_rpm"] == 12.0
    assert list(data) == list(TelemetryEvent.model_fields)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        encode_record({"turbine_id": "WT-001", "site_id": "S", "event_time": datetime(2024, 1, 1)})


def test_contract_bounds_are_read_from_the_model() -> None:
    assert BOUNDS["power_kw"] == (-200.0, 20000.0)
    assert BOUNDS["wind_speed_ms"] == (0.0, 80.0)
    assert all(not math.isinf(low) and not math.isinf(high) for low, high in BOUNDS.values())
