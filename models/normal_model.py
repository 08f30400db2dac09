"""Normal-behaviour model: expected component temperatures / vibration from load and ambient, power curve.

Fitted on healthy hourly means (:func:`hourly_means`, the same hour grid as the window's bins) and
evaluated vectorised over the bins of many windows by :mod:`models.feature_kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from common.contracts import STATUS_CURTAILED, STATUS_FAULT, STATUS_MAINTENANCE
from models.signals import NBM_TARGETS, TRACKED_SIGNALS


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
        averaged squares instead (mean of squares != square of mean). Evaluated term by term in a
        fixed order (no BLAS call): a window's result does not depend on how many windows are computed
        with it, so online (a few rows) and offline (chunks) agree exactly.
        """
        p = np.asarray(power_kw, dtype=np.float64) / 1000.0
        psq = p * p if power_sq is None else np.asarray(power_sq, dtype=np.float64) / 1e6
        r = np.asarray(rpm, dtype=np.float64) / 10.0
        rsq = r * r if rpm_sq is None else np.asarray(rpm_sq, dtype=np.float64) / 100.0
        terms = (p, psq, np.asarray(power_prev_kw, dtype=np.float64) / 1000.0, np.asarray(ambient_c), r, rsq)
        c = self.coef
        out = np.broadcast_to(c[:, 0], (*p.shape, c.shape[0])).copy()
        for i, term in enumerate(terms, start=1):
            out += term[..., None] * c[:, i]
        return out

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
