"""Unit conversion for SCADA exports: every contract signal has one dimension and one canonical unit.

Why a table and not free formulas: a mapping file names units (``degF``, ``km/h``, ``W``...), and a unit
of the wrong dimension (``degF`` on ``power_kw``) is a mapping error found before the first row.
"""

from __future__ import annotations

import math

from common.contracts import SIGNALS

#: Dimension of each contract signal (canonical unit in the field name).
FIELD_DIMENSION: dict[str, str] = {
    "wind_speed_ms": "speed",
    "wind_direction_deg": "angle",
    "ambient_temp_c": "temperature",
    "power_kw": "power",
    "rotor_rpm": "rotation",
    "generator_rpm": "rotation",
    "pitch_angle_deg": "angle",
    "nacelle_direction_deg": "angle",
    "gearbox_oil_temp_c": "temperature",
    "gearbox_bearing_temp_c": "temperature",
    "generator_winding_temp_c": "temperature",
    "generator_bearing_temp_c": "temperature",
    "main_bearing_temp_c": "temperature",
    "vibration_mm_s": "vibration",
    "converter_temp_c": "temperature",
    "pitch_hydraulic_pressure_bar": "pressure",
}
assert set(FIELD_DIMENSION) == set(SIGNALS), "every signal needs a dimension"

#: canonical = value * scale + offset, per dimension and unit (keys are normalised spellings).
_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "temperature": {
        "degc": (1.0, 0.0),
        "degf": (5.0 / 9.0, -32.0 * 5.0 / 9.0),
        "k": (1.0, -273.15),
    },
    "power": {"w": (1e-3, 0.0), "kw": (1.0, 0.0), "mw": (1e3, 0.0)},
    "speed": {
        "m/s": (1.0, 0.0),
        "km/h": (1.0 / 3.6, 0.0),
        "mph": (0.44704, 0.0),
        "kn": (1852.0 / 3600.0, 0.0),
        "ft/s": (0.3048, 0.0),
    },
    "rotation": {"rpm": (1.0, 0.0), "rad/s": (60.0 / (2.0 * math.pi), 0.0), "hz": (60.0, 0.0)},
    "angle": {"deg": (1.0, 0.0), "rad": (180.0 / math.pi, 0.0)},
    "pressure": {
        "bar": (1.0, 0.0),
        "pa": (1e-5, 0.0),
        "kpa": (1e-2, 0.0),
        "mpa": (10.0, 0.0),
        "psi": (0.0689475729, 0.0),
    },
    "vibration": {"mm/s": (1.0, 0.0), "m/s": (1e3, 0.0), "in/s": (25.4, 0.0)},
}

_ALIASES: dict[str, str] = {
    "c": "degc",
    "°c": "degc",
    "celsius": "degc",
    "deg_c": "degc",
    "ºc": "degc",
    "f": "degf",
    "°f": "degf",
    "fahrenheit": "degf",
    "deg_f": "degf",
    "ºf": "degf",
    "kelvin": "k",
    "watt": "w",
    "kilowatt": "kw",
    "megawatt": "mw",
    "ms": "m/s",
    "m/sec": "m/s",
    "mps": "m/s",
    "kmh": "km/h",
    "kph": "km/h",
    "km/hr": "km/h",
    "knot": "kn",
    "knots": "kn",
    "kt": "kn",
    "1/min": "rpm",
    "u/min": "rpm",
    "rps": "hz",
    "rad/sec": "rad/s",
    "°": "deg",
    "degree": "deg",
    "degrees": "deg",
    "radian": "rad",
    "radians": "rad",
    "mm/sec": "mm/s",
    "ips": "in/s",
}


class UnitError(ValueError):
    """Unknown unit, or a unit that does not fit the field's dimension."""


def normalise_unit(unit: str) -> str:
    key = unit.strip().lower().replace(" ", "")
    return _ALIASES.get(key, key)


def canonical_unit(field: str) -> str:
    """The unit a contract field is expressed in (its first entry with scale 1)."""
    dim = FIELD_DIMENSION[field]
    return next(u for u, (scale, offset) in _UNITS[dim].items() if scale == 1.0 and offset == 0.0)


def conversion(field: str, unit: str | None) -> tuple[float, float]:
    """``(scale, offset)`` turning values in ``unit`` into the canonical unit of ``field``."""
    if field not in FIELD_DIMENSION:
        raise UnitError(f"{field!r} is not a numeric contract signal")
    if unit is None:
        return 1.0, 0.0
    dim = FIELD_DIMENSION[field]
    key = normalise_unit(unit)
    table = _UNITS[dim]
    if key in table:
        return table[key]
    for other, units in _UNITS.items():
        if key in units:
            raise UnitError(
                f"unit {unit!r} is a {other} unit but {field} is a {dim} (expected one of {', '.join(table)})"
            )
    raise UnitError(f"unknown unit {unit!r} for {field} ({dim}: {', '.join(table)})")


def convert(value: float, field: str, unit: str | None) -> float:
    scale, offset = conversion(field, unit)
    return value * scale + offset
