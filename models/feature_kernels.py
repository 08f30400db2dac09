"""Vectorised features and data quality over the gathered bins of many windows (pure numpy).

Input: :class:`BinArrays`, the hourly bins of B windows in time order (oldest hour first, newest
last, shape ``(B, N_BINS, ...)``) as gathered by :meth:`models.window_store.WindowStore.gather` in
one fancy-index per array. One code path for the scorer (live rows of the worker's store), the sweep
and the offline replay (:func:`models.features.compute_features`), so training and serving agree.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.normal_model import NormalModel
from models.signals import (
    A_IDX,
    AUX_SIGNALS,
    COMPONENT_SIGNALS,
    CONTEXT_SIGNALS,
    FEATURE_NAMES,
    FULL_LOAD_MW,
    HORIZONS_H,
    IDX,
    KC,
    KEY_IDX,
    KEY_SIGNALS,
    LOAD_RESPONSE_HOURS,
    N_BINS,
    N_FEATURES,
    NBM_TARGETS,
    P_IDX,
    R_IDX,
    TRACKED_SIGNALS,
    K,
)

#: Stored per-bin counters (the missing-value counter is derived: events x K - readings).
CTR_EVENTS, CTR_SPIKES, CTR_ALARMS, CTR_DOWN, CTR_CURTAILED = range(5)
N_CTR = 5
#: Stored auxiliary sums (float) and counts per bin.
ASUM_PITCH, ASUM_SIN, ASUM_COS = range(3)
ACNT_PITCH, ACNT_WDIR, ACNT_NDIR, ACNT_YAW = range(4)
N_ASUM, N_ACNT = 3, 4

_COMP = np.arange(KC)
_CTX = np.array([IDX[s] for s in CONTEXT_SIGNALS])
_TGT = np.array([IDX[s] for s in NBM_TARGETS])
_PRES = IDX["pitch_hydraulic_pressure_bar"]
_WIND = IDX["wind_speed_ms"]


@dataclass
class BinArrays:
    """Hourly bins of B windows in time order (oldest first) plus the per-window scalars features need."""

    sums: np.ndarray  # (B, N_BINS, K) float32 hourly sums of the tracked signals
    counts: np.ndarray  # (B, N_BINS, K) unsigned: readings per hour
    maxs: np.ndarray  # (B, N_BINS, KC) float16 hourly maxima of COMPONENT_SIGNALS (-inf: none)
    counters: np.ndarray  # (B, N_BINS, N_CTR) unsigned: events, spikes, alarms, down, curtailed
    frozen_hours: np.ndarray  # (B, K) float64: hours the current identical run lasts (0: not frozen)
    baseline: np.ndarray  # (B, N_BASE) float64 30-day means (NaN until ~1 h of history)
    baseline_hours: np.ndarray  # (B,) effective hours in the baseline
    last_ts: np.ndarray  # (B,) newest event time, epoch seconds (NaN: no event)
    first_ts: np.ndarray  # (B,) oldest event kept (NaN: none)
    late: np.ndarray  # (B,) events dropped as older than the window
    aux_sums: np.ndarray | None = None  # (B, N_BINS, N_ASUM) float32: pitch, yaw sin, yaw cos
    aux_counts: np.ndarray | None = None  # (B, N_BINS, N_ACNT): pitch, wind dir, nacelle dir, yaw

    def __len__(self) -> int:
        return int(self.sums.shape[0])

    def missing(self) -> np.ndarray:
        """(B, N_BINS) missing values per hour: one reading or one missing value per event and signal."""
        ev = self.counters[:, :, CTR_EVENTS].astype(np.int64) * K
        return ev - self.counts.sum(axis=2, dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------


def nested_sums(a: np.ndarray, horizons: Sequence[int]) -> dict[int, np.ndarray]:
    """``{h: sum of the newest h hours}`` (time is the LAST axis, newest last) for increasing ``horizons``.

    Why nested slices: 6 h is inside 24 h inside 72 h inside 168 h, so each hour is added once and the
    result has one value per window and signal instead of a cumulative sum over all 168 hours. Time
    last: the reductions run along contiguous memory. A window's result does not depend on the other
    windows computed with it (no BLAS, fixed order), so online and offline agree exactly.
    """
    n = a.shape[-1]
    hs = list(horizons)
    cuts = [n - h for h in reversed(hs)]  # segment starts, oldest first: e.g. 0, 96, 144, 162
    out: dict[int, np.ndarray] = {}
    with np.errstate(invalid="ignore", over="ignore"):  # inf readings give inf / NaN, no warning
        seg = np.add.reduceat(a[..., cuts[0] :], [c - cuts[0] for c in cuts], axis=-1)
        acc: np.ndarray | None = None
        for i, h in enumerate(hs):
            part = seg[..., len(hs) - 1 - i]
            acc = part if acc is None else acc + part
            out[h] = acc
    return out


def tail_stats(
    y: np.ndarray, horizons: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Mean, spread (std) and least-squares slope per day of hourly values over the newest ``h`` hours.

    ``y`` is ``(..., N)`` with time last, NaN = no data. Returns ``{h: (mean, std, slope)}``, each
    ``y.shape[:-1]``.
    """
    n = y.shape[-1]
    w = np.isfinite(y)
    yz = np.where(w, y, 0.0)
    wf = w.astype(np.float64)
    x = np.arange(n, dtype=np.float64)
    wx = wf * x
    yx = yz * x
    sw, sx, sxx = nested_sums(wf, horizons), nested_sums(wx, horizons), nested_sums(wx * x, horizons)
    sy, sxy, syy = nested_sums(yz, horizons), nested_sums(yx, horizons), nested_sums(yz * yz, horizons)
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for h in horizons:
            c = sw[h]
            mean = np.where(c > 0, sy[h] / c, np.nan)
            var = np.where(c > 1, syy[h] / c - mean * mean, np.nan)
            std = np.sqrt(np.maximum(var, 0.0))
            den = c * sxx[h] - sx[h] ** 2
            slope = np.where((c >= 3) & (den > 0), (c * sxy[h] - sx[h] * sy[h]) / den * 24.0, np.nan)
            out[h] = (mean, np.where(c > 1, std, np.nan), slope)
    return out


def nanmean_last(y: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN (NaN when nothing is finite)."""
    w = np.isfinite(y)
    n = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w, y, 0.0).sum(axis=-1) / np.where(n > 0, n, np.nan)


def nanmean_axis1(y: np.ndarray) -> np.ndarray:
    w = np.isfinite(y)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w, y, 0.0).sum(axis=1) / np.where(n > 0, n, np.nan)


def _beta(
    n: np.ndarray, sx: np.ndarray, sxx: np.ndarray, sd: np.ndarray, sxd: np.ndarray, min_var: float
) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        var = sxx / n - (sx / n) ** 2
        ok = (n >= 12) & (var > min_var)
        beta = np.where(ok, (n * sxd - sx * sd) / (n * sxx - sx * sx), np.nan)
        icpt = np.where(ok, (sd - beta * sx) / n, np.nan)
    return beta, icpt


def response(dev: np.ndarray, x: np.ndarray, hours: int, min_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares ``dev ~ a + beta * x`` per window and target over the newest ``hours`` hours.

    ``dev`` is ``(B, N, T)``, ``x`` ``(B, N)`` (time on axis 1, newest last).
    Why: wear and cooling faults add heat (or vibration) that grows with load (and, for cooling, with
    ambient temperature), while the healthy residual does not depend on them (the normal model
    already explains that). ``beta`` is therefore a health estimate that calm, low-load days do not
    hide. NaN when ``x`` hardly varied (variance < ``min_var``) or fewer than 12 hours are available.
    Returns ``(beta, a)``, each ``(B, T)``.
    """
    dev_t = np.ascontiguousarray(np.moveaxis(dev, 1, -1))
    return response_nested(dev_t, x, (hours,), min_var)[hours]


def response_nested(
    dev: np.ndarray, x: np.ndarray, hours: Sequence[int], min_var: float
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`response` for several increasing horizons in one pass; ``dev`` ``(B, T, N)`` time last."""
    top = max(hours)
    d = dev[..., -top:]
    xx = x[:, None, -top:]
    w = np.isfinite(d) & np.isfinite(xx)
    dz = np.where(w, d, 0.0)
    xz = np.where(w, xx, 0.0)
    n = nested_sums(w.astype(np.float64), hours)
    sx, sxx = nested_sums(xz, hours), nested_sums(xz * xz, hours)
    sd, sxd = nested_sums(dz, hours), nested_sums(xz * dz, hours)
    return {h: _beta(n[h], sx[h], sxx[h], sd[h], sxd[h], min_var) for h in hours}


def _time_last(a: np.ndarray, dtype: Any) -> np.ndarray:
    """(B, N, J) -> contiguous (B, J, N) of ``dtype`` in one pass."""
    return np.ascontiguousarray(a.transpose(0, 2, 1), dtype=dtype)


def feature_columns(b: BinArrays, normal_model: NormalModel | None = None) -> dict[str, np.ndarray]:
    """Named feature columns of a non-empty batch of windows (see :func:`feature_matrix`)."""
    sums = _time_last(b.sums, np.float64)  # (B, K, N)
    cnts = _time_last(b.counts, np.float64)
    ctr = _time_last(b.counters, np.int64)  # (B, N_CTR, N)
    frozen = b.frozen_hours
    baselines = b.baseline
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / np.where(cnts > 0, cnts, np.nan)  # (B, K, N) hourly means

    cols: dict[str, np.ndarray] = {}
    t_sums = nested_sums(sums[:, :KC], HORIZONS_H)
    t_cnts = nested_sums(cnts[:, :KC], HORIZONS_H)
    # maxima: float16 values are exact in float32; -inf marks an empty hour
    maxs = _time_last(b.maxs, np.float32)  # (B, KC, N)
    t_max: dict[int, np.ndarray] = {}
    prev, acc = 0, None
    for h in HORIZONS_H:
        part = maxs[..., N_BINS - h : N_BINS - prev].max(axis=-1)
        acc = part if acc is None else np.maximum(acc, part)
        t_max[h] = acc
        prev = h
    hourly = tail_stats(means[:, :KC], HORIZONS_H)
    for h in HORIZONS_H:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_h = t_sums[h] / np.where(t_cnts[h] > 0, t_cnts[h], np.nan)
        max_h = np.where(t_max[h] == -np.inf, np.nan, t_max[h]).astype(np.float64)
        _, spread_h, slope_h = hourly[h]
        for j, sig in enumerate(COMPONENT_SIGNALS):
            cols[f"{sig}__mean_{h}h"] = mean_h[:, j]
            cols[f"{sig}__max_{h}h"] = max_h[:, j]
            cols[f"{sig}__spread_{h}h"] = spread_h[:, j]
            cols[f"{sig}__slope_{h}h"] = slope_h[:, j]

    m24 = maxs[..., -24:].astype(np.float64)
    m24[m24 == -np.inf] = np.nan
    with np.errstate(invalid="ignore"):
        pom = nanmean_last(m24 - means[:, :KC, -24:])
    for j, sig in enumerate(COMPONENT_SIGNALS):
        cols[f"{sig}__peak_over_mean_24h"] = pom[:, j]

    with np.errstate(invalid="ignore", divide="ignore"):
        c24 = cnts[:, _CTX, -24:].sum(axis=-1)
        ctx_mean = sums[:, _CTX, -24:].sum(axis=-1) / np.where(c24 > 0, c24, np.nan)
    for j, sig in enumerate(CONTEXT_SIGNALS):
        cols[f"{sig}__mean_24h"] = ctx_mean[:, j]

    if normal_model is not None:
        _model_columns(cols, means, ctr, baselines, normal_model)
    p_sums = nested_sums(sums[:, _PRES], (6, 24))
    p_cnts = nested_sums(cnts[:, _PRES], (6, 24))
    for h in (6, 24):
        with np.errstate(invalid="ignore", divide="ignore"):
            m_h = p_sums[h] / np.where(p_cnts[h] > 0, p_cnts[h], np.nan)
        cols[f"pitch_hydraulic_pressure_bar__dev_{h}h"] = m_h - baselines[:, _PRES]
    cols["baseline_hours"] = np.asarray(b.baseline_hours, dtype=np.float64)

    c24n = ctr[..., -24:].sum(axis=-1).astype(np.float64)  # (B, N_CTR)
    ev24 = c24n[:, CTR_EVENTS]
    miss24 = ev24 * K - cnts[..., -24:].sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["alarms_24h"] = c24n[:, CTR_ALARMS]
        cols["alarms_168h"] = ctr[:, CTR_ALARMS].sum(axis=-1).astype(np.float64)
        cols["down_share_24h"] = c24n[:, CTR_DOWN] / np.where(ev24 > 0, ev24, np.nan)
        cols["missing_share_24h"] = np.where(ev24 > 0, miss24 / (np.maximum(ev24, 1) * K), 1.0)
    cols["spikes_24h"] = c24n[:, CTR_SPIKES]
    cols["coverage_hours_168h"] = (ctr[:, CTR_EVENTS] > 0).sum(axis=-1).astype(float)
    cols["n_frozen_key"] = (frozen[:, KEY_IDX] > 0).sum(axis=1).astype(float)
    cols["frozen_max_hours"] = frozen.max(axis=1)
    return cols


def _expected_tn(
    model: NormalModel, p: np.ndarray, prev: np.ndarray, amb: np.ndarray, rpm: np.ndarray
) -> np.ndarray:
    """``model.expected`` of hourly inputs ``(B, N)`` as ``(B, T, N)`` (time last), term by term."""
    pk = p / 1000.0
    r = rpm / 10.0
    terms = (pk, pk * pk, prev / 1000.0, amb, r, r * r)
    c = model.coef
    out = np.broadcast_to(c[None, :, 0, None], (p.shape[0], c.shape[0], p.shape[1])).copy()
    for i, term in enumerate(terms, start=1):
        out += term[:, None, :] * c[None, :, i, None]
    return out


def _model_columns(
    cols: dict[str, np.ndarray],
    means: np.ndarray,
    ctr: np.ndarray,
    baselines: np.ndarray,
    normal_model: NormalModel,
) -> None:
    """Residual features against the normal-behaviour model (and the power-curve residual).

    ``means`` ``(B, K, N)`` and ``ctr`` ``(B, N_CTR, N)`` have time last.
    """
    power = means[:, P_IDX]
    prev = np.concatenate([power[:, :1], power[:, :-1]], axis=1)
    prev = np.where(np.isfinite(prev), prev, power)
    resid = means[:, _TGT] - _expected_tn(normal_model, power, prev, means[:, A_IDX], means[:, R_IDX])
    bl = baselines
    bl_expected = normal_model.expected(
        bl[:, P_IDX], bl[:, P_IDX], bl[:, A_IDX], bl[:, R_IDX], power_sq=bl[:, K], rpm_sq=bl[:, K + 1]
    )
    r_base = bl[:, _TGT] - bl_expected  # (B, T): the turbine's own long-term residual
    r_stats = tail_stats(resid, HORIZONS_H)
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
    dev = resid - r_base[:, :, None]
    load = response_nested(dev, power / 1000.0, LOAD_RESPONSE_HOURS, 0.01)
    for h in LOAD_RESPONSE_HOURS:
        beta, icpt = load[h]
        for j, sig in enumerate(NBM_TARGETS):
            cols[f"{sig}__resid_load_beta_{h}h"] = beta[:, j]
            cols[f"{sig}__resid_full_load_{h}h"] = icpt[:, j] + FULL_LOAD_MW * beta[:, j]
    beta, _ = response_nested(dev, means[:, A_IDX], (168,), 4.0)[168]
    for j, sig in enumerate(NBM_TARGETS):
        cols[f"{sig}__resid_ambient_beta_168h"] = beta[:, j]
    pc = power - normal_model.expected_power(means[:, _WIND])
    unusual = (ctr[:, CTR_DOWN] > 0) | (ctr[:, CTR_CURTAILED] > 0)
    pc = np.where(unusual, np.nan, pc)
    cols["power_curve_resid_24h"] = nanmean_last(pc[:, -24:])
    cols["power_curve_resid_168h"] = nanmean_last(pc)


def feature_matrix(b: BinArrays, normal_model: NormalModel | None = None) -> np.ndarray:
    """Features of the B windows, shape ``(B, N_FEATURES)`` in ``FEATURE_NAMES`` order.

    Columns are looked up by name, so the order can never drift from ``FEATURE_NAMES``; features that
    need the normal-behaviour model are NaN without one.
    """
    n = len(b)
    if n == 0:
        return np.zeros((0, N_FEATURES))
    cols = feature_columns(b, normal_model)
    nan = np.full(n, np.nan)
    return np.column_stack([cols.get(name, nan) for name in FEATURE_NAMES])


# --------------------------------------------------------------------------------------------------
# Data quality
# --------------------------------------------------------------------------------------------------


def data_quality(
    b: BinArrays,
    now: Sequence[float | None] | None = None,
    fitted: Sequence[Collection[str] | None] | None = None,
) -> list[dict[str, Any]]:
    """Data-quality indicators of the B windows (JSON-serialisable dicts; see FeatureWindow.data_quality).

    ``now`` (epoch seconds per window, None = unknown) enables ``seconds_since_last_event``; ``fitted``
    (per window: the turbine's fitted sensors, None = all) limits the missing share, silent and frozen
    sensors to signals the turbine has.
    """
    n = len(b)
    if n == 0:
        return []
    ctr24 = b.counters[:, -24:].sum(axis=1, dtype=np.int64)  # (B, N_CTR)
    cnt24 = b.counts[:, -24:].sum(axis=1, dtype=np.int64)  # (B, K)
    events_all = b.counters[:, :, CTR_EVENTS].sum(axis=1, dtype=np.int64)
    coverage = (b.counters[:, -24:, CTR_EVENTS] > 0).sum(axis=1)
    acnt24 = b.aux_counts[:, -24:].sum(axis=1, dtype=np.int64) if b.aux_counts is not None else None
    out: list[dict[str, Any]] = []
    for i in range(n):
        events24 = int(ctr24[i, CTR_EVENTS])
        fh = b.frozen_hours[i]
        frozen = {TRACKED_SIGNALS[k]: round(float(fh[k]), 2) for k in np.flatnonzero(fh > 0)}
        key_counts = cnt24[i, KEY_IDX]
        silent = [KEY_SIGNALS[j] for j in range(len(KEY_SIGNALS)) if key_counts[j] == 0 and events24 > 0]
        fit = None if fitted is None else fitted[i]
        if fit is None:
            expected_values = events24 * K
            missing24 = expected_values - int(cnt24[i].sum())
        else:
            have = frozenset(fit)
            present = [int(cnt24[i, k]) for k, sig in enumerate(TRACKED_SIGNALS) if sig in have]
            if acnt24 is not None:
                for name, j in (
                    (AUX_SIGNALS[0], ACNT_PITCH),
                    (AUX_SIGNALS[1], ACNT_WDIR),
                    (AUX_SIGNALS[2], ACNT_NDIR),
                ):
                    if name in have:
                        present.append(int(acnt24[i, j]))
            expected_values = events24 * len(present)
            missing24 = expected_values - sum(present)
            frozen = {sig: h for sig, h in frozen.items() if sig in have}
            silent = [sig for sig in silent if sig in have]
        last = float(b.last_ts[i])
        last_ts = None if math.isnan(last) else last
        t_now = None if now is None else now[i]
        since = None if t_now is None or last_ts is None else max(0.0, t_now - last_ts)
        first = float(b.first_ts[i])
        out.append(
            {
                "events_in_window": int(events_all[i]),
                "events_24h": events24,
                "last_event_time": None
                if last_ts is None
                else datetime.fromtimestamp(last_ts, UTC).isoformat(),
                "seconds_since_last_event": since,
                "history_hours": 0.0
                if math.isnan(first) or last_ts is None
                else round((last_ts - first) / 3600, 2),
                "coverage_hours_24h": int(coverage[i]),
                "missing_share_24h": round(missing24 / expected_values, 4) if expected_values else 1.0,
                "spikes_24h": int(ctr24[i, CTR_SPIKES]),
                "frozen_signals": frozen,
                "silent_key_signals_24h": silent,
                "late_events_dropped": int(b.late[i]),
            }
        )
    return out


__all__ = [
    "N_BINS",
    "BinArrays",
    "data_quality",
    "feature_columns",
    "feature_matrix",
    "response",
    "tail_stats",
]
