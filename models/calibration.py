"""Calibration: each turbine's own normal behaviour, fitted from its history without failure labels.

Why: a real fleet is not the simulator. Power curves differ per turbine (model, site, air density,
wake), nacelle direction sensors carry offsets, temperatures depend on each drive train. Judging a
real turbine against simulator constants flags every turbine or none; judging it against its OWN
history flags what changed.

What is fitted per turbine (pure numpy/pandas, no I/O):

- **power curve by the method of bins** (IEC 61400-12-1 style): 10-minute rows of normal operation
  (status 0 or no status column, power > 0, valid values, not an outlier of its bin - which removes
  curtailment and stops without status codes) grouped in 0.5 m/s wind bins centred on multiples of
  0.5 m/s; per bin the median, mean, p10, p90 of power and the count. Air-density normalisation of
  the wind speed (``v (rho / 1.225)^(1/3)``, rho from the ambient temperature at standard pressure)
  is optional.
- expected **pitch angle** and **rotor speed** per wind bin (medians), when the turbine has them;
- **normal ranges** (0.5th / 99.5th percentiles) of each fitted signal;
- a **normal-behaviour model** of each component temperature it has: hourly mean temperature
  ``~ a + b P + c P^2 + d ambient`` (P in MW), least squares with a second pass without outliers;
- the **normal spread of each deviation** the operational scorer reads (power vs the curve, pitch and
  rotor speed vs expected at the same wind, yaw misalignment, availability, temperature residuals):
  the same statistic (:func:`hourly_terms` + :func:`window_stat`) is evaluated on the turbine's own
  history in blocks of 24 / 48 / 72 / 168 hours and summarised robustly (median and 1.4826 x MAD), so
  thresholds are in units of the turbine's own variability, never simulator constants.

Requirements (:data:`REQUIREMENTS`): at least :data:`MIN_DAYS` days of history, at least
:data:`MIN_NORMAL_HOURS` hours of normal operation (the IEC minimum database), and at least
:data:`MIN_BIN_ROWS` rows in every 0.5 m/s bin from cut-in to the rated wind speed. A turbine short of
any of these is refused with a message naming it and what is short; with less than
:data:`WARN_DAYS` days it is fitted with a warning.
"""

from __future__ import annotations

import math
import re
import warnings as pywarnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from common.contracts import (
    IDENTIFIER_PATTERN,
    SIGNALS,
    STATUS_CURTAILED,
    STATUS_FAULT,
    STATUS_MAINTENANCE,
    STATUS_OK,
)
from models.features import TEMP_SIGNALS, HourlyMeans
from models.sensor_sets import sensor_set_for

if TYPE_CHECKING:
    from common.fleet import FleetRegister

CALIBRATION_FORMAT = 1
BIN_WIDTH_MS = 0.5
MAX_BIN_MS = 30.0
BIN_CENTERS = np.round(np.arange(0.0, MAX_BIN_MS + 1e-9, BIN_WIDTH_MS), 2)
N_WIND_BINS = len(BIN_CENTERS)

#: Requirements (stated by ``python -m models calibrate`` and in refusals).
MIN_DAYS = 30.0
WARN_DAYS = 90.0
MIN_NORMAL_HOURS = 180.0
MIN_BIN_ROWS = 3
#: A turbine's signal is taken as present when at least this share of its rows carries a valid value.
MIN_SIGNAL_SHARE = 0.2
REQUIREMENTS = (
    f"at least {MIN_DAYS:.0f} days of history per turbine ({WARN_DAYS:.0f}+ recommended), at least "
    f"{MIN_NORMAL_HOURS:.0f} hours of normal operation (status 0, producing, not curtailed), and at least "
    f"{MIN_BIN_ROWS} ten-minute rows in every {BIN_WIDTH_MS} m/s wind bin from cut-in to rated wind speed"
)

#: Window lengths (hours) whose deviation spreads are calibrated; the policy picks one of them.
WINDOW_HOURS: tuple[int, ...] = (24, 48, 72, 168)
#: A block (or a scoring window) needs this many judged hours for its statistic to count.
MIN_JUDGED_HOURS = 12
#: Fewer calibration blocks than this: the indicator is left out (with a warning).
MIN_BLOCKS = 8
#: Hours whose mean wind is below cut-in + this margin are not judged for pitch and rotor speed (an
#: hour mixing idling and production has a meaningless mean pitch).
PITCH_WIND_MARGIN_MS = 1.5

#: Obviously invalid values (set to missing before fitting): physical plausibility, not normality.
VALID_RANGES: dict[str, tuple[float, float]] = {
    "wind_speed_ms": (0.0, 60.0),
    "wind_direction_deg": (-360.0, 720.0),
    "ambient_temp_c": (-60.0, 60.0),
    "power_kw": (-5_000.0, 30_000.0),
    "rotor_rpm": (0.0, 100.0),
    "generator_rpm": (0.0, 5_000.0),
    "pitch_angle_deg": (-30.0, 120.0),
    "nacelle_direction_deg": (-360.0, 720.0),
    **{s: (-60.0, 250.0) for s in TEMP_SIGNALS},
    "vibration_mm_s": (0.0, 200.0),
    "pitch_hydraulic_pressure_bar": (0.0, 500.0),
}
_DIRECTIONS = ("wind_direction_deg", "nacelle_direction_deg")
_ID_RE = re.compile(IDENTIFIER_PATTERN)

Progress = Callable[[str, float], None]


class CalibrationError(ValueError):
    """Calibration impossible; the message names the input, the turbines and what is short."""


# --------------------------------------------------------------------------------------------------
# Stored calibration
# --------------------------------------------------------------------------------------------------


@dataclass
class IndicatorNormal:
    """Normal behaviour of one deviation indicator of one turbine (from its own history).

    ``windows[hours] = [center, spread, blocks]``: median and robust spread (1.4826 MAD) of the window
    statistic over calibration blocks of that many hours. ``hourly_*``: the same for single hours
    (used for persistence: the share of hours deviating the same way).
    """

    hourly_center: float
    hourly_spread: float
    hours: int
    windows: dict[int, list[float]] = field(default_factory=dict)

    def normal(self, hours: int) -> tuple[float, float] | None:
        w = self.windows.get(hours)
        return None if w is None else (float(w[0]), float(w[1]))


@dataclass
class TemperatureModel:
    """``temperature ~ coef[0] + coef[1] P + coef[2] P^2 + coef[3] ambient`` (hourly means, P in MW)."""

    coef: list[float]
    resid_std: float
    hours: int

    def expected(self, power_kw: np.ndarray, ambient_c: np.ndarray) -> np.ndarray:
        p = np.asarray(power_kw, dtype=np.float64) / 1000.0
        c = self.coef
        return c[0] + c[1] * p + c[2] * p * p + c[3] * np.asarray(ambient_c, dtype=np.float64)


@dataclass
class TurbineCalibration:
    """One turbine's normal behaviour (see the module docstring)."""

    turbine_id: str
    sensor_set: str | None
    signals: list[str]
    rated_power_kw: float
    rated_power_source: str  # "register" | "data"
    period_s: float
    data_start: str
    data_end: str
    days: float
    rows: int
    normal_rows: int
    normal_hours: float
    cut_in_ms: float
    rated_wind_ms: float
    max_wind_ms: float
    bin_centers: list[float]
    power_median: list[float | None]
    power_mean: list[float | None]
    power_p10: list[float | None]
    power_p90: list[float | None]
    power_count: list[int]
    pitch_median: list[float | None] | None = None
    rpm_median: list[float | None] | None = None
    normal_ranges: dict[str, list[float]] = field(default_factory=dict)
    temperature_models: dict[str, TemperatureModel] = field(default_factory=dict)
    deviations: dict[str, IndicatorNormal] = field(default_factory=dict)
    air_density: bool = False
    warnings: list[str] = field(default_factory=list)
    #: The same curves on HOURLY means (median hourly value per 0.5 m/s bin of the hourly mean wind): what
    #: the scorer compares a window's hours with. Why besides the 10-minute curves: the mean of a curved
    #: response over an hour of varying wind is not the response at the mean wind (near cut-in and rated
    #: the difference is several % of power or degrees of pitch, and it depends on the turbulence).
    hourly_power: list[float | None] | None = None
    hourly_pitch: list[float | None] | None = None
    hourly_rpm: list[float | None] | None = None
    #: "own" (its own history) or "type: <manufacturer> <model> (from <turbines>)" (see
    #: :func:`type_calibration`).
    basis: str = "own"

    # ---------------------------------------------------------------- curves
    def _curve(self, values: list[float | None] | None, wind: np.ndarray) -> np.ndarray:
        w = np.asarray(wind, dtype=np.float64)
        if values is None:
            return np.full(w.shape, np.nan)
        v = _arr(values)
        x = np.asarray(self.bin_centers, dtype=np.float64)
        ok = np.isfinite(v)
        if ok.sum() < 2:
            return np.full(w.shape, np.nan)
        out = np.interp(w, x[ok], v[ok])
        lo, hi = x[ok][0] - BIN_WIDTH_MS / 2, x[ok][-1] + BIN_WIDTH_MS / 2
        return np.where(np.isfinite(w) & (w >= lo) & (w <= hi), out, np.nan)

    def expected_power(self, wind_ms: np.ndarray) -> np.ndarray:
        """Median power (kW) of the turbine's own curve at ``wind_ms`` (NaN outside the fitted bins)."""
        return self._curve(self.power_median, wind_ms)

    def expected_pitch(self, wind_ms: np.ndarray) -> np.ndarray:
        return self._curve(self.pitch_median, wind_ms)

    def expected_rpm(self, wind_ms: np.ndarray) -> np.ndarray:
        return self._curve(self.rpm_median, wind_ms)

    def hourly_expected(self, which: str, wind_ms: np.ndarray) -> np.ndarray:
        """Expected hourly mean ``power`` / ``pitch`` / ``rpm`` at an hourly mean wind (hourly curves,
        the 10-minute curve where no hourly curve was fitted)."""
        hourly = {"power": self.hourly_power, "pitch": self.hourly_pitch, "rpm": self.hourly_rpm}[which]
        ten = {"power": self.power_median, "pitch": self.pitch_median, "rpm": self.rpm_median}[which]
        return self._curve(hourly if hourly is not None else ten, wind_ms)

    @property
    def power_range_ms(self) -> tuple[float, float]:
        """Wind range whose hours are judged against the power curve (cut-in + 1.5 m/s to the top bin:
        an hour whose mean wind is near cut-in mixes idling and production)."""
        return self.cut_in_ms + PITCH_WIND_MARGIN_MS, self.max_wind_ms

    @property
    def operating_range_ms(self) -> tuple[float, float]:
        """Wind range in which the turbine should produce (availability)."""
        return self.cut_in_ms + 1.0, max(self.cut_in_ms + 1.0, self.max_wind_ms - 1.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["deviations"] = {k: asdict(v) for k, v in self.deviations.items()}
        d["temperature_models"] = {k: asdict(v) for k, v in self.temperature_models.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TurbineCalibration:
        data = dict(d)
        data["deviations"] = {
            k: IndicatorNormal(
                hourly_center=float(v["hourly_center"]),
                hourly_spread=float(v["hourly_spread"]),
                hours=int(v["hours"]),
                windows={int(h): [float(x) for x in w] for h, w in v.get("windows", {}).items()},
            )
            for k, v in (d.get("deviations") or {}).items()
        }
        data["temperature_models"] = {
            k: TemperatureModel(
                coef=[float(c) for c in v["coef"]], resid_std=float(v["resid_std"]), hours=int(v["hours"])
            )
            for k, v in (d.get("temperature_models") or {}).items()
        }
        return cls(**data)


@dataclass
class Calibration:
    """A versioned calibration of a fleet (stored by ``models.calibration_registry``)."""

    version: str
    fitted_at: str
    data_start: str | None
    data_end: str | None
    turbines: dict[str, TurbineCalibration]
    refused: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    air_density: bool = False
    source: str = ""
    requirements: str = REQUIREMENTS
    format: int = CALIBRATION_FORMAT

    def get(self, turbine_id: str) -> TurbineCalibration | None:
        return self.turbines.get(turbine_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "fitted_at": self.fitted_at,
            "data_start": self.data_start,
            "data_end": self.data_end,
            "air_density": self.air_density,
            "source": self.source,
            "requirements": self.requirements,
            "warnings": list(self.warnings),
            "refused": dict(self.refused),
            "turbines": {tid: tc.to_dict() for tid, tc in sorted(self.turbines.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        if int(d.get("format", -1)) != CALIBRATION_FORMAT:
            raise CalibrationError(
                f"calibration format {d.get('format')!r} is not supported (expected {CALIBRATION_FORMAT})"
            )
        return cls(
            version=str(d["version"]),
            fitted_at=str(d["fitted_at"]),
            data_start=d.get("data_start"),
            data_end=d.get("data_end"),
            turbines={tid: TurbineCalibration.from_dict(tc) for tid, tc in (d.get("turbines") or {}).items()},
            refused=dict(d.get("refused") or {}),
            warnings=list(d.get("warnings") or []),
            air_density=bool(d.get("air_density", False)),
            source=str(d.get("source", "")),
            requirements=str(d.get("requirements", REQUIREMENTS)),
        )


def _arr(values: list[float | None] | None) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _opt_list(a: np.ndarray, ndigits: int = 3) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else round(float(v), ndigits) for v in a]


def _opt(v: float, ndigits: int = 4) -> float:
    return round(float(v), ndigits) if math.isfinite(float(v)) else float("nan")


# --------------------------------------------------------------------------------------------------
# Deviation statistics (one definition for calibration and scoring)
# --------------------------------------------------------------------------------------------------

#: Deviation indicators besides the temperatures (``temp:<signal>``).
POWER, PITCH, ROTOR, YAW, AVAILABILITY = "power", "pitch", "rotor_speed", "yaw", "availability"
#: Power over the hours whose expected power is at least :data:`HIGH_POWER_SHARE` of rated: a derating
#: (power capped below rated) shows only there, and calm hours would dilute it in ``power``.
POWER_HIGH = "power_high"
HIGH_POWER_SHARE = 0.5
RATIO, MEAN, MEDIAN, ANGLE = "ratio", "mean", "median", "angle"
#: Pitch and rotor speed use the MEDIAN of the hourly deviations: an hour of gusty low wind that idles for
#: ten minutes has a mean pitch of 10-20° and would otherwise carry a whole window.
_KINDS: dict[str, str] = {
    POWER: RATIO,
    POWER_HIGH: RATIO,
    PITCH: MEDIAN,
    ROTOR: MEDIAN,
    YAW: ANGLE,
    AVAILABILITY: MEAN,
}


def indicator_kind(name: str) -> str:
    return _KINDS.get(name, MEAN)


@dataclass
class Terms:
    """Per-hour contributions of one indicator: window statistic = f(sum of ``num``, sum of ``den``)
    over judged hours (ratio: sum num / sum den; mean: the same with den = 1; angle: atan2 of the summed
    sine (num) and cosine (den)); median: median of ``hourly``. ``hourly`` is each judged hour's own
    deviation (NaN elsewhere)."""

    kind: str
    num: np.ndarray
    den: np.ndarray
    judged: np.ndarray
    hourly: np.ndarray


def normalise_wind(wind: np.ndarray, ambient_c: np.ndarray) -> np.ndarray:
    """IEC-style air-density normalisation at standard pressure: ``v (rho / 1.225)^(1/3)``.

    Where the ambient temperature is unknown the wind speed is left as it is.
    """
    t = np.asarray(ambient_c, dtype=np.float64) + 273.15
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 101_325.0 / (287.05 * t)
        out = np.asarray(wind, dtype=np.float64) * np.cbrt(rho / 1.225)
    return np.where(np.isfinite(out), out, wind)


def hourly_terms(tc: TurbineCalibration, h: Mapping[str, np.ndarray]) -> dict[str, Terms]:
    """Per-hour terms of every indicator the turbine has, from hourly means.

    ``h`` holds hourly arrays (same length): ``wind_speed_ms``, ``power_kw``, ``ambient_temp_c``,
    ``rotor_rpm``, ``pitch_angle_deg``, ``yaw_error_sin``, ``yaw_error_cos``, temperatures, and
    ``events``, ``down``, ``curtailed`` (counts per hour), as in :class:`models.features.HourlyMeans`.
    """
    n = len(h["events"])
    nan = np.full(n, np.nan)
    wind = np.asarray(h.get("wind_speed_ms", nan), dtype=np.float64)
    amb = np.asarray(h.get("ambient_temp_c", nan), dtype=np.float64)
    if tc.air_density:
        wind = normalise_wind(wind, amb)
    power = np.asarray(h.get("power_kw", nan), dtype=np.float64)
    events = np.asarray(h["events"], dtype=np.float64)
    down = np.asarray(h.get("down", np.zeros(n)), dtype=np.float64)
    curt = np.asarray(h.get("curtailed", np.zeros(n)), dtype=np.float64)
    normal = (events > 0) & (down == 0) & (curt == 0)
    operating = normal & np.isfinite(power) & (power > 0) & np.isfinite(wind)
    ones = np.ones(n)
    out: dict[str, Terms] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = tc.power_range_ms
        exp_p = tc.hourly_expected("power", wind)
        judged = (
            operating & (wind >= lo) & (wind <= hi) & np.isfinite(exp_p) & (exp_p > 0.01 * tc.rated_power_kw)
        )
        num = np.where(judged, power - exp_p, 0.0)
        den = np.where(judged, exp_p, 0.0)
        out[POWER] = Terms(
            RATIO, num, den, judged, np.where(judged, num / np.where(den > 0, den, np.nan), np.nan)
        )
        high = judged & (exp_p >= HIGH_POWER_SHARE * tc.rated_power_kw)
        out[POWER_HIGH] = Terms(
            RATIO,
            np.where(high, num, 0.0),
            np.where(high, den, 0.0),
            high,
            np.where(high, num / np.where(den > 0, den, np.nan), np.nan),
        )
        above = operating & (wind >= tc.cut_in_ms + PITCH_WIND_MARGIN_MS)
        for name, sig, curve in (
            (PITCH, "pitch_angle_deg", "pitch"),
            (ROTOR, "rotor_rpm", "rpm"),
        ):
            if sig not in tc.signals or (tc.pitch_median if curve == "pitch" else tc.rpm_median) is None:
                continue
            y = np.asarray(h.get(sig, nan), dtype=np.float64)
            e = tc.hourly_expected(curve, wind)
            j = above & np.isfinite(y) & np.isfinite(e)
            d = np.where(j, y - e, 0.0)
            out[name] = Terms(_KINDS[name], d, ones * j, j, np.where(j, d, np.nan))
        if "wind_direction_deg" in tc.signals and "nacelle_direction_deg" in tc.signals:
            s = np.asarray(h.get("yaw_error_sin", nan), dtype=np.float64)
            c = np.asarray(h.get("yaw_error_cos", nan), dtype=np.float64)
            j = normal & np.isfinite(s) & np.isfinite(c) & np.isfinite(wind) & (wind >= tc.cut_in_ms)
            ang = np.degrees(np.arctan2(s, c))
            out[YAW] = Terms(ANGLE, np.where(j, s, 0.0), np.where(j, c, 0.0), j, np.where(j, ang, np.nan))
        olo, ohi = tc.operating_range_ms
        j = (events > 0) & (curt == 0) & np.isfinite(wind) & (wind >= olo) & (wind <= ohi)
        avail = np.where(j & (down == 0) & np.isfinite(power) & (power > 0), 1.0, 0.0)
        out[AVAILABILITY] = Terms(MEAN, np.where(j, avail, 0.0), ones * j, j, np.where(j, avail, np.nan))
        for sig, model in tc.temperature_models.items():
            y = np.asarray(h.get(sig, nan), dtype=np.float64)
            e = model.expected(power, amb)
            j = normal & np.isfinite(y) & np.isfinite(e)
            d = np.where(j, y - e, 0.0)
            out[f"temp:{sig}"] = Terms(MEAN, d, ones * j, j, np.where(j, d, np.nan))
    return out


def stat_from_sums(kind: str, num: float | np.ndarray, den: float | np.ndarray) -> Any:
    """Window statistic from summed terms (ratio: relative deviation; mean; angle in degrees)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == ANGLE:
            return np.degrees(np.arctan2(num, den))
        den_a = np.asarray(den, dtype=np.float64)
        return np.where(
            den_a > 0, np.asarray(num, dtype=np.float64) / np.where(den_a > 0, den_a, 1.0), np.nan
        )


def window_stat(t: Terms, start: int, stop: int) -> tuple[float, int]:
    """(statistic, judged hours) of ``t`` over hours ``[start, stop)``."""
    n = int(t.judged[start:stop].sum())
    if n == 0:
        return float("nan"), 0
    if t.kind == MEDIAN:
        return float(np.median(t.hourly[start:stop][t.judged[start:stop]])), n  # judged hours are finite
    return float(stat_from_sums(t.kind, t.num[start:stop].sum(), t.den[start:stop].sum())), n


def wrap_deg(a: Any) -> Any:
    """Angle difference wrapped to [-180, 180)."""
    return (np.asarray(a, dtype=np.float64) + 180.0) % 360.0 - 180.0


def _robust(values: np.ndarray, angle: bool = False) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan")
    if angle:
        center = float(np.degrees(np.arctan2(np.sin(np.radians(v)).mean(), np.cos(np.radians(v)).mean())))
        dev = wrap_deg(v - center)
        return center, float(1.4826 * np.median(np.abs(dev - np.median(dev))))
    center = float(np.median(v))
    return center, float(1.4826 * np.median(np.abs(v - center)))


def _block_normals(t: Terms, windows: tuple[int, ...]) -> dict[int, list[float]]:
    """Center / spread of the window statistic over the history, per window length (cumulative sums)."""
    n = len(t.judged)
    cn = np.concatenate([[0.0], np.cumsum(t.num)])
    cd = np.concatenate([[0.0], np.cumsum(t.den)])
    cj = np.concatenate([[0], np.cumsum(t.judged.astype(np.int64))])
    out: dict[int, list[float]] = {}
    for hours in windows:
        if n < hours:
            continue
        stride = min(hours, 24)
        ends = np.arange(hours, n + 1, stride)
        starts = ends - hours
        judged = cj[ends] - cj[starts]
        ok = judged >= min(MIN_JUDGED_HOURS, hours // 2)
        if ok.sum() < MIN_BLOCKS:
            continue
        if t.kind == MEDIAN:
            view = np.lib.stride_tricks.sliding_window_view(np.where(t.judged, t.hourly, np.nan), hours)
            with pywarnings.catch_warnings():
                pywarnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks (not ``ok`` anyway)
                stats = np.nanmedian(view[starts], axis=1)
        else:
            stats = stat_from_sums(t.kind, cn[ends] - cn[starts], cd[ends] - cd[starts])
        center, spread = _robust(np.asarray(stats, dtype=np.float64)[ok], angle=t.kind == ANGLE)
        if math.isfinite(center) and math.isfinite(spread):
            out[hours] = [round(center, 6), round(spread, 6), int(ok.sum())]
    return out


def fit_indicator_normals(tc: TurbineCalibration, h: Mapping[str, np.ndarray]) -> dict[str, IndicatorNormal]:
    """The normal spread of every indicator of ``tc`` over its own hourly history ``h``."""
    out: dict[str, IndicatorNormal] = {}
    for name, t in hourly_terms(tc, h).items():
        windows = _block_normals(t, WINDOW_HOURS)
        if not windows:
            tc.warnings.append(
                f"{name}: fewer than {MIN_BLOCKS} calibration blocks with {MIN_JUDGED_HOURS} judged hours; "
                "this indicator is not scored"
            )
            continue
        hc, hs = _robust(t.hourly, angle=t.kind == ANGLE)
        out[name] = IndicatorNormal(
            hourly_center=round(hc, 6), hourly_spread=round(hs, 6), hours=int(t.judged.sum()), windows=windows
        )
    return out


# --------------------------------------------------------------------------------------------------
# Input cleaning and hourly aggregation
# --------------------------------------------------------------------------------------------------


@dataclass
class _Clean:
    frame: pd.DataFrame
    warnings: list[str]
    dropped: dict[str, int]


def _clean(frame: pd.DataFrame) -> _Clean:
    """Validated copy: UTC times, numeric signals (invalid -> NaN), duplicates and bad ids dropped."""
    if not isinstance(frame, pd.DataFrame):
        raise CalibrationError(f"input must be a table of contract rows, got {type(frame).__name__}")
    missing = [c for c in ("turbine_id", "event_time") if c not in frame.columns]
    if missing:
        raise CalibrationError(
            f"input lacks the column(s) {missing}; contract rows need turbine_id, event_time, "
            f"the signals it has ({', '.join(SIGNALS)}) and optionally status_code"
        )
    signals = [s for s in SIGNALS if s in frame.columns]
    if "wind_speed_ms" not in signals or "power_kw" not in signals:
        raise CalibrationError(
            "input has no wind_speed_ms or no power_kw column: a power curve needs both "
            f"(columns found: {', '.join(map(str, frame.columns[:30]))})"
        )
    warnings: list[str] = []
    dropped: dict[str, int] = {}
    df = pd.DataFrame({"turbine_id": frame["turbine_id"]})
    tid_ok = df["turbine_id"].map(lambda v: isinstance(v, str) and bool(_ID_RE.match(v)))
    if (~tid_ok).any():
        dropped["invalid turbine_id"] = int((~tid_ok).sum())
    raw_t = frame["event_time"]
    if pd.api.types.is_datetime64_any_dtype(raw_t) and getattr(raw_t.dt, "tz", None) is None:
        warnings.append("event_time has no time zone; taken as UTC")
    try:
        t = pd.to_datetime(raw_t, utc=True, errors="coerce", format="mixed")
    except (TypeError, ValueError):
        t = pd.to_datetime(raw_t.astype(str), utc=True, errors="coerce", format="mixed")
    df["event_time"] = t
    t_ok = t.notna()
    if (~t_ok).any():
        dropped["unreadable event_time"] = int((~t_ok).sum())
    for s in signals:
        raw = frame[s]
        arr = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan).copy()
        lo, hi = VALID_RANGES.get(s, (-math.inf, math.inf))
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr) | (arr < lo) | (arr > hi)
        invalid = int((bad & raw.notna().to_numpy()).sum())  # text, inf or out of range (not plain gaps)
        arr[bad] = np.nan
        if s in _DIRECTIONS:
            arr = np.mod(arr, 360.0)
        df[s] = arr
        if invalid:
            dropped[f"invalid {s} values (set missing)"] = invalid
    st = pd.to_numeric(frame["status_code"], errors="coerce") if "status_code" in frame.columns else None
    if st is not None and st.notna().any():
        # no status on a row = STATUS_OK, as for a telemetry event without one (the contract default)
        df["status_code"] = st.fillna(STATUS_OK).clip(-1, 999).astype(np.int64)
    else:
        df["status_code"] = STATUS_OK
        warnings.append(
            "no status codes: stops and curtailment are recognised from the data only "
            "(power <= 0, outliers of their wind bin)"
        )
    df = df[tid_ok & t_ok]
    before = len(df)
    df = df.sort_values(["turbine_id", "event_time"], kind="stable")
    df = df[~df.duplicated(["turbine_id", "event_time"], keep="first")]
    if len(df) < before:
        dropped["duplicated (turbine_id, event_time) rows (first kept)"] = before - len(df)
    return _Clean(df.reset_index(drop=True), warnings, dropped)


def epoch_seconds(t: pd.Series) -> np.ndarray:
    """Epoch seconds (float) of a UTC datetime series, whatever its resolution (ns, us, s)."""
    return t.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64) / 1e6


def hourly_arrays(df: pd.DataFrame, signals: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Hourly means on a contiguous hour grid, with the same definitions as the window's bins.

    Returns (hour start epoch seconds, arrays as :func:`hourly_terms` reads them).
    """
    hour = (epoch_seconds(df["event_time"]) // 3600).astype(np.int64)
    h0 = int(hour.min())
    idx = (hour - h0).astype(np.int64)
    n = int(idx.max()) + 1
    out: dict[str, np.ndarray] = {}
    for s in signals:
        v = df[s].to_numpy(np.float64)
        ok = np.isfinite(v)
        sums = np.bincount(idx, weights=np.where(ok, v, 0.0), minlength=n)
        cnt = np.bincount(idx, weights=ok.astype(np.float64), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s] = np.where(cnt > 0, sums / np.where(cnt > 0, cnt, 1.0), np.nan)
    if "wind_direction_deg" in df and "nacelle_direction_deg" in df:
        wd = df["wind_direction_deg"].to_numpy(np.float64)
        nd = df["nacelle_direction_deg"].to_numpy(np.float64)
        ok = np.isfinite(wd) & np.isfinite(nd)
        err = np.radians(np.where(ok, nd - wd, 0.0))
        cnt = np.bincount(idx, weights=ok.astype(np.float64), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, f in (("yaw_error_sin", np.sin), ("yaw_error_cos", np.cos)):
                sums = np.bincount(idx, weights=np.where(ok, f(err), 0.0), minlength=n)
                out[name] = np.where(cnt > 0, sums / np.where(cnt > 0, cnt, 1.0), np.nan)
    st = df["status_code"].to_numpy()
    out["events"] = np.bincount(idx, minlength=n).astype(np.float64)
    out["down"] = np.bincount(
        idx, weights=np.isin(st, (STATUS_FAULT, STATUS_MAINTENANCE)).astype(float), minlength=n
    )
    out["curtailed"] = np.bincount(idx, weights=(st == STATUS_CURTAILED).astype(float), minlength=n)
    return (h0 + np.arange(n)) * 3600.0, out


def window_hourly(hm: HourlyMeans) -> dict[str, np.ndarray]:
    """:func:`hourly_terms` input from a window's :class:`models.features.HourlyMeans`."""
    h = dict(hm.means)
    h["events"] = hm.events.astype(np.float64)
    h["down"] = hm.down.astype(np.float64)
    h["curtailed"] = hm.curtailed.astype(np.float64)
    return h


# --------------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------------


def _bin_index(wind: np.ndarray) -> np.ndarray:
    w = np.where(np.isfinite(wind), wind, 0.0)  # rows without wind are masked out by the callers
    return np.clip(np.round(w / BIN_WIDTH_MS), 0, N_WIND_BINS - 1).astype(np.int64)


def _bin_stats(idx: np.ndarray, y: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin quantiles (rows = quantiles) and counts of ``y`` (finite only)."""
    ok = np.isfinite(y)
    out = np.full((len(qs), N_WIND_BINS), np.nan)
    counts = np.bincount(idx[ok], minlength=N_WIND_BINS)
    if not ok.any():
        return out, counts
    s = pd.Series(y[ok]).groupby(idx[ok])
    for i, q in enumerate(qs):
        r = s.quantile(q)
        out[i, r.index.to_numpy()] = r.to_numpy()
    return out, counts


def _fit_temperature(y: np.ndarray, power: np.ndarray, amb: np.ndarray) -> TemperatureModel | None:
    ok = np.isfinite(y) & np.isfinite(power) & np.isfinite(amb)
    if ok.sum() < 48:
        return None
    p = power[ok] / 1000.0
    x = np.column_stack([np.ones(ok.sum()), p, p * p, amb[ok]])
    yy = y[ok]
    c, *_ = np.linalg.lstsq(x, yy, rcond=None)
    r = yy - x @ c
    keep = np.abs(r) <= 4 * (1.4826 * np.median(np.abs(r - np.median(r))) + 1e-6)
    if keep.sum() >= 24:
        c, *_ = np.linalg.lstsq(x[keep], yy[keep], rcond=None)
        r = yy[keep] - x[keep] @ c
    return TemperatureModel(coef=[float(v) for v in c], resid_std=float(np.std(r)), hours=int(keep.sum()))


def _fit_turbine(
    tid: str,
    df: pd.DataFrame,
    fitted: frozenset[str] | None,
    rated_register: float | None,
    air_density: bool,
) -> TurbineCalibration:
    """One turbine; raises :class:`CalibrationError` naming the turbine and what is short."""
    warnings: list[str] = []
    n_rows = len(df)
    if n_rows < 2:
        raise CalibrationError(f"{tid}: {n_rows} row(s); needs {REQUIREMENTS}")
    present = []
    for s in SIGNALS:
        if s not in df:
            continue
        if fitted is not None and s not in fitted:
            continue
        share = float(np.isfinite(df[s].to_numpy(np.float64)).mean())
        if share >= MIN_SIGNAL_SHARE:
            present.append(s)
        elif fitted is not None and s in fitted:
            warnings.append(
                f"{s} is declared fitted but only {share:.0%} of its rows carry a value; not calibrated"
            )
    for s in ("wind_speed_ms", "power_kw"):
        if s not in present:
            raise CalibrationError(f"{tid}: no usable {s} values (a power curve needs wind speed and power)")
    t = df["event_time"]
    start, end = t.iloc[0], t.iloc[-1]
    days = (end - start).total_seconds() / 86400.0
    dt = np.diff(epoch_seconds(t))
    period = float(np.median(dt)) if dt.size else 600.0
    period = period if period > 0 else 600.0
    if days < MIN_DAYS:
        raise CalibrationError(
            f"{tid}: only {days:.1f} days of history ({start:%Y-%m-%d} to {end:%Y-%m-%d}); needs at least "
            f"{MIN_DAYS:.0f} days ({REQUIREMENTS})"
        )
    if days < WARN_DAYS:
        warnings.append(
            f"only {days:.0f} days of history: seasons not covered, temperature models and spreads may "
            f"misjudge other weather ({WARN_DAYS:.0f}+ days recommended)"
        )
    wind = df["wind_speed_ms"].to_numpy(np.float64)
    amb = (
        df["ambient_temp_c"].to_numpy(np.float64) if "ambient_temp_c" in present else np.full(n_rows, np.nan)
    )
    if air_density:
        wind = normalise_wind(wind, amb)
    power = df["power_kw"].to_numpy(np.float64)
    status = df["status_code"].to_numpy()
    producing = np.isfinite(wind) & np.isfinite(power) & (power > 0) & (status == STATUS_OK)
    if rated_register is not None:
        rated, rated_src = float(rated_register), "register"
    else:
        if not producing.any():
            raise CalibrationError(f"{tid}: no row with status 0 and power > 0; needs {REQUIREMENTS}")
        rated, rated_src = float(np.quantile(power[producing], 0.995)), "data"
    producing &= power <= 1.5 * rated
    idx = _bin_index(wind)
    # outliers of their bin (curtailment or stops without a status code, icing): out of the curve
    (med,), _ = _bin_stats(np.where(producing, idx, 0), np.where(producing, power, np.nan), (0.5,))
    absdev = np.abs(power - med[idx])
    (mad,), _ = _bin_stats(np.where(producing, idx, 0), np.where(producing, absdev, np.nan), (0.5,))
    tol = np.maximum(6 * 1.4826 * mad[idx], 0.05 * rated)
    normal = producing & (absdev <= tol)
    normal_hours = float(normal.sum()) * period / 3600.0
    qs, counts = _bin_stats(idx, np.where(normal, power, np.nan), (0.5, 0.1, 0.9))
    mean = np.full(N_WIND_BINS, np.nan)
    ok_rows = normal & np.isfinite(power)
    sums = np.bincount(idx[ok_rows], weights=power[ok_rows], minlength=N_WIND_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)
    median = np.where(counts >= MIN_BIN_ROWS, qs[0], np.nan)
    populated = np.flatnonzero(np.isfinite(median))
    if normal_hours < MIN_NORMAL_HOURS or populated.size < 4:
        raise CalibrationError(
            f"{tid}: only {normal_hours:.0f} hours of normal operation (status 0, producing, "
            f"not an outlier); needs {MIN_NORMAL_HOURS:.0f} ({REQUIREMENTS})"
        )
    # cut-in: the first bin whose median over ALL status-0 rows (idle ones included) is production
    (all_med,), all_cnt = _bin_stats(idx, np.where(status == STATUS_OK, power, np.nan), (0.5,))
    above = np.flatnonzero((all_cnt >= MIN_BIN_ROWS) & (all_med >= 0.005 * rated) & np.isfinite(median))
    cut_in = float(BIN_CENTERS[above[0]]) if above.size else float(BIN_CENTERS[populated[0]])
    rated_bins = populated[median[populated] >= 0.95 * rated]
    if rated_bins.size:
        rated_wind = float(BIN_CENTERS[rated_bins[0]])
    else:
        top_bin = populated[-1]
        raise CalibrationError(
            f"{tid}: never reached 95 % of its rated power ({rated:.0f} kW, from the {rated_src}) in normal "
            f"operation (highest wind bin {BIN_CENTERS[top_bin]:.1f} m/s at {median[top_bin]:.0f} kW): the "
            f"wind bins up to rated wind speed are missing ({REQUIREMENTS})"
        )
    if rated_src == "data":
        warnings.append(
            f"rated power not in the register: {rated:.0f} kW taken from the data "
            "(99.5th percentile of power)"
        )
    need = (cut_in <= BIN_CENTERS) & (rated_wind >= BIN_CENTERS)
    short = [
        f"{BIN_CENTERS[i]:.1f} m/s ({counts[i]})" for i in np.flatnonzero(need & (counts < MIN_BIN_ROWS))
    ]
    if short:
        raise CalibrationError(
            f"{tid}: too few rows of normal operation in the wind bins "
            f"{', '.join(short[:8])}{' ...' if len(short) > 8 else ''} between cut-in {cut_in:.1f} and rated "
            f"{rated_wind:.1f} m/s; needs {MIN_BIN_ROWS} per bin ({REQUIREMENTS})"
        )
    # highest contiguous populated bin above rated (a lonely storm bin is not a curve)
    top = int(np.flatnonzero(rated_wind == BIN_CENTERS)[0])
    while top + 1 < N_WIND_BINS and counts[top + 1] >= MIN_BIN_ROWS:
        top += 1
    max_wind = float(BIN_CENTERS[top])
    median[top + 1 :] = np.nan
    pitch = rpm = None
    for sig in ("pitch_angle_deg", "rotor_rpm"):
        if sig in present:
            (m,), c = _bin_stats(idx, np.where(normal, df[sig].to_numpy(np.float64), np.nan), (0.5,))
            m = np.where((c >= MIN_BIN_ROWS) & np.isfinite(median), m, np.nan)
            if sig == "pitch_angle_deg":
                pitch = _opt_list(m)
            else:
                rpm = _opt_list(m)
    ranges = {}
    for s in present:
        v = df[s].to_numpy(np.float64)
        v = v[np.isfinite(v)]
        if v.size:
            ranges[s] = [round(float(np.quantile(v, 0.005)), 3), round(float(np.quantile(v, 0.995)), 3)]
    tc = TurbineCalibration(
        turbine_id=tid,
        sensor_set=sensor_set_for(fitted if fitted is not None else present),
        signals=present,
        rated_power_kw=round(rated, 3),
        rated_power_source=rated_src,
        period_s=period,
        data_start=start.isoformat(),
        data_end=end.isoformat(),
        days=round(days, 3),
        rows=n_rows,
        normal_rows=int(normal.sum()),
        normal_hours=round(normal_hours, 1),
        cut_in_ms=cut_in,
        rated_wind_ms=rated_wind,
        max_wind_ms=max_wind,
        bin_centers=[float(b) for b in BIN_CENTERS],
        power_median=_opt_list(median),
        power_mean=_opt_list(np.where(np.isfinite(median), mean, np.nan)),
        power_p10=_opt_list(np.where(np.isfinite(median), qs[1], np.nan)),
        power_p90=_opt_list(np.where(np.isfinite(median), qs[2], np.nan)),
        power_count=[int(c) for c in counts],
        pitch_median=pitch,
        rpm_median=rpm,
        normal_ranges=ranges,
        air_density=air_density,
        warnings=warnings,
    )
    _hour_start, h = hourly_arrays(df, present)
    _fit_hourly_curves(tc, h)
    if "ambient_temp_c" in present:
        ok_h = (h["events"] > 0) & (h["down"] == 0) & (h["curtailed"] == 0)
        for sig in TEMP_SIGNALS:
            if sig in present:
                model = _fit_temperature(np.where(ok_h, h[sig], np.nan), h["power_kw"], h["ambient_temp_c"])
                if model is None:
                    warnings.append(f"{sig}: fewer than 48 usable hours; no normal-behaviour model")
                else:
                    tc.temperature_models[sig] = model
    tc.deviations = fit_indicator_normals(tc, h)
    if tc.sensor_set is None:
        warnings.append(
            "its sensors satisfy no model "
            "(needs wind speed, power, ambient temperature and pitch or rotor speed)"
        )
    return tc


def _fit_hourly_curves(tc: TurbineCalibration, h: Mapping[str, np.ndarray]) -> None:
    """Median hourly power / pitch / rotor speed per 0.5 m/s bin of the hourly mean wind (normal hours
    with production), limited to the bins of the 10-minute curve."""
    wind = np.asarray(h["wind_speed_ms"], dtype=np.float64)
    if tc.air_density and "ambient_temp_c" in h:
        wind = normalise_wind(wind, np.asarray(h["ambient_temp_c"], dtype=np.float64))
    power = np.asarray(h["power_kw"], dtype=np.float64)
    ok = (h["events"] > 0) & (h["down"] == 0) & (h["curtailed"] == 0) & np.isfinite(wind)
    ok &= np.isfinite(power) & (power > 0)
    idx = _bin_index(wind)
    ten = np.isfinite(_arr(tc.power_median))
    curves = {"power": tc.power_median, "pitch": tc.pitch_median, "rpm": tc.rpm_median}
    for which, sig in (("power", "power_kw"), ("pitch", "pitch_angle_deg"), ("rpm", "rotor_rpm")):
        if sig not in h or curves[which] is None:
            continue
        (m,), c = _bin_stats(idx, np.where(ok, np.asarray(h[sig], dtype=np.float64), np.nan), (0.5,))
        m = np.where((c >= MIN_BIN_ROWS) & ten, m, np.nan)
        setattr(tc, f"hourly_{which}", _opt_list(m))


def _pool(values: list[list[float | None] | None], how: str = "median") -> list[float | None] | None:
    arrays = [_arr(v) for v in values if v is not None]
    if not arrays or len({a.size for a in arrays}) != 1:
        return None
    stacked = np.vstack(arrays)
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", RuntimeWarning)  # bins empty for every member stay NaN
        out = np.nanmedian(stacked, axis=0) if how == "median" else np.nanmax(stacked, axis=0)
    return _opt_list(out)


def type_calibration(
    turbine_id: str,
    members: list[TurbineCalibration],
    type_name: str,
    fitted: frozenset[str] | None,
    rated_kw: float | None,
    why: str,
) -> TurbineCalibration:
    """A calibration for a turbine without enough history of its own, from turbines of the same type.

    Curves are the per-bin medians of the members'; each deviation's normal center is the members'
    median and its spread the largest member spread widened by the spread of the members' centers (a
    turbine's own offsets, e.g. its nacelle sensor, are unknown). No temperature model: those are
    specific to each drive train. ``why`` (the refusal of its own history) is kept as a warning.
    """
    first = members[0]
    names = ", ".join(m.turbine_id for m in members)
    signals = sorted(set().union(*(m.signals for m in members)), key=SIGNALS.index)
    if fitted is not None:
        signals = [sig for sig in signals if sig in fitted]
    deviations: dict[str, IndicatorNormal] = {}
    for name in first.deviations:
        inds = [m.deviations[name] for m in members if name in m.deviations]
        if len(inds) != len(members) or name.startswith("temp:"):
            continue
        windows: dict[int, list[float]] = {}
        for hours in WINDOW_HOURS:
            ws = [i.windows[hours] for i in inds if hours in i.windows]
            if len(ws) != len(inds):
                continue
            centers = np.array([w[0] for w in ws])
            if name == YAW:
                center, between = _robust(centers, angle=True)
                between = float(np.std(wrap_deg(centers - center)))
            else:
                center, between = float(np.median(centers)), float(np.std(centers))
            spread = math.hypot(max(w[1] for w in ws), between)
            windows[hours] = [round(center, 6), round(spread, 6), int(sum(w[2] for w in ws))]
        if windows:
            deviations[name] = IndicatorNormal(
                hourly_center=float(np.median([i.hourly_center for i in inds])),
                hourly_spread=float(max(i.hourly_spread for i in inds)),
                hours=int(sum(i.hours for i in inds)),
                windows=windows,
            )
    ranges: dict[str, list[float]] = {}
    for sig in signals:
        rs = [m.normal_ranges[sig] for m in members if sig in m.normal_ranges]
        if rs:
            ranges[sig] = [min(r[0] for r in rs), max(r[1] for r in rs)]
    return TurbineCalibration(
        turbine_id=turbine_id,
        sensor_set=sensor_set_for(fitted if fitted is not None else signals),
        signals=signals,
        rated_power_kw=float(rated_kw)
        if rated_kw is not None
        else float(np.median([m.rated_power_kw for m in members])),
        rated_power_source="register" if rated_kw is not None else f"type ({names})",
        period_s=first.period_s,
        data_start="",
        data_end="",
        days=0.0,
        rows=0,
        normal_rows=0,
        normal_hours=0.0,
        cut_in_ms=float(np.median([m.cut_in_ms for m in members])),
        rated_wind_ms=float(np.median([m.rated_wind_ms for m in members])),
        max_wind_ms=float(min(m.max_wind_ms for m in members)),
        bin_centers=list(first.bin_centers),
        power_median=_pool([m.power_median for m in members]) or [],
        power_mean=_pool([m.power_mean for m in members]) or [],
        power_p10=_pool([m.power_p10 for m in members]) or [],
        power_p90=_pool([m.power_p90 for m in members]) or [],
        power_count=[int(v) for v in np.sum([m.power_count for m in members], axis=0)],
        pitch_median=_pool([m.pitch_median for m in members]) if "pitch_angle_deg" in signals else None,
        rpm_median=_pool([m.rpm_median for m in members]) if "rotor_rpm" in signals else None,
        normal_ranges=ranges,
        deviations=deviations,
        air_density=first.air_density,
        warnings=[
            f"calibrated from its type {type_name} ({names}): {why}; temperatures are not judged until "
            "it has its own history"
        ],
        hourly_power=_pool([m.hourly_power for m in members]),
        hourly_pitch=_pool([m.hourly_pitch for m in members]) if "pitch_angle_deg" in signals else None,
        hourly_rpm=_pool([m.hourly_rpm for m in members]) if "rotor_rpm" in signals else None,
        basis=f"type: {type_name} (from {names})",
    )


def _type_key(register: FleetRegister | None, tid: str) -> str | None:
    spec = register.get(tid) if register is not None else None
    parts = [getattr(spec, "manufacturer", None), getattr(spec, "model", None)]
    if spec is None or not any(parts):
        return None
    return " ".join(str(x) for x in parts if x)


def _register_get(register: FleetRegister | None, tid: str) -> tuple[frozenset[str] | None, float | None]:
    if register is None:
        return None, None
    spec = register.get(tid)
    if spec is None:
        return None, None
    fitted = spec.fitted_sensors
    return (None if fitted is None else frozenset(fitted)), spec.rated_power_kw


def fit_calibration(
    frame: pd.DataFrame,
    register: FleetRegister | None = None,
    *,
    air_density: bool = False,
    version: str | None = None,
    source: str = "",
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Calibration:
    """Fit every turbine of ``frame`` (contract rows); refuses turbines short of :data:`REQUIREMENTS`.

    Turbines that cannot be calibrated are listed in ``Calibration.refused`` with the reason; when none
    can, :class:`CalibrationError` lists every turbine and what it lacks. ``register`` gives fitted
    sensors (unfitted signals are ignored) and rated power.
    """
    cleaned = _clean(frame)
    df = cleaned.frame
    warnings = list(cleaned.warnings) + [f"{n:,} {what}" for what, n in cleaned.dropped.items()]
    if df.empty:
        raise CalibrationError(
            f"no usable rows in the input{' (' + source + ')' if source else ''}; " + "; ".join(warnings)
        )
    groups = list(df.groupby("turbine_id", sort=True))
    turbines: dict[str, TurbineCalibration] = {}
    refused: dict[str, str] = {}
    for i, (tid, g) in enumerate(groups):
        tid = str(tid)
        if progress is not None:
            progress(f"calibrating {tid}", i / len(groups))
        fitted, rated = _register_get(register, tid)
        try:
            turbines[tid] = _fit_turbine(tid, g, fitted, rated, air_density)
        except CalibrationError as exc:
            refused[tid] = str(exc)
    if progress is not None:
        progress("calibrating", 1.0)
    # a turbine without enough history of its own borrows its type's (same manufacturer and model)
    types: dict[str, list[TurbineCalibration]] = {}
    for tid, tc in turbines.items():
        key = _type_key(register, tid)
        if key is not None:
            types.setdefault(key, []).append(tc)
    seen = {str(t) for t, _ in groups}
    registered = sorted(getattr(register, "turbines", {})) if register is not None else []
    for tid in sorted(set(refused) | (set(registered) - seen)):
        key = _type_key(register, tid)
        if key is None or key not in types:
            continue
        fitted, rated = _register_get(register, tid)
        why = refused.pop(tid, f"{tid}: no rows in the input")
        turbines[tid] = type_calibration(tid, types[key], key, fitted, rated, why)
    if register is not None:
        absent = sorted(set(registered) - seen - set(turbines))
        if absent:
            warnings.append(
                f"{len(absent)} register turbine(s) without rows in the input: {', '.join(absent[:10])}"
            )
    if not turbines:
        raise CalibrationError(
            "no turbine could be calibrated:\n" + "\n".join(f"  {msg}" for msg in refused.values())
        )
    fitted_at = (now or datetime.now(UTC)).isoformat()
    return Calibration(
        version=version or ("c" + (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")),
        fitted_at=fitted_at,
        data_start=df["event_time"].min().isoformat(),
        data_end=df["event_time"].max().isoformat(),
        turbines=turbines,
        refused=refused,
        warnings=warnings,
        air_density=air_density,
        source=source,
    )
