"""Per-turbine features: one incremental definition used by the streaming scorer AND by training.

Why bins: the scorer must absorb >= 20,000 events/s per worker, so ``FeatureWindow.update`` does
O(1) pure-Python work per event - it adds each tracked signal into a one-hour bin (sum, count, max)
of a preallocated ring buffer (``array.array``, compact and fast to index) and updates a few
data-quality counters. Features (rolling means, maxima, spreads and slopes over 6 h .. 7 d,
residuals against a normal-behaviour model, power-curve residual, alarm counts, data quality) are
computed lazily and vectorised from the bins, for one window or for a whole batch of windows.

Offline (``compute_features``) replays history through exactly the same ``_ingest`` code and
computes features with exactly the same ``feature_matrix`` function, so training and serving agree.

Out-of-order events: an event whose hour is still inside the 7-day ring is added to its bin; older
events are ignored and counted (``late_events_dropped``). Frozen-sensor and spike detection only
look at in-order events (a late event says nothing about the current run of identical values).
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from common.contracts import (
    STATUS_ALARM_PRESSURE,
    STATUS_ALARM_TEMPERATURE,
    STATUS_ALARM_VIBRATION,
    STATUS_CURTAILED,
    STATUS_FAULT,
    STATUS_MAINTENANCE,
)

#: Serialisation format of :meth:`FeatureWindow.to_bytes`; bump on any layout change.
WINDOW_FORMAT_VERSION = 2
_MAGIC = b"FWIN"

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
_IDX = {name: i for i, name in enumerate(TRACKED_SIGNALS)}
#: Signals whose frozen reading makes an assessment untrustworthy.
KEY_SIGNALS: tuple[str, ...] = (*TEMP_SIGNALS, "vibration_mm_s")
_KEY_IDX = np.array([_IDX[s] for s in KEY_SIGNALS])

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

# Per-bin counters.
C_EVENTS, C_MISSING, C_SPIKES, C_ALARMS, C_DOWN, C_CURTAILED = range(6)
N_COUNTERS = 6
_STATUS_COUNTER = {
    STATUS_ALARM_TEMPERATURE: C_ALARMS,
    STATUS_ALARM_VIBRATION: C_ALARMS,
    STATUS_ALARM_PRESSURE: C_ALARMS,
    STATUS_FAULT: C_DOWN,
    STATUS_MAINTENANCE: C_DOWN,
    STATUS_CURTAILED: C_CURTAILED,
}

#: Long-term per-turbine baseline: exponentially weighted hourly means, time constant 30 days.
BASELINE_TAU_HOURS = 720.0
_DECAY = math.exp(-1.0 / BASELINE_TAU_HOURS)
_P = TRACKED_SIGNALS.index("power_kw")
_A = TRACKED_SIGNALS.index("ambient_temp_c")
_R = TRACKED_SIGNALS.index("rotor_rpm")
N_BASE = K + 2  # tracked signals' means, then mean of (hourly power)^2 and (hourly rpm)^2

#: Operational signals kept beside the tracked ones, per hourly bin (sum and count; not model features,
#: so ``FEATURE_NAMES`` and trained models are unaffected): the pitch angle, the presence of the wind
#: and nacelle directions, and the yaw misalignment (nacelle - wind direction) as sine and cosine so that
#: hourly and window means are circular means. Read with :meth:`FeatureWindow.hourly`.
AUX_SIGNALS: tuple[str, ...] = (
    "pitch_angle_deg",
    "wind_direction_deg",
    "nacelle_direction_deg",
    "yaw_error_sin",
    "yaw_error_cos",
)
KA = len(AUX_SIGNALS)
_AUX_PITCH, _AUX_WDIR, _AUX_NDIR, _AUX_SIN, _AUX_COS = range(KA)
#: ``to_bytes`` flags: bit 0 = counts stored as uint16; bit 1 = the auxiliary section follows the body.
_FLAG_SMALL, _FLAG_AUX = 1, 2
#: Flag bit 2: a repair floor (8 bytes, float64 epoch seconds) follows the auxiliary section.
_FLAG_FLOOR = 4

DEFAULT_FROZEN_MIN_COUNT = 12
DEFAULT_FROZEN_MIN_SECONDS = 3 * 3600.0
_NO_HOUR = -(1 << 62)


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


#: Load (MW) at which ``resid_full_load_72h`` evaluates the load-dependent residual (~rated power).
FULL_LOAD_MW = 2.0
LOAD_RESPONSE_HOURS: tuple[int, ...] = (24, 72, 168)


#: Feature order of :meth:`FeatureWindow.features` and of every model's input.
FEATURE_NAMES: tuple[str, ...] = _build_feature_names()
N_FEATURES = len(FEATURE_NAMES)


# --------------------------------------------------------------------------------------------------
# Normal-behaviour model
# --------------------------------------------------------------------------------------------------


@dataclass
class NormalModel:
    """Expected component temperature / vibration for the current load and ambient, plus power curve.

    Why linear: ``target ~ 1 + P + P^2 + P(previous hour) + ambient + rpm + rpm^2`` on hourly means
    captures load, rotor speed, thermal lag and weather with seven coefficients per signal, is fitted in
    milliseconds, evaluates vectorised over thousands of windows and - being linear - also applies to
    the long-term (30-day) averages kept by the window, which yields a per-turbine residual baseline.
    """

    targets: tuple[str, ...]
    coef: np.ndarray  # (len(targets), 7)
    resid_std: np.ndarray  # (len(targets),) residual std on healthy data
    pc_wind: np.ndarray  # power-curve wind-speed grid (m/s)
    pc_power: np.ndarray  # expected power (kW) at pc_wind
    pc_resid_std: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def expected(
        self,
        power_kw: np.ndarray,
        power_prev_kw: np.ndarray,
        ambient_c: np.ndarray,
        rpm: np.ndarray,
        power_sq: np.ndarray | None = None,
        rpm_sq: np.ndarray | None = None,
    ) -> np.ndarray:
        """Expected targets, shape ``power_kw.shape + (n_targets,)``.

        ``power_sq`` / ``rpm_sq`` default to the squares of the inputs; long-term baselines pass the
        averaged squares instead (mean of squares != square of mean).
        """
        return _design_nd(power_kw, power_prev_kw, ambient_c, rpm, power_sq, rpm_sq) @ self.coef.T

    def expected_power(self, wind_ms: np.ndarray) -> np.ndarray:
        return np.interp(wind_ms, self.pc_wind, self.pc_power)


def _design_nd(
    power_kw: np.ndarray,
    power_prev_kw: np.ndarray,
    ambient_c: np.ndarray,
    rpm: np.ndarray,
    power_sq: np.ndarray | None = None,
    rpm_sq: np.ndarray | None = None,
) -> np.ndarray:
    p = power_kw / 1000.0
    psq = p * p if power_sq is None else power_sq / 1e6
    r = rpm / 10.0
    rsq = r * r if rpm_sq is None else rpm_sq / 100.0
    return np.stack([np.ones_like(p), p, psq, power_prev_kw / 1000.0, ambient_c, r, rsq], axis=-1)


def fit_normal_model(hourly: pd.DataFrame) -> NormalModel:
    """Fit the normal-behaviour model on HEALTHY hourly means.

    ``hourly`` has one row per turbine-hour with the tracked signals' hourly means and a
    ``power_prev_kw`` column (previous hour's mean power of the same turbine; NaN if unknown). The
    caller removes degraded, down and curtailed hours. Two-pass least squares drops gross outliers.
    """
    prev = hourly["power_prev_kw"].fillna(hourly["power_kw"]).to_numpy(float)
    power = hourly["power_kw"].to_numpy(float)
    amb = hourly["ambient_temp_c"].to_numpy(float)
    rpm = hourly["rotor_rpm"].to_numpy(float)
    base_ok = np.isfinite(power) & np.isfinite(prev) & np.isfinite(amb) & np.isfinite(rpm)
    coefs, stds = [], []
    for sig in NBM_TARGETS:
        y = hourly[sig].to_numpy(float)
        ok = base_ok & np.isfinite(y)
        if ok.sum() < 10:
            coefs.append(np.array([np.nanmean(y) if np.isfinite(y).any() else 0.0, 0, 0, 0, 0, 0, 0]))
            stds.append(1.0)
            continue
        x = _design_nd(power[ok], prev[ok], amb[ok], rpm[ok])
        yy = y[ok]
        c, *_ = np.linalg.lstsq(x, yy, rcond=None)
        r = yy - x @ c
        keep = np.abs(r) <= 4 * (r.std() + 1e-9)
        c, *_ = np.linalg.lstsq(x[keep], yy[keep], rcond=None)
        coefs.append(c)
        stds.append(float(np.std(yy[keep] - x[keep] @ c)))
    wind = hourly["wind_speed_ms"].to_numpy(float)
    ok = np.isfinite(wind) & np.isfinite(power)
    grid = np.arange(0.0, 30.01, 0.5)
    pc = np.full(grid.shape, np.nan)
    if ok.any():
        idx = np.clip(np.round(wind[ok] / 0.5).astype(int), 0, len(grid) - 1)
        for g in np.unique(idx):
            sel = idx == g
            if sel.sum() >= 3:
                pc[g] = float(np.median(power[ok][sel]))
    good = np.isfinite(pc)
    pc = np.interp(grid, grid[good], pc[good]) if good.any() else np.zeros_like(grid)
    pc_resid = power[ok] - np.interp(wind[ok], grid, pc) if ok.any() else np.zeros(1)
    return NormalModel(
        targets=NBM_TARGETS,
        coef=np.vstack(coefs),
        resid_std=np.asarray(stds),
        pc_wind=grid,
        pc_power=pc,
        pc_resid_std=float(np.std(pc_resid)),
        meta={"n_hours": len(hourly)},
    )


# --------------------------------------------------------------------------------------------------
# The window
# --------------------------------------------------------------------------------------------------

_ZERO_D = array("d", [0.0] * K)
_ZERO_I = array("I", [0] * K)
_NEGINF_F = array("f", [-math.inf] * K)
_ZERO_C = array("I", [0] * N_COUNTERS)
_ZERO_AD = array("d", [0.0] * KA)
_ZERO_AI = array("I", [0] * KA)
_SPIKE_THR = [SPIKE_THRESHOLDS[s] for s in TRACKED_SIGNALS]
_HEADER = struct.Struct("<4sBBHHqdddQQ")  # magic ver flags n_bins k newest first last as_of late total


def _to_epoch(value: Any) -> float:
    """Event time as epoch seconds; naive datetimes are taken as UTC (the contract requires UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _to_epoch(datetime.fromisoformat(value))
    if isinstance(value, np.datetime64):
        return float(value.astype("datetime64[ns]").astype(np.int64)) / 1e9
    raise TypeError(f"unsupported event_time {value!r}")


class FeatureWindow:
    """Rolling 7-day state of ONE turbine; see module docstring for why it is built on hourly bins."""

    __slots__ = (
        "_aux_cnt",
        "_aux_sum",
        "_base_hour",
        "_base_s",
        "_base_w",
        "_cnt",
        "_ctr",
        "_first_ts",
        "_floor_ts",
        "_frozen_min_count",
        "_frozen_min_seconds",
        "_last",
        "_last_ts",
        "_late",
        "_max",
        "_newest_hour",
        "_run",
        "_run_start",
        "_sum",
        "_total",
        "turbine_id",
    )

    def __init__(
        self,
        turbine_id: str = "",
        *,
        frozen_min_count: int = DEFAULT_FROZEN_MIN_COUNT,
        frozen_min_seconds: float = DEFAULT_FROZEN_MIN_SECONDS,
    ) -> None:
        self.turbine_id = turbine_id
        self._frozen_min_count = frozen_min_count
        self._frozen_min_seconds = frozen_min_seconds
        self._sum = array("d", [0.0] * (N_BINS * K))
        self._cnt = array("I", [0] * (N_BINS * K))
        self._max = array("f", [-math.inf] * (N_BINS * K))
        self._ctr = array("I", [0] * (N_BINS * N_COUNTERS))
        self._aux_sum = array("d", [0.0] * (N_BINS * KA))
        self._aux_cnt = array("I", [0] * (N_BINS * KA))
        self._last = [math.nan] * K
        self._run = [0] * K
        self._run_start = [0.0] * K
        self._newest_hour = _NO_HOUR
        self._first_ts = math.inf
        self._last_ts = -math.inf
        self._late = 0
        self._total = 0
        self._base_s = [0.0] * N_BASE
        self._base_w = [0.0] * N_BASE
        self._base_hour = _NO_HOUR
        self._floor_ts = -math.inf  # a repair: readings before it are ignored (see drop_before)

    # ---------------------------------------------------------------- ingestion (hot path)
    def update(self, event: Any) -> None:
        """Add one reading (``TelemetryEvent`` or mapping with the same fields). O(number of signals)."""
        d = event if isinstance(event, Mapping) else event.__dict__
        self._ingest(
            _to_epoch(d["event_time"]),
            [d.get(name) for name in TRACKED_SIGNALS],
            d.get("status_code") or 0,
            (d.get("pitch_angle_deg"), d.get("wind_direction_deg"), d.get("nacelle_direction_deg")),
        )

    def _ingest(self, ts: float, vals: Sequence[Any], status: int, aux: Sequence[Any] | None = None) -> None:
        if ts < self._floor_ts:  # before the turbine's last repair: not its current condition
            return
        hour = int(ts // BIN_SECONDS)
        newest = self._newest_hour
        if hour > newest:
            self._advance(hour)
        elif hour <= newest - N_BINS:
            self._late += 1
            return
        self._total += 1
        slot = hour % N_BINS
        base = slot * K
        s = self._sum
        c = self._cnt
        mx = self._max
        in_order = ts >= self._last_ts
        if in_order:
            self._last_ts = ts
        if ts < self._first_ts:
            self._first_ts = ts
        last = self._last
        run = self._run
        miss = 0
        spikes = 0
        for k in range(K):
            v = vals[k]
            if v is None or v != v:
                miss += 1
                continue
            j = base + k
            s[j] += v
            c[j] += 1
            if v > mx[j]:
                mx[j] = v
            if in_order:
                p = last[k]
                if v == p:
                    run[k] += 1
                else:
                    if abs(v - p) > _SPIKE_THR[k]:
                        spikes += 1
                    last[k] = v
                    run[k] = 1
                    self._run_start[k] = ts
        cb = slot * N_COUNTERS
        ctr = self._ctr
        ctr[cb] += 1
        if miss:
            ctr[cb + C_MISSING] += miss
        if spikes:
            ctr[cb + C_SPIKES] += spikes
        if status:
            which = _STATUS_COUNTER.get(status)
            if which is not None:
                ctr[cb + which] += 1
        if aux is not None:
            self._ingest_aux(slot * KA, aux)

    def _ingest_aux(self, ab: int, aux: Sequence[Any]) -> None:
        """Pitch angle, direction presence and yaw misalignment (sin, cos) of one event into its bin."""
        pitch, wdir, ndir = aux
        s = self._aux_sum
        c = self._aux_cnt
        if pitch is not None and math.isfinite(pitch):
            s[ab] += pitch
            c[ab] += 1
        w_ok = wdir is not None and math.isfinite(wdir)
        n_ok = ndir is not None and math.isfinite(ndir)
        if w_ok:
            c[ab + _AUX_WDIR] += 1
        if n_ok:
            c[ab + _AUX_NDIR] += 1
        if w_ok and n_ok:
            err = math.radians(ndir - wdir)
            s[ab + _AUX_SIN] += math.sin(err)
            s[ab + _AUX_COS] += math.cos(err)
            c[ab + _AUX_SIN] += 1
            c[ab + _AUX_COS] += 1

    def _advance(self, hour: int) -> None:
        """Move the ring to ``hour``, clearing the bins of the hours that are skipped or reused."""
        old = self._newest_hour
        if old != _NO_HOUR:
            self._fold(old)
            for h in range(old + 1, old + 1 + min(hour - old, N_BINS)):
                slot = h % N_BINS
                a, b = slot * K, slot * K + K
                self._sum[a:b] = _ZERO_D
                self._cnt[a:b] = _ZERO_I
                self._max[a:b] = _NEGINF_F
                self._ctr[slot * N_COUNTERS : slot * N_COUNTERS + N_COUNTERS] = _ZERO_C
                self._aux_sum[slot * KA : slot * KA + KA] = _ZERO_AD
                self._aux_cnt[slot * KA : slot * KA + KA] = _ZERO_AI
        self._newest_hour = hour

    def _fold(self, hour: int) -> None:
        """Fold the completed bin of ``hour`` into the 30-day baseline (once per hour, not per event).

        Down-time and curtailed hours only decay the baseline: they are not "normal operation".
        """
        bs, bw = self._base_s, self._base_w
        if self._base_hour != _NO_HOUR:
            d = _DECAY ** (hour - self._base_hour)
            for i in range(N_BASE):
                bs[i] *= d
                bw[i] *= d
        self._base_hour = hour
        slot = hour % N_BINS
        cb = slot * N_COUNTERS
        if self._ctr[cb + C_DOWN] or self._ctr[cb + C_CURTAILED]:
            return
        base = slot * K
        for k in range(K):
            n = self._cnt[base + k]
            if n:
                m = self._sum[base + k] / n
                bs[k] += m
                bw[k] += 1.0
                if k == _P:
                    bs[K] += m * m
                    bw[K] += 1.0
                elif k == _R:
                    bs[K + 1] += m * m
                    bw[K + 1] += 1.0

    # ---------------------------------------------------------------- repairs
    def drop_before(self, ts: float) -> int:
        """Forget what the window holds from before ``ts`` (a repair, epoch seconds); returns hours cleared.

        Every hourly bin that starts before ``ts`` is cleared (the bin holding ``ts`` itself too, when
        the repair is mid-hour), the 30-day baseline is rebuilt from the completed hours kept, identical-
        value runs that started before ``ts`` end, and readings older than ``ts`` that arrive later are
        ignored (the floor is kept in :meth:`to_bytes`). A repair older than the window's first hour only
        sets that floor (the hours held and the baseline are already about the repaired turbine).
        Idempotent: a second call with the same or an older time changes nothing (a replayed repair
        command, a restore from a checkpoint).
        The newest event time (``as_of``) is unchanged: the turbine was last seen then.
        """
        ts = float(ts)
        if not math.isfinite(ts) or ts <= self._floor_ts:
            return 0
        self._floor_ts = ts
        cutoff = math.ceil(ts / BIN_SECONDS)  # first hour kept: it starts at or after ts
        newest = self._newest_hour
        if newest != _NO_HOUR and cutoff <= newest - N_BINS + 1:
            # A repair older than the whole window (recorded late): every hour held is after it; the
            # baseline keeps its post-repair weeks. Only later-arriving older readings are refused.
            self._first_ts = max(self._first_ts, ts)
            return 0
        cleared = 0
        if newest != _NO_HOUR:
            for h in range(newest - N_BINS + 1, min(cutoff, newest + 1)):
                slot = h % N_BINS
                a, b = slot * K, slot * K + K
                if self._ctr[slot * N_COUNTERS]:
                    cleared += 1
                self._sum[a:b] = _ZERO_D
                self._cnt[a:b] = _ZERO_I
                self._max[a:b] = _NEGINF_F
                self._ctr[slot * N_COUNTERS : slot * N_COUNTERS + N_COUNTERS] = _ZERO_C
                self._aux_sum[slot * KA : slot * KA + KA] = _ZERO_AD
                self._aux_cnt[slot * KA : slot * KA + KA] = _ZERO_AI
        self._base_s = [0.0] * N_BASE
        self._base_w = [0.0] * N_BASE
        self._base_hour = _NO_HOUR
        if newest != _NO_HOUR:
            for h in range(max(cutoff, newest - N_BINS + 1), newest):  # completed hours kept
                self._fold(h)
        for k in range(K):
            if self._run_start[k] < ts:
                self._run[k] = 0
                self._last[k] = math.nan
        if self._last_ts == -math.inf:
            return cleared
        # nothing kept when the repair is after the newest event: the next reading starts the history
        self._first_ts = math.inf if ts > self._last_ts else max(self._first_ts, ts)
        return cleared

    @property
    def repaired_before(self) -> float | None:
        """Epoch seconds of the last repair applied by :meth:`drop_before` (None: never)."""
        return None if self._floor_ts == -math.inf else self._floor_ts

    # ---------------------------------------------------------------- views
    @property
    def n_events(self) -> int:
        return self._total

    @property
    def late_events_dropped(self) -> int:
        return self._late

    @property
    def last_event_ts(self) -> float | None:
        return None if self._last_ts == -math.inf else self._last_ts

    @property
    def as_of(self) -> datetime | None:
        """Time of the newest event seen (the as-of time of a score computed from this window)."""
        ts = self.last_event_ts
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    def _frozen_hours(self) -> np.ndarray:
        """Per tracked signal: hours the current identical-value run lasts (0 when not frozen)."""
        out = np.zeros(K)
        if self._last_ts == -math.inf:
            return out
        for k in range(K):
            if self._run[k] >= self._frozen_min_count:
                dur = self._last_ts - self._run_start[k]
                if dur >= self._frozen_min_seconds:
                    out[k] = dur / 3600.0
        return out

    def snapshot(self) -> WindowSnapshot:
        """Time-ordered copy of the bins (oldest hour first) for vectorised feature computation."""
        newest = self._newest_hour
        start = 0 if newest == _NO_HOUR else newest + 1
        order = (start + np.arange(N_BINS)) % N_BINS
        sums = np.frombuffer(self._sum, dtype=np.float64).reshape(N_BINS, K)[order]
        cnts = np.frombuffer(self._cnt, dtype=np.uint32).reshape(N_BINS, K)[order]
        maxs = np.frombuffer(self._max, dtype=np.float32).reshape(N_BINS, K)[order]
        ctrs = np.frombuffer(self._ctr, dtype=np.uint32).reshape(N_BINS, N_COUNTERS)[order]
        bw = np.asarray(self._base_w)
        with np.errstate(invalid="ignore", divide="ignore"):
            baseline = np.where(bw > 0.5, np.asarray(self._base_s) / bw, np.nan)
        aux_sums = np.frombuffer(self._aux_sum, dtype=np.float64).reshape(N_BINS, KA)[order]
        aux_cnts = np.frombuffer(self._aux_cnt, dtype=np.uint32).reshape(N_BINS, KA)[order]
        return WindowSnapshot(
            sums,
            cnts,
            maxs,
            ctrs,
            self._frozen_hours(),
            baseline,
            float(bw[_P]),
            aux_sums=aux_sums,
            aux_counts=aux_cnts,
            newest_hour=None if newest == _NO_HOUR else newest,
        )

    def features(self, normal_model: NormalModel | None = None) -> np.ndarray:
        """Feature vector in ``FEATURE_NAMES`` order (NaN where not computable)."""
        return feature_matrix([self.snapshot()], normal_model)[0]

    def data_quality(
        self,
        now: datetime | None = None,
        snapshot: WindowSnapshot | None = None,
        fitted: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Data-quality indicators used by the risk policy (JSON-serialisable).

        ``now`` enables ``seconds_since_last_event``; pass ``snapshot`` to reuse one already taken.
        ``fitted`` (the turbine's fitted sensors; None = all) limits the missing share, silent and
        frozen sensors to signals the turbine has: a sensor that is not fitted is not missing data.
        With ``fitted``, the missing share counts the fitted tracked signals and the fitted pitch angle
        and wind / nacelle directions.
        """
        snap = snapshot if snapshot is not None else self.snapshot()
        last24 = snap.counters[-24:]
        cnt24 = snap.counts[-24:]
        events24 = int(last24[:, C_EVENTS].sum())
        frozen = {TRACKED_SIGNALS[k]: round(float(h), 2) for k, h in enumerate(snap.frozen_hours) if h > 0}
        key_counts = cnt24[:, _KEY_IDX].sum(axis=0)
        silent = [KEY_SIGNALS[i] for i, n in enumerate(key_counts) if n == 0 and events24 > 0]
        if fitted is None:
            expected_values = events24 * K
            missing24 = int(last24[:, C_MISSING].sum())
        else:
            have = frozenset(fitted)
            # one reading or one missing value per event and signal: missing = events - readings
            present = [int(cnt24[:, k].sum()) for k, sig in enumerate(TRACKED_SIGNALS) if sig in have]
            if snap.aux_counts is not None:
                aux24 = snap.aux_counts[-24:]
                for j in (_AUX_PITCH, _AUX_WDIR, _AUX_NDIR):
                    if AUX_SIGNALS[j] in have:
                        present.append(int(aux24[:, j].sum()))
            expected_values = events24 * len(present)
            missing24 = expected_values - sum(present)
            frozen = {sig: h for sig, h in frozen.items() if sig in have}
            silent = [sig for sig in silent if sig in have]
        last_ts = self.last_event_ts
        since: float | None = None
        if now is not None and last_ts is not None:
            since = max(0.0, _to_epoch(now) - last_ts)
        first = None if self._first_ts == math.inf else self._first_ts
        return {
            "events_in_window": int(snap.counters[:, C_EVENTS].sum()),
            "events_24h": events24,
            "last_event_time": None if last_ts is None else datetime.fromtimestamp(last_ts, UTC).isoformat(),
            "seconds_since_last_event": since,
            "history_hours": 0.0 if first is None or last_ts is None else round((last_ts - first) / 3600, 2),
            "coverage_hours_24h": int((last24[:, C_EVENTS] > 0).sum()),
            "missing_share_24h": round(missing24 / expected_values, 4) if expected_values else 1.0,
            "spikes_24h": int(last24[:, C_SPIKES].sum()),
            "frozen_signals": frozen,
            "silent_key_signals_24h": silent,
            "late_events_dropped": self._late,
        }

    def hourly(self, snapshot: WindowSnapshot | None = None) -> HourlyMeans:
        """Hourly means of every tracked and auxiliary signal over the window (see :func:`hourly_view`)."""
        return hourly_view(snapshot if snapshot is not None else self.snapshot())

    # ---------------------------------------------------------------- serialisation
    def to_bytes(self) -> bytes:
        """Compact versioned state: a struct header + raw typed arrays, zlib-compressed (no pickle)."""
        counts = np.frombuffer(self._cnt, dtype=np.uint32)
        ctrs = np.frombuffer(self._ctr, dtype=np.uint32)
        aux_cnts = np.frombuffer(self._aux_cnt, dtype=np.uint32)
        small = bool(
            counts.max(initial=0) < 65536 and ctrs.max(initial=0) < 65536 and aux_cnts.max(initial=0) < 65536
        )
        ctype = np.uint16 if small else np.uint32
        header = _HEADER.pack(
            _MAGIC,
            WINDOW_FORMAT_VERSION,
            (_FLAG_SMALL if small else 0) | _FLAG_AUX | (_FLAG_FLOOR if self._floor_ts != -math.inf else 0),
            N_BINS,
            K,
            self._newest_hour,
            self._first_ts,
            self._last_ts,
            self._frozen_min_seconds,
            self._late,
            self._total,
        )
        tid = self.turbine_id.encode()
        body = b"".join(
            [
                struct.pack("<HI", len(tid), self._frozen_min_count),
                tid,
                np.asarray(self._last, dtype=np.float64).tobytes(),
                np.asarray(self._run, dtype=np.uint32).tobytes(),
                np.asarray(self._run_start, dtype=np.float64).tobytes(),
                np.asarray(self._base_s, dtype=np.float64).tobytes(),
                np.asarray(self._base_w, dtype=np.float64).tobytes(),
                struct.pack("<q", self._base_hour),
                self._sum.tobytes(),
                counts.astype(ctype).tobytes(),
                self._max.tobytes(),
                ctrs.astype(ctype).tobytes(),
                # auxiliary section last (flag bit 1): readers without it ignore the trailing bytes
                self._aux_sum.tobytes(),
                aux_cnts.astype(ctype).tobytes(),
                # repair floor last (flag bit 2), only when a repair was applied
                struct.pack("<d", self._floor_ts) if self._floor_ts != -math.inf else b"",
            ]
        )
        return header + zlib.compress(body, 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureWindow:
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on an unknown format or layout."""
        if len(data) < _HEADER.size or data[:4] != _MAGIC:
            raise ValueError("not a FeatureWindow state (bad magic)")
        _magic, ver, flags, n_bins, k, newest, first, last, fmin_s, late, total = _HEADER.unpack_from(data)
        if ver != WINDOW_FORMAT_VERSION or n_bins != N_BINS or k != K:
            raise ValueError(
                f"FeatureWindow state format {ver} (bins={n_bins}, signals={k}) is not supported; "
                f"expected {WINDOW_FORMAT_VERSION} (bins={N_BINS}, signals={K})"
            )
        try:
            body = zlib.decompress(data[_HEADER.size :])
        except zlib.error as exc:
            raise ValueError(f"corrupted FeatureWindow state: {exc}") from exc
        tid_len, fmin_c = struct.unpack_from("<HI", body)
        pos = 6
        tid = body[pos : pos + tid_len].decode()
        pos += tid_len
        ctype = np.uint16 if flags & _FLAG_SMALL else np.uint32
        csize = np.dtype(ctype).itemsize

        def take(dtype: Any, n: int, size: int) -> np.ndarray:
            nonlocal pos
            arr = np.frombuffer(body, dtype=dtype, count=n, offset=pos)
            pos += n * size
            return arr

        win = cls(tid, frozen_min_count=fmin_c, frozen_min_seconds=fmin_s)
        win._last = take(np.float64, K, 8).tolist()
        win._run = take(np.uint32, K, 4).tolist()
        win._run_start = take(np.float64, K, 8).tolist()
        win._base_s = take(np.float64, N_BASE, 8).tolist()
        win._base_w = take(np.float64, N_BASE, 8).tolist()
        (win._base_hour,) = struct.unpack_from("<q", body, pos)
        pos += 8
        win._sum = array("d", take(np.float64, N_BINS * K, 8).tobytes())
        win._cnt = array("I", take(ctype, N_BINS * K, csize).astype(np.uint32).tobytes())
        win._max = array("f", take(np.float32, N_BINS * K, 4).tobytes())
        win._ctr = array("I", take(ctype, N_BINS * N_COUNTERS, csize).astype(np.uint32).tobytes())
        if flags & _FLAG_AUX:  # states written before the auxiliary section start with empty aux bins
            win._aux_sum = array("d", take(np.float64, N_BINS * KA, 8).tobytes())
            win._aux_cnt = array("I", take(ctype, N_BINS * KA, csize).astype(np.uint32).tobytes())
            if flags & _FLAG_FLOOR:
                (win._floor_ts,) = struct.unpack_from("<d", body, pos)
                pos += 8
        win._newest_hour = newest
        win._first_ts = first
        win._last_ts = last
        win._late = late
        win._total = total
        return win


@dataclass
class WindowSnapshot:
    """Time-ordered bins of one window (oldest first): input of :func:`feature_matrix`."""

    sums: np.ndarray  # (N_BINS, K) float64
    counts: np.ndarray  # (N_BINS, K) uint32
    maxs: np.ndarray  # (N_BINS, K) float32
    counters: np.ndarray  # (N_BINS, N_COUNTERS) uint32
    frozen_hours: np.ndarray  # (K,)
    baseline: np.ndarray  # (N_BASE,) 30-day means (NaN until ~1 h of history)
    baseline_hours: float  # effective hours in the baseline
    aux_sums: np.ndarray | None = None  # (N_BINS, KA) float64, AUX_SIGNALS order (None: not kept)
    aux_counts: np.ndarray | None = None  # (N_BINS, KA) uint32
    newest_hour: int | None = None  # epoch hour (ts // 3600) of the newest bin; None = empty window


@dataclass
class HourlyMeans:
    """Hourly view of one window, oldest hour first (``N_BINS`` hours ending with the newest bin).

    ``means`` holds every ``TRACKED_SIGNALS`` name, ``pitch_angle_deg``, ``yaw_error_sin`` /
    ``yaw_error_cos`` (hourly means of the sine / cosine of nacelle - wind direction) and
    ``yaw_error_deg`` (their circular mean, -180..180); NaN where the hour has no reading.
    ``counts`` holds the readings per hour of every tracked and auxiliary signal.
    """

    hour_start: np.ndarray  # (N_BINS,) epoch seconds of each hour's start (NaN for an empty window)
    means: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    events: np.ndarray  # events per hour
    down: np.ndarray  # fault / maintenance events per hour
    curtailed: np.ndarray  # curtailed events per hour
    alarms: np.ndarray  # alarm events per hour


def hourly_view(snap: WindowSnapshot) -> HourlyMeans:
    """:class:`HourlyMeans` of a snapshot (auxiliary signals all NaN when the snapshot has none)."""
    cnts = snap.counts.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tracked = snap.sums / np.where(cnts > 0, cnts, np.nan)
    means = {sig: tracked[:, k] for k, sig in enumerate(TRACKED_SIGNALS)}
    counts = {sig: snap.counts[:, k].astype(np.int64) for k, sig in enumerate(TRACKED_SIGNALS)}
    if snap.aux_sums is not None and snap.aux_counts is not None:
        acnt = snap.aux_counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            aux = snap.aux_sums / np.where(acnt > 0, acnt, np.nan)
        for j in (_AUX_PITCH, _AUX_SIN, _AUX_COS):
            means[AUX_SIGNALS[j]] = aux[:, j]
        for j, sig in enumerate(AUX_SIGNALS):
            counts[sig] = snap.aux_counts[:, j].astype(np.int64)
    else:
        for j in (_AUX_PITCH, _AUX_SIN, _AUX_COS):
            means[AUX_SIGNALS[j]] = np.full(N_BINS, np.nan)
        for sig in AUX_SIGNALS:
            counts[sig] = np.zeros(N_BINS, dtype=np.int64)
    means["yaw_error_deg"] = np.degrees(np.arctan2(means["yaw_error_sin"], means["yaw_error_cos"]))
    if snap.newest_hour is None:
        hour_start = np.full(N_BINS, np.nan)
    else:
        hour_start = (snap.newest_hour - N_BINS + 1 + np.arange(N_BINS)) * float(BIN_SECONDS)
    ctr = snap.counters.astype(np.int64)
    return HourlyMeans(
        hour_start=hour_start,
        means=means,
        counts=counts,
        events=ctr[:, C_EVENTS],
        down=ctr[:, C_DOWN],
        curtailed=ctr[:, C_CURTAILED],
        alarms=ctr[:, C_ALARMS],
    )


# --------------------------------------------------------------------------------------------------
# Vectorised features
# --------------------------------------------------------------------------------------------------


def _tail_sums(a: np.ndarray) -> np.ndarray:
    """``out[:, h - 1]`` = sum of the newest ``h`` hours (time is axis 1, newest last)."""
    return np.cumsum(a[:, ::-1], axis=1)


def _tail_stats(
    y: np.ndarray, horizons: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Mean, spread (std) and least-squares slope per day of hourly values over the newest ``h`` hours.

    Why cumulative sums: every horizon then costs O(1) array operations instead of re-slicing and
    re-reducing the bins, which keeps a 10,000-turbine sweep in numpy's fast paths. NaN = no data.
    """
    n = y.shape[1]
    w = np.isfinite(y)
    yz = np.where(w, y, 0.0)
    wf = w.astype(np.float64)
    x = np.arange(n, dtype=np.float64).reshape((1, n) + (1,) * (y.ndim - 2))
    sw, sx, sxx = _tail_sums(wf), _tail_sums(wf * x), _tail_sums(wf * x * x)
    sy, sxy, syy = _tail_sums(yz), _tail_sums(yz * x), _tail_sums(yz * yz)
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for h in horizons:
            i = h - 1
            c = sw[:, i]
            mean = np.where(c > 0, sy[:, i] / c, np.nan)
            var = np.where(c > 1, syy[:, i] / c - mean * mean, np.nan)
            std = np.sqrt(np.maximum(var, 0.0))
            den = c * sxx[:, i] - sx[:, i] ** 2
            slope = np.where((c >= 3) & (den > 0), (c * sxy[:, i] - sx[:, i] * sy[:, i]) / den * 24.0, np.nan)
            out[h] = (mean, np.where(c > 1, std, np.nan), slope)
    return out


def _nanmean_axis1(y: np.ndarray) -> np.ndarray:
    w = np.isfinite(y)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w, y, 0.0).sum(axis=1) / np.where(n > 0, n, np.nan)


def feature_matrix(
    snapshots: Sequence[WindowSnapshot], normal_model: NormalModel | None = None
) -> np.ndarray:
    """Features of many windows at once, shape ``(len(snapshots), N_FEATURES)``.

    Vectorised over windows so a sweep of 10,000 turbines costs a handful of numpy calls. Columns
    are looked up by name, so the order can never drift from ``FEATURE_NAMES``; features that need
    the normal-behaviour model are NaN without one.
    """
    b = len(snapshots)
    if b == 0:
        return np.zeros((0, N_FEATURES))
    cols = feature_columns(snapshots, normal_model)
    nan = np.full(b, np.nan)
    return np.column_stack([cols.get(name, nan) for name in FEATURE_NAMES])


def feature_columns(
    snapshots: Sequence[WindowSnapshot], normal_model: NormalModel | None = None
) -> dict[str, np.ndarray]:
    """Named feature columns of a non-empty batch of windows (see :func:`feature_matrix`)."""
    sums = np.stack([s.sums for s in snapshots])
    cnts = np.stack([s.counts for s in snapshots]).astype(np.float64)
    maxs = np.stack([s.maxs for s in snapshots]).astype(np.float64)
    ctrs = np.stack([s.counters for s in snapshots]).astype(np.float64)
    frozen = np.stack([s.frozen_hours for s in snapshots])
    baselines = np.stack([s.baseline for s in snapshots])
    maxs[~np.isfinite(maxs)] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / np.where(cnts > 0, cnts, np.nan)  # (B, N, K) hourly means

    cols: dict[str, np.ndarray] = {}
    comp = [_IDX[s] for s in COMPONENT_SIGNALS]
    t_sums = _tail_sums(sums[:, :, comp])
    t_cnts = _tail_sums(cnts[:, :, comp])
    t_max = np.fmax.accumulate(maxs[:, ::-1, comp], axis=1)  # fmax ignores NaN (empty bins)
    hourly = _tail_stats(means[:, :, comp], HORIZONS_H)
    for h in HORIZONS_H:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_h = t_sums[:, h - 1] / np.where(t_cnts[:, h - 1] > 0, t_cnts[:, h - 1], np.nan)
        max_h = t_max[:, h - 1]
        _, spread_h, slope_h = hourly[h]
        for j, sig in enumerate(COMPONENT_SIGNALS):
            cols[f"{sig}__mean_{h}h"] = mean_h[:, j]
            cols[f"{sig}__max_{h}h"] = max_h[:, j]
            cols[f"{sig}__spread_{h}h"] = spread_h[:, j]
            cols[f"{sig}__slope_{h}h"] = slope_h[:, j]

    with np.errstate(invalid="ignore"):
        pom = _nanmean_axis1(maxs[:, -24:, comp] - means[:, -24:, comp])
    for j, sig in enumerate(COMPONENT_SIGNALS):
        cols[f"{sig}__peak_over_mean_24h"] = pom[:, j]

    ctx = [_IDX[s] for s in CONTEXT_SIGNALS]
    with np.errstate(invalid="ignore", divide="ignore"):
        c24 = cnts[:, -24:, ctx].sum(axis=1)
        ctx_mean = sums[:, -24:, ctx].sum(axis=1) / np.where(c24 > 0, c24, np.nan)
    for j, sig in enumerate(CONTEXT_SIGNALS):
        cols[f"{sig}__mean_24h"] = ctx_mean[:, j]

    if normal_model is not None:
        power = means[:, :, _P]
        prev = np.concatenate([power[:, :1], power[:, :-1]], axis=1)
        prev = np.where(np.isfinite(prev), prev, power)
        tgt = [_IDX[s] for s in NBM_TARGETS]
        expected = normal_model.expected(power, prev, means[:, :, _A], means[:, :, _R])  # (B, N, T)
        resid = means[:, :, tgt] - expected
        bl = baselines
        bl_expected = normal_model.expected(
            bl[:, _P], bl[:, _P], bl[:, _A], bl[:, _R], power_sq=bl[:, K], rpm_sq=bl[:, K + 1]
        )
        r_base = bl[:, tgt] - bl_expected  # (B, T): the turbine's own long-term residual
        r_stats = _tail_stats(resid, HORIZONS_H)
        r_mean = {h: r_stats[h][0] for h in HORIZONS_H}
        r_sl72, r_sl168 = r_stats[72][2], r_stats[168][2]
        for j, sig in enumerate(NBM_TARGETS):
            for h in HORIZONS_H:
                cols[f"{sig}__resid_{h}h"] = r_mean[h][:, j]
            cols[f"{sig}__resid_slope_72h"] = r_sl72[:, j]
            cols[f"{sig}__resid_slope_168h"] = r_sl168[:, j]
            cols[f"{sig}__resid_base_30d"] = r_base[:, j]
            for h in (6, 24, 72):
                cols[f"{sig}__resid_dev_{h}h"] = r_mean[h][:, j] - r_base[:, j]
        dev = resid - r_base[:, None, :]
        for h in LOAD_RESPONSE_HOURS:
            beta, icpt = _response(dev, power / 1000.0, h, 0.01)
            for j, sig in enumerate(NBM_TARGETS):
                cols[f"{sig}__resid_load_beta_{h}h"] = beta[:, j]
                cols[f"{sig}__resid_full_load_{h}h"] = icpt[:, j] + FULL_LOAD_MW * beta[:, j]
        beta, _ = _response(dev, means[:, :, _A], 168, 4.0)
        for j, sig in enumerate(NBM_TARGETS):
            cols[f"{sig}__resid_ambient_beta_168h"] = beta[:, j]
        pc = power - normal_model.expected_power(means[:, :, _IDX["wind_speed_ms"]])
        unusual = (ctrs[:, :, C_DOWN] + ctrs[:, :, C_CURTAILED]) > 0
        pc = np.where(unusual, np.nan, pc)
        cols["power_curve_resid_24h"] = _nanmean_axis1(pc[:, -24:])
        cols["power_curve_resid_168h"] = _nanmean_axis1(pc)
    pres = _IDX["pitch_hydraulic_pressure_bar"]
    for h in (6, 24):
        with np.errstate(invalid="ignore", divide="ignore"):
            c_h = cnts[:, -h:, pres].sum(axis=1)
            m_h = sums[:, -h:, pres].sum(axis=1) / np.where(c_h > 0, c_h, np.nan)
        cols[f"pitch_hydraulic_pressure_bar__dev_{h}h"] = m_h - baselines[:, pres]
    cols["baseline_hours"] = np.asarray([sn.baseline_hours for sn in snapshots])

    ev24 = ctrs[:, -24:, C_EVENTS].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["alarms_24h"] = ctrs[:, -24:, C_ALARMS].sum(axis=1)
        cols["alarms_168h"] = ctrs[:, :, C_ALARMS].sum(axis=1)
        cols["down_share_24h"] = ctrs[:, -24:, C_DOWN].sum(axis=1) / np.where(ev24 > 0, ev24, np.nan)
        cols["missing_share_24h"] = np.where(
            ev24 > 0, ctrs[:, -24:, C_MISSING].sum(axis=1) / (np.maximum(ev24, 1) * K), 1.0
        )
    cols["spikes_24h"] = ctrs[:, -24:, C_SPIKES].sum(axis=1)
    cols["coverage_hours_168h"] = (ctrs[:, :, C_EVENTS] > 0).sum(axis=1).astype(float)
    cols["n_frozen_key"] = (frozen[:, _KEY_IDX] > 0).sum(axis=1).astype(float)
    cols["frozen_max_hours"] = frozen.max(axis=1)
    return cols


def _response(dev: np.ndarray, x: np.ndarray, hours: int, min_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares ``dev ~ a + beta * x`` per window and target over the newest ``hours`` hours.

    Why: wear and cooling faults add heat (or vibration) that grows with load (and, for cooling, with
    ambient temperature), while the healthy residual does not depend on them (the normal model
    already explains that). ``beta`` is therefore a health estimate that calm, low-load days do not
    hide. NaN when ``x`` hardly varied (variance < ``min_var``) or fewer than 12 hours are available.
    Returns ``(beta, a)``, each ``(B, T)``.
    """
    d = dev[:, -hours:, :]
    xx = x[:, -hours:, None]
    w = np.isfinite(d) & np.isfinite(xx)
    dz = np.where(w, d, 0.0)
    xz = np.where(w, xx, 0.0)
    n = w.sum(axis=1).astype(np.float64)
    sx, sxx, sd, sxd = xz.sum(axis=1), (xz * xz).sum(axis=1), dz.sum(axis=1), (xz * dz).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = sxx / n - (sx / n) ** 2
        ok = (n >= 12) & (var > min_var)
        beta = np.where(ok, (n * sxd - sx * sd) / (n * sxx - sx * sx), np.nan)
        icpt = np.where(ok, (sd - beta * sx) / n, np.nan)
    return beta, icpt


# --------------------------------------------------------------------------------------------------
# Offline replay
# --------------------------------------------------------------------------------------------------


def _frame_rows(
    frame: pd.DataFrame,
) -> Iterator[tuple[str, float, list[Any], int, tuple[Any, Any, Any]]]:
    """(turbine_id, epoch seconds, tracked values with None for missing, status, auxiliary values:
    pitch, wind direction, nacelle direction) in time order."""
    # Microsecond integers / 1e6 round exactly like ``datetime.timestamp()`` of the online path.
    ts = pd.to_datetime(frame["event_time"], utc=True).dt.tz_localize(None)
    epoch = ts.to_numpy().astype("datetime64[us]").astype(np.int64) / 1e6
    cols = []
    for name in TRACKED_SIGNALS:
        if name in frame:
            arr = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
            obj = arr.astype(object)
            obj[~np.isfinite(arr)] = None
            cols.append(obj)
        else:
            cols.append(np.full(len(frame), None, dtype=object))
    vals = np.column_stack(cols).tolist() if cols else [[]] * len(frame)
    status = (
        frame["status_code"].fillna(0).astype(int).tolist() if "status_code" in frame else [0] * len(frame)
    )
    tids = frame["turbine_id"].astype(str).tolist()
    aux_cols = []
    for name in ("pitch_angle_deg", "wind_direction_deg", "nacelle_direction_deg"):
        if name in frame:
            arr = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
            obj = arr.astype(object)
            obj[~np.isfinite(arr)] = None
            aux_cols.append(obj.tolist())
        else:
            aux_cols.append([None] * len(frame))
    aux = list(zip(*aux_cols, strict=True))
    yield from zip(tids, epoch.tolist(), vals, status, aux, strict=True)


def replay(
    frame: pd.DataFrame,
    sample_times: Mapping[str, Iterable[float]] | None = None,
    every_hours: float = 1.0,
) -> Iterator[tuple[str, float, FeatureWindow]]:
    """Replay ``frame`` (any order; sorted here by time) through one window per turbine.

    Yields ``(turbine_id, sample_ts, window)`` after all events with ``event_time <= sample_ts``
    have been ingested. Sample times are either given per turbine (epoch seconds) or taken every
    ``every_hours`` on the hour grid between the turbine's first and last event.
    """
    frame = frame.sort_values(["turbine_id", "event_time"], kind="stable")
    for tid, group in frame.groupby("turbine_id", sort=True):
        rows = list(_frame_rows(group))
        if not rows:
            continue
        win = FeatureWindow(str(tid))
        if sample_times is not None:
            samples = sorted(sample_times.get(str(tid), []))
        else:
            step = every_hours * 3600.0
            start = math.ceil(rows[0][1] / step) * step
            samples = list(np.arange(start, rows[-1][1] + 1e-9, step))
        i = 0
        n = len(rows)
        for t in samples:
            while i < n and rows[i][1] <= t:
                _, ts, vals, st, aux = rows[i]
                win._ingest(ts, vals, st, aux)
                i += 1
            yield str(tid), float(t), win


def compute_features(
    frame: pd.DataFrame,
    normal_model: NormalModel | None = None,
    *,
    every_hours: float = 1.0,
    sample_times: Mapping[str, Iterable[float]] | None = None,
    chunk: int = 512,
) -> pd.DataFrame:
    """Offline features: replay history through ``FeatureWindow`` and sample it periodically.

    Returns one row per (turbine, sample time) with ``turbine_id``, ``time`` (UTC), the
    ``FEATURE_NAMES`` columns and the data-quality columns used by training.
    """
    tids: list[str] = []
    times: list[float] = []
    blocks: list[np.ndarray] = []
    pending: list[WindowSnapshot] = []
    for tid, t, win in replay(frame, sample_times, every_hours):
        if win.last_event_ts is None:
            continue
        tids.append(tid)
        times.append(t)
        pending.append(win.snapshot())
        if len(pending) >= chunk:
            blocks.append(feature_matrix(pending, normal_model))
            pending = []
    if pending:
        blocks.append(feature_matrix(pending, normal_model))
    x = np.vstack(blocks) if blocks else np.zeros((0, N_FEATURES))
    out = pd.DataFrame(x, columns=list(FEATURE_NAMES))
    out.insert(0, "time", pd.to_datetime(np.asarray(times, dtype=float), unit="s", utc=True))
    out.insert(0, "turbine_id", tids)
    return out


def hourly_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per turbine-hour means of the tracked signals (same hour grid as the bins) + status shares.

    Used to fit the normal-behaviour model; ``power_prev_kw`` is the previous hour's mean power.
    """
    df = pd.DataFrame({"turbine_id": frame["turbine_id"].astype(str)})
    df["hour"] = pd.to_datetime(frame["event_time"], utc=True).dt.floor("h")
    for s in TRACKED_SIGNALS:
        df[s] = pd.to_numeric(frame[s], errors="coerce") if s in frame else np.nan
    st = (
        frame["status_code"].fillna(0).astype(int) if "status_code" in frame else pd.Series(0, index=df.index)
    )
    df["unusual"] = st.isin([STATUS_FAULT, STATUS_MAINTENANCE, STATUS_CURTAILED]).astype(float)
    g = df.groupby(["turbine_id", "hour"], sort=True).mean().reset_index()
    prev_hour = g.groupby("turbine_id")["hour"].shift(1)
    prev_power = g.groupby("turbine_id")["power_kw"].shift(1)
    contiguous = (g["hour"] - prev_hour) == pd.Timedelta(hours=1)
    g["power_prev_kw"] = prev_power.where(contiguous)
    return g
