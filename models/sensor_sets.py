"""Sensor sets: which model can score a turbine, given the sensors it actually has.

Why: a real fleet's SCADA export often carries only operational signals (wind, power, pitch, rotor
speed, ambient, directions) and no component temperatures or vibration. Scoring such a turbine with
the full model makes every hour "75 % of values missing"; instead each turbine is routed to the
richest set its fitted sensors satisfy.

- ``FULL``: today's models (component temperatures, vibration, pitch hydraulic pressure and the
  operating context). Needs every signal in ``SENSOR_SETS[FULL]``.
- ``OPERATIONAL``: power curve, pitch and rotor behaviour against wind, yaw misalignment,
  availability and curtailment (``models.operational``). Needs ``SENSOR_SETS[OPERATIONAL]`` (wind
  speed, power, ambient temperature) plus at least one of ``OPERATIONAL_ANY_OF`` (rotor speed, pitch
  angle). Wind and nacelle direction are optional (``OPERATIONAL_OPTIONAL``): with both, the yaw
  misalignment is scored.
"""

from __future__ import annotations

from collections.abc import Collection

from common.contracts import SIGNALS
from models.features import TRACKED_SIGNALS

FULL = "full"
OPERATIONAL = "operational"

#: Signals each set needs (for OPERATIONAL also one of :data:`OPERATIONAL_ANY_OF`).
SENSOR_SETS: dict[str, frozenset[str]] = {
    FULL: frozenset(TRACKED_SIGNALS),
    OPERATIONAL: frozenset({"wind_speed_ms", "power_kw", "ambient_temp_c"}),
}
#: The operational set needs at least one of these (pitch and/or rotor speed behaviour against wind).
OPERATIONAL_ANY_OF: frozenset[str] = frozenset({"rotor_rpm", "pitch_angle_deg"})
#: Used by the operational set when fitted; yaw misalignment needs both.
OPERATIONAL_OPTIONAL: frozenset[str] = frozenset({"wind_direction_deg", "nacelle_direction_deg"})
#: Every signal the operational set can use.
OPERATIONAL_SIGNALS: frozenset[str] = SENSOR_SETS[OPERATIONAL] | OPERATIONAL_ANY_OF | OPERATIONAL_OPTIONAL

_KNOWN = frozenset(SIGNALS)


def sensor_set_for(fitted: Collection[str] | None) -> str | None:
    """The richest sensor set the fitted sensors satisfy.

    ``None`` (fitted sensors not declared) means every contract signal is fitted -> ``FULL``.
    Returns ``None`` when not even the operational set is satisfied (the turbine cannot be scored).
    Names that are not contract signals are ignored.
    """
    if fitted is None:
        return FULL
    have = frozenset(fitted) & _KNOWN
    if SENSOR_SETS[FULL] <= have:
        return FULL
    if SENSOR_SETS[OPERATIONAL] <= have and have & OPERATIONAL_ANY_OF:
        return OPERATIONAL
    return None


def signals_used(sensor_set: str, fitted: Collection[str] | None) -> list[str]:
    """Contract signals (in contract order) the given set's model reads for a turbine with ``fitted``."""
    have = _KNOWN if fitted is None else frozenset(fitted) & _KNOWN
    wanted = SENSOR_SETS[FULL] if sensor_set == FULL else OPERATIONAL_SIGNALS
    return [s for s in SIGNALS if s in wanted and s in have]


def missing_for(sensor_set: str, fitted: Collection[str] | None) -> list[str]:
    """What a turbine with ``fitted`` lacks for ``sensor_set`` (plain names, for messages)."""
    have = _KNOWN if fitted is None else frozenset(fitted) & _KNOWN
    out = sorted(SENSOR_SETS[sensor_set] - have)
    if sensor_set == OPERATIONAL and not have & OPERATIONAL_ANY_OF:
        out.append(" or ".join(sorted(OPERATIONAL_ANY_OF)))
    return out
