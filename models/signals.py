"""The signals a feature window tracks and the constants of its hourly bins (no state, no numpy work).

One source of truth for: which telemetry fields are tracked and in which order, which get rolling
statistics, which the normal-behaviour model predicts, spike thresholds, the per-bin counters, the
horizons, the bin grid (``BIN_SECONDS`` x ``N_BINS``) and the feature order (``FEATURE_NAMES``).
"""

from __future__ import annotations

import math

import numpy as np

from common.contracts import (
    STATUS_ALARM_PRESSURE,
    STATUS_ALARM_TEMPERATURE,
    STATUS_ALARM_VIBRATION,
    STATUS_CURTAILED,
    STATUS_FAULT,
    STATUS_MAINTENANCE,
)

#: Version of the window's DEFINITION (hourly bins, tracked signals, counters, baseline) that trained
#: models record in the registry (``models.registry`` refuses a model of another definition). The
#: serialised layout has its own version (``models.window_store.STATE_FORMAT_VERSION``): the compact
#: columnar layout (float32 sums, float16 maxima) keeps the same definition, so it stays 2.
WINDOW_FORMAT_VERSION = 2

BIN_SECONDS = 3600
N_BINS = 168  # 7 days of hourly bins
HORIZONS_H: tuple[int, ...] = (6, 24, 72, 168)

#: Component temperatures (targets of the normal-behaviour model).
TEMP_SIGNALS: tuple[str, ...] = (
    "gearbox_oil_temp_c",
    "gearbox_bearing_temp_c",
    "generator_winding_temp_c",
    "generator_bearing_temp_c",
    "main_bearing_temp_c",
    "converter_temp_c",
)
#: Signals that get the full rolling statistics.
COMPONENT_SIGNALS: tuple[str, ...] = (*TEMP_SIGNALS, "vibration_mm_s", "pitch_hydraulic_pressure_bar")
#: Signals the normal-behaviour model predicts from load and ambient.
NBM_TARGETS: tuple[str, ...] = (*TEMP_SIGNALS, "vibration_mm_s")
#: Operating context (inputs of the normal-behaviour model and of the power curve).
CONTEXT_SIGNALS: tuple[str, ...] = ("power_kw", "ambient_temp_c", "wind_speed_ms", "rotor_rpm")
TRACKED_SIGNALS: tuple[str, ...] = (*COMPONENT_SIGNALS, *CONTEXT_SIGNALS)
K = len(TRACKED_SIGNALS)
KC = len(COMPONENT_SIGNALS)  # component signals come first in TRACKED_SIGNALS (their maxima are kept)
IDX: dict[str, int] = {name: i for i, name in enumerate(TRACKED_SIGNALS)}
#: Signals whose frozen reading makes an assessment untrustworthy.
KEY_SIGNALS: tuple[str, ...] = (*TEMP_SIGNALS, "vibration_mm_s")
KEY_IDX = np.array([IDX[s] for s in KEY_SIGNALS])
P_IDX = IDX["power_kw"]
A_IDX = IDX["ambient_temp_c"]
R_IDX = IDX["rotor_rpm"]

#: Jump between consecutive readings counted as a spike (inf = not checked).
SPIKE_THRESHOLDS: dict[str, float] = {
    **{s: 20.0 for s in TEMP_SIGNALS},
    "vibration_mm_s": 8.0,
    "pitch_hydraulic_pressure_bar": 60.0,
    "power_kw": math.inf,
    "ambient_temp_c": 10.0,
    "wind_speed_ms": math.inf,
    "rotor_rpm": math.inf,
}
SPIKE_THR = np.array([SPIKE_THRESHOLDS[s] for s in TRACKED_SIGNALS])

#: Per-bin counters of :class:`models.features.WindowSnapshot` (``counters`` columns).
C_EVENTS, C_MISSING, C_SPIKES, C_ALARMS, C_DOWN, C_CURTAILED = range(6)
N_COUNTERS = 6
#: Status code -> counter it increments.
STATUS_COUNTER: dict[int, int] = {
    STATUS_ALARM_TEMPERATURE: C_ALARMS,
    STATUS_ALARM_VIBRATION: C_ALARMS,
    STATUS_ALARM_PRESSURE: C_ALARMS,
    STATUS_FAULT: C_DOWN,
    STATUS_MAINTENANCE: C_DOWN,
    STATUS_CURTAILED: C_CURTAILED,
}

#: Long-term per-turbine baseline: exponentially weighted hourly means, time constant 30 days.
BASELINE_TAU_HOURS = 720.0
DECAY = math.exp(-1.0 / BASELINE_TAU_HOURS)
N_BASE = K + 2  # tracked signals' means, then mean of (hourly power)^2 and (hourly rpm)^2

#: Operational signals kept beside the tracked ones, per hourly bin (not model features, so
#: ``FEATURE_NAMES`` and trained models are unaffected): the pitch angle, the presence of the wind and
#: nacelle directions, and the yaw misalignment (nacelle - wind direction) as sine and cosine so that
#: hourly and window means are circular means. Read with :meth:`models.features.FeatureWindow.hourly`.
AUX_SIGNALS: tuple[str, ...] = (
    "pitch_angle_deg",
    "wind_direction_deg",
    "nacelle_direction_deg",
    "yaw_error_sin",
    "yaw_error_cos",
)
KA = len(AUX_SIGNALS)
AUX_PITCH, AUX_WDIR, AUX_NDIR, AUX_SIN, AUX_COS = range(KA)
#: Raw auxiliary inputs of one event, in this order (``aux`` columns of ``WindowStore.ingest``).
AUX_INPUTS: tuple[str, ...] = ("pitch_angle_deg", "wind_direction_deg", "nacelle_direction_deg")

DEFAULT_FROZEN_MIN_COUNT = 12
DEFAULT_FROZEN_MIN_SECONDS = 3 * 3600.0

#: Load (MW) at which ``resid_full_load_*`` evaluates the load-dependent residual (~rated power).
FULL_LOAD_MW = 2.0
LOAD_RESPONSE_HOURS: tuple[int, ...] = (24, 72, 168)


def _build_feature_names() -> tuple[str, ...]:
    names: list[str] = []
    for sig in COMPONENT_SIGNALS:
        for h in HORIZONS_H:
            names += [f"{sig}__mean_{h}h", f"{sig}__max_{h}h", f"{sig}__spread_{h}h", f"{sig}__slope_{h}h"]
    names += [f"{sig}__mean_24h" for sig in CONTEXT_SIGNALS]
    names += [f"{sig}__peak_over_mean_24h" for sig in COMPONENT_SIGNALS]
    for sig in NBM_TARGETS:
        names += [f"{sig}__resid_{h}h" for h in HORIZONS_H]
        names += [f"{sig}__resid_slope_72h", f"{sig}__resid_slope_168h"]
        names += [f"{sig}__resid_base_30d"] + [f"{sig}__resid_dev_{h}h" for h in (6, 24, 72)]
    names += [f"pitch_hydraulic_pressure_bar__dev_{h}h" for h in (6, 24)] + ["baseline_hours"]
    names += ["power_curve_resid_24h", "power_curve_resid_168h"]
    names += ["alarms_24h", "alarms_168h", "down_share_24h"]
    names += ["missing_share_24h", "spikes_24h", "coverage_hours_168h", "n_frozen_key", "frozen_max_hours"]
    for sig in NBM_TARGETS:
        for h in LOAD_RESPONSE_HOURS:
            names += [f"{sig}__resid_load_beta_{h}h", f"{sig}__resid_full_load_{h}h"]
        names += [f"{sig}__resid_ambient_beta_168h"]
    return tuple(names)


#: Feature order of :meth:`models.features.FeatureWindow.features` and of every model's input.
FEATURE_NAMES: tuple[str, ...] = _build_feature_names()
N_FEATURES = len(FEATURE_NAMES)
