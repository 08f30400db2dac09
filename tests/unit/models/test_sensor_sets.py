from __future__ import annotations

import pytest

from common.contracts import SIGNALS
from models.features import TRACKED_SIGNALS
from models.sensor_sets import (
    FULL,
    OPERATIONAL,
    SENSOR_SETS,
    missing_for,
    sensor_set_for,
    signals_used,
)

pytestmark = pytest.mark.unit

OPERATIONAL_EXPORT = {
    "wind_speed_ms",
    "wind_direction_deg",
    "nacelle_direction_deg",
    "ambient_temp_c",
    "power_kw",
    "pitch_angle_deg",
}


def test_undeclared_sensors_mean_full() -> None:
    assert sensor_set_for(None) == FULL


def test_every_contract_signal_is_full() -> None:
    assert sensor_set_for(SIGNALS) == FULL
    assert sensor_set_for(TRACKED_SIGNALS) == FULL


def test_operational_export_without_temperatures() -> None:
    assert sensor_set_for(OPERATIONAL_EXPORT) == OPERATIONAL
    # rotor speed instead of pitch is enough too
    assert sensor_set_for({"wind_speed_ms", "power_kw", "ambient_temp_c", "rotor_rpm"}) == OPERATIONAL


def test_operational_needs_pitch_or_rotor_speed() -> None:
    assert sensor_set_for({"wind_speed_ms", "power_kw", "ambient_temp_c"}) is None
    assert missing_for(OPERATIONAL, {"wind_speed_ms", "power_kw", "ambient_temp_c"}) == [
        "pitch_angle_deg or rotor_rpm"
    ]


def test_nothing_usable() -> None:
    assert sensor_set_for(set()) is None
    assert sensor_set_for({"power_kw", "pitch_angle_deg"}) is None
    assert "wind_speed_ms" in missing_for(OPERATIONAL, {"power_kw", "pitch_angle_deg"})


def test_one_temperature_missing_falls_back_to_operational() -> None:
    fitted = set(SIGNALS) - {"converter_temp_c"}
    assert sensor_set_for(fitted) == OPERATIONAL
    assert missing_for(FULL, fitted) == ["converter_temp_c"]


def test_unknown_names_are_ignored() -> None:
    assert sensor_set_for({*OPERATIONAL_EXPORT, "bogus", ""}) == OPERATIONAL


def test_signals_used_in_contract_order() -> None:
    used = signals_used(OPERATIONAL, OPERATIONAL_EXPORT)
    assert used == [s for s in SIGNALS if s in OPERATIONAL_EXPORT]
    assert signals_used(FULL, None) == [s for s in SIGNALS if s in SENSOR_SETS[FULL]]
    # a fitted sensor the set does not use is not "used"
    assert "generator_rpm" not in signals_used(OPERATIONAL, set(SIGNALS))


def test_sets_are_contract_signals() -> None:
    for needed in SENSOR_SETS.values():
        assert needed <= set(SIGNALS)
