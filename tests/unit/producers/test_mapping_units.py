"""Mapping files: parsing, validation errors (all reported with their key), unit conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.mapping import MappingError, load_mapping, parse_mapping
from producers.units import UnitError, canonical_unit, conversion, convert

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "producers" / "examples"


def _base(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "timestamp": {"column": "ts", "format": "iso", "timezone": "UTC"},
        "turbine_id": {"column": "turbine"},
        "site_id": {"constant": "SITE-A"},
        "columns": {"ws": {"field": "wind_speed_ms", "unit": "km/h"}, "p": "power_kw"},
    }
    data.update(over)
    return data


def test_example_mapping_loads_and_describes() -> None:
    mapping = load_mapping(EXAMPLES / "scada_mapping.yaml")
    assert mapping.timestamp.timezone == "Europe/Berlin"
    assert mapping.columns["Outdoor Temp (F)"].field == "ambient_temp_c"
    assert mapping.columns["Wind Dir (deg)"].unit is None  # shorthand
    assert "'Active Power (W)' [W] -> power_kw [kw]" in mapping.describe()
    assert mapping.source_columns()[:3] == ["Date/Time", "Asset", "Status"]


def test_shorthand_and_defaults() -> None:
    mapping = parse_mapping(_base())
    assert mapping.columns["p"].field == "power_kw"
    assert mapping.csv.delimiter == ","
    assert mapping.status_code is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"columns": {"x": {"field": "power_w"}}}, "unknown contract field 'power_w'"),
        (
            {"columns": {"x": {"field": "power_kw", "unit": "degF"}}},
            "temperature unit but power_kw is a power",
        ),
        ({"columns": {"x": {"field": "rotor_rpm", "unit": "furlongs"}}}, "unknown unit 'furlongs'"),
        ({"columns": {"a": "power_kw", "b": "power_kw"}}, "power_kw is mapped twice"),
        ({"columns": {}}, "columns"),
        ({"timestamp": {"column": "ts", "timezone": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
        ({"timestamp": {"column": "ts", "format": "dd.mm.yyyy"}}, "strftime pattern"),
        ({"turbine_id": {}}, "exactly one of 'column' or 'constant'"),
        ({"turbine_id": {"column": "t", "constant": "WT-1"}}, "exactly one of 'column' or 'constant'"),
        ({"site": {"constant": "S"}}, "site: unknown key (not allowed)"),
        ({"csv": {"delimiter": ";;"}}, "csv.delimiter"),
    ],
)
def test_mapping_errors_name_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping(_base(**change), "m.yaml")
    assert "m.yaml: invalid replay mapping" in str(err.value)
    assert message in str(err.value)


def test_every_problem_is_reported_at_once() -> None:
    data = _base(columns={"x": {"field": "nope"}}, timestamp={"column": "ts", "timezone": "Nowhere/X"})
    with pytest.raises(MappingError, match=r"\(2 problem\(s\)\)"):
        parse_mapping(data)


def test_unreadable_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read mapping"):
        load_mapping(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(MappingError, match="expected a mapping"):
        load_mapping(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("timestamp: {column: [\n")
    with pytest.raises(MappingError, match="cannot read mapping"):
        load_mapping(broken)


def test_missing_source_columns_are_listed() -> None:
    mapping = parse_mapping(_base())
    with pytest.raises(MappingError, match=r"columns \['ws'\] named in the mapping are not in the file"):
        mapping.check_columns(["ts", "turbine", "p"], "export.csv")


@pytest.mark.parametrize(
    ("value", "field", "unit", "expected"),
    [
        (212.0, "ambient_temp_c", "degF", 100.0),
        (32.0, "gearbox_oil_temp_c", "°F", 0.0),
        (-40.0, "ambient_temp_c", "F", -40.0),
        (300.0, "converter_temp_c", "K", 26.85),
        (20.0, "ambient_temp_c", "°C", 20.0),
        (1_500_000.0, "power_kw", "W", 1500.0),
        (2.25, "power_kw", "MW", 2250.0),
        (36.0, "wind_speed_ms", "km/h", 10.0),
        (10.0, "wind_speed_ms", "mph", 4.4704),
        (10.0, "wind_speed_ms", "knots", 5.144444),
        (1.0, "rotor_rpm", "rad/s", 9.549297),
        (25.0, "generator_rpm", "Hz", 1500.0),
        (1500.0, "generator_rpm", "rpm", 1500.0),
        (3.14159265, "pitch_angle_deg", "rad", 180.0),
        (2900.0, "pitch_hydraulic_pressure_bar", "psi", 199.948),
        (20_000_000.0, "pitch_hydraulic_pressure_bar", "Pa", 200.0),
        (0.004, "vibration_mm_s", "m/s", 4.0),
        (1.0, "vibration_mm_s", "in/s", 25.4),
        (7.0, "wind_speed_ms", None, 7.0),
    ],
)
def test_unit_conversions(value: float, field: str, unit: str | None, expected: float) -> None:
    assert convert(value, field, unit) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_unit_errors() -> None:
    with pytest.raises(UnitError, match="speed unit but rotor_rpm is a rotation"):
        conversion("rotor_rpm", "km/h")
    with pytest.raises(UnitError, match="not a numeric contract signal"):
        conversion("status_code", None)
    assert canonical_unit("power_kw") == "kw"
    assert canonical_unit("ambient_temp_c") == "degc"
