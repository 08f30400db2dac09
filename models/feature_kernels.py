"""Features and data quality of many windows: one fused numba kernel over their hourly bins.

Input: ring arrays ``(R, N_BINS, ...)`` of a :class:`models.window_store.WindowStore` read in place
(row ``rows[i]``, oldest hour at slot ``start[i]``), or :class:`BinArrays` already in time order
(snapshots: ``start = 0``). One code path for the scorer (live rows of the worker's store), the
sweep and the offline replay (:func:`models.features.compute_features`), so training and serving agree.

Compilation: lazy, on the first call (``cache=True``: the machine code is cached on disk under
``__pycache__`` next to this file, or under ``NUMBA_CACHE_DIR`` / the user's cache directory when
that is not writable); :func:`warm_up` compiles (or loads) every variant a worker uses, at start.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numba import njit

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


def _jit(fn: Any) -> Any:
    """``numba.njit(cache=True)``: compiled on first call, machine code cached on disk (fastmath off).

    numba refuses ``cache=True`` when it finds no writable cache directory (``__pycache__`` beside this
    file, ``NUMBA_CACHE_DIR``, the user's cache directory): e.g. a read-only image without
    ``NUMBA_CACHE_DIR``. Then each process compiles once instead of failing at import.
    """
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


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
# Features: one fused numba kernel
# --------------------------------------------------------------------------------------------------
#
# Why one fused loop: the numpy version made ~40 full passes and temporaries over (B, 168, K) arrays
# (gather copies, hourly means, nested sums, residuals, response sums, data quality). Here each row's
# ring is read ONCE in time order (by offset, no gathered copy) and every sum the features need is
# accumulated on the way, per nested segment of the horizons (oldest first: hours 0-96, 96-144,
# 144-162, 162-168); the horizons are the segment sums added newest first (6 h, then 24, 72, 168).
# float64 throughout, fastmath OFF (IEEE results, no reassociation, no fused multiply-add), one row at
# a time in a fixed order: a row's features do not depend on the rows computed with it, so online
# (a few rows) and offline (chunks) agree exactly. Sums are sequential where numpy summed pairwise:
# results agree with the former numpy kernel to ~1e-12 relative (see tests/unit/models/
# test_feature_kernel.py), exactly where the sums are exact (counts, counters, float32 sums).

_SEG_START = (0, N_BINS - 72, N_BINS - 24, N_BINS - 6)  # 0, 96, 144, 162: segments oldest first
#: Quantities of the component signals' per-segment sums (the kernel's ``acc``): sum, readings, max,
#: the hourly means' least-squares sums (n, sx, sxx, sy, sxy, syy), peak over mean (segment 0 only).
_A_SUM, _A_CNT, _A_MAX, _A_HS, _A_POM_S, _A_POM_N, _A_N = 0, 1, 2, 3, 9, 10, 11
_N_SEG = 4
_T = len(NBM_TARGETS)
_N_LOAD = len(LOAD_RESPONSE_HOURS)
#: Misc columns written by the kernel, in this order (indices into ``_Layout.misc``).
_MISC = (
    "baseline_hours",
    "power_curve_resid_24h",
    "power_curve_resid_168h",
    "alarms_24h",
    "alarms_168h",
    "down_share_24h",
    "missing_share_24h",
    "spikes_24h",
    "coverage_hours_168h",
    "n_frozen_key",
    "frozen_max_hours",
)
assert tuple(HORIZONS_H) == (6, 24, 72, 168) and tuple(LOAD_RESPONSE_HOURS) == (24, 72, 168)
assert _SEG_START[2] == N_BINS - 24  # the newest 24 hours are segments 2 and 3
assert list(_TGT) == list(range(_T)) and list(KEY_IDX) == list(range(_T)) and _PRES == KC - 1


@dataclass(frozen=True)
class _Layout:
    """Column of each computed feature in ``FEATURE_NAMES`` (so the order can never drift)."""

    comp: np.ndarray  # (KC, 4 horizons, 4): mean, max, spread, slope
    ctx: np.ndarray  # (4,) context means 24 h
    pom: np.ndarray  # (KC,) peak over mean 24 h
    resid: np.ndarray  # (T, 4 horizons)
    rslope: np.ndarray  # (T, 2): 72 h, 168 h
    rbase: np.ndarray  # (T,)
    rdev: np.ndarray  # (T, 3): 6, 24, 72 h
    pdev: np.ndarray  # (2,): 6, 24 h
    misc: np.ndarray  # (len(_MISC),)
    load: np.ndarray  # (T, 3 horizons, 2): beta, full load
    amb: np.ndarray  # (T,)


@functools.cache
def _layout() -> _Layout:
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}

    def ix(names: Any) -> np.ndarray:
        return np.asarray([[col[n] for n in row] if isinstance(row, list) else col[row] for row in names])

    stats = ("mean", "max", "spread", "slope")
    lay = _Layout(
        comp=np.asarray(
            [[[col[f"{s}__{st}_{h}h"] for st in stats] for h in HORIZONS_H] for s in COMPONENT_SIGNALS]
        ),
        ctx=ix([f"{s}__mean_24h" for s in CONTEXT_SIGNALS]),
        pom=ix([f"{s}__peak_over_mean_24h" for s in COMPONENT_SIGNALS]),
        resid=ix([[f"{s}__resid_{h}h" for h in HORIZONS_H] for s in NBM_TARGETS]),
        rslope=ix([[f"{s}__resid_slope_72h", f"{s}__resid_slope_168h"] for s in NBM_TARGETS]),
        rbase=ix([f"{s}__resid_base_30d" for s in NBM_TARGETS]),
        rdev=ix([[f"{s}__resid_dev_{h}h" for h in (6, 24, 72)] for s in NBM_TARGETS]),
        pdev=ix([f"pitch_hydraulic_pressure_bar__dev_{h}h" for h in (6, 24)]),
        misc=ix(list(_MISC)),
        load=np.asarray(
            [
                [
                    [col[f"{s}__resid_load_beta_{h}h"], col[f"{s}__resid_full_load_{h}h"]]
                    for h in LOAD_RESPONSE_HOURS
                ]
                for s in NBM_TARGETS
            ]
        ),
        amb=ix([f"{s}__resid_ambient_beta_168h" for s in NBM_TARGETS]),
    )
    covered = np.concatenate([np.ravel(getattr(lay, f)) for f in lay.__dataclass_fields__])
    assert sorted(covered.tolist()) == list(range(N_FEATURES)), "every feature has one kernel column"
    return lay


@functools.cache
def _half_to_f64() -> np.ndarray:
    """float64 value of every float16 bit pattern (numba has no float16: maxima are read as uint16)."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)


@_jit
def _beta(n: float, sx: float, sxx: float, sd: float, sxd: float, min_var: float) -> tuple[float, float]:
    """Least-squares slope and intercept of ``d ~ a + beta * x`` from sums; NaN when not estimable.

    Why: wear and cooling faults add heat (or vibration) that grows with load (and, for cooling, with
    ambient temperature), while the healthy residual does not depend on them (the normal model
    already explains that). ``beta`` is therefore a health estimate that calm, low-load days do not
    hide. NaN when ``x`` hardly varied (variance <= ``min_var``) or fewer than 12 hours are available.
    """
    var = sxx / n - (sx / n) * (sx / n) if n > 0 else np.nan
    if n >= 12 and var > min_var:
        beta = (n * sxd - sx * sd) / (n * sxx - sx * sx)
        return beta, (sd - beta * sx) / n
    return np.nan, np.nan


@_jit
def _interp(x: float, xp: np.ndarray, fp: np.ndarray, inv_step: float) -> float:
    """``np.interp`` of one value (same rules as numpy's C loop: ends clamp, NaN stays NaN).

    ``inv_step`` (:func:`_interp_inv_step`): for a non-decreasing ``xp``, ``(n - 1) / (xp[-1] - xp[0])``,
    the first guess of the interval (a regular grid such as the power curve's: found at once), moved
    to the LAST ``j`` with ``xp[j] <= x``, the interval the bisection finds; ``-1`` bisects.
    """
    if np.isnan(x):
        return x
    n = xp.shape[0]
    if x < xp[0]:
        return fp[0]
    if x > xp[n - 1]:
        return fp[n - 1]
    if inv_step >= 0.0:
        g = (x - xp[0]) * inv_step
        j = int(g) if g < n - 1 else n - 1
        while j > 0 and xp[j] > x:
            j -= 1
        while j < n - 1 and xp[j + 1] <= x:
            j += 1
    else:
        lo, hi = 0, n - 1  # find j with xp[j] <= x < xp[j + 1] (or j = n - 1 when x == xp[-1])
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if xp[mid] <= x:
                lo = mid
            else:
                hi = mid
        j = hi if xp[hi] <= x else lo
    if j == n - 1 or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    res = slope * (x - xp[j]) + fp[j]
    if np.isnan(res):
        res = slope * (x - xp[j + 1]) + fp[j + 1]
        if np.isnan(res) and fp[j] == fp[j + 1]:
            res = fp[j]
    return res


def _interp_inv_step(xp: np.ndarray) -> float:
    """:func:`_interp`'s ``inv_step`` for the grid ``xp``: -1 (bisect) unless it is finite and
    non-decreasing with distinct ends."""
    n = len(xp)
    if n < 2 or not np.all(np.isfinite(xp)) or np.any(xp[1:] < xp[:-1]):
        return -1.0
    span = float(xp[-1]) - float(xp[0])  # inf when it overflows
    inv = (n - 1) / span if span > 0 else 0.0
    return inv if 0.0 < inv < math.inf else -1.0


@_jit
def _seg_of(t: int) -> int:
    if t >= _SEG_START[3]:
        return 3
    if t >= _SEG_START[2]:
        return 2
    if t >= _SEG_START[1]:
        return 1
    return 0


@_jit
def _nest(seg: np.ndarray, hi: int) -> float:
    """Sum over the newest horizon ``hi`` (0: 6 h .. 3: 168 h) of per-segment sums, newest first."""
    acc = seg[3]
    for s in range(2, 2 - hi, -1):
        acc = acc + seg[s]
    return acc


@_jit
def _tail(c: float, sx: float, sxx: float, sy: float, sxy: float, syy: float) -> tuple[float, float, float]:
    """Mean, spread (std) and least-squares slope per day of hourly values from their sums."""
    mean = sy / c if c > 0 else np.nan
    std = np.nan
    if c > 1:
        var = syy / c - mean * mean
        if var < 0.0:
            var = 0.0
        std = np.sqrt(var)
    den = c * sxx - sx * sx
    slope = (c * sxy - sx * sy) / den * 24.0 if (c >= 3 and den > 0) else np.nan
    return mean, std, slope


@_jit
def _add_point(acc: np.ndarray, i: int, g: int, t: float, y: float) -> None:
    """Add (t, y) to the least-squares sums ``acc[i, :, g]``: n, sum t, t^2, y, ty, y^2."""
    acc[i, 0, g] += 1.0
    acc[i, 1, g] += t
    acc[i, 2, g] += t * t
    acc[i, 3, g] += y
    acc[i, 4, g] += y * t
    acc[i, 5, g] += y * y


@_jit
def _features_kernel(
    sums: np.ndarray,  # (R, N_BINS, K) any float: hourly sums
    cnts: np.ndarray,  # (R, N_BINS, K) any int: readings per hour
    max_bits: np.ndarray,  # (R, N_BINS, KC) uint16: float16 maxima as bits (when use_bits)
    max_f: np.ndarray,  # (R, N_BINS, KC) float32 maxima (when not use_bits)
    use_bits: bool,
    half: np.ndarray,  # (65536,) float64 value of each float16 bit pattern
    ctr: np.ndarray,  # (R, N_BINS, N_CTR) any int
    rows: np.ndarray,  # (B,) row of each output row
    start: np.ndarray,  # (B,) ring slot of the oldest hour
    frozen: np.ndarray,  # (B, K) frozen hours
    baseline: np.ndarray,  # (B, N_BASE) 30-day means (NaN: none)
    bhours: np.ndarray,  # (B,)
    has_model: bool,
    coef: np.ndarray,  # (T, 7)
    pc_wind: np.ndarray,
    pc_power: np.ndarray,
    pc_inv: float,  # _interp_inv_step(pc_wind)
    l_comp: np.ndarray,
    l_ctx: np.ndarray,
    l_pom: np.ndarray,
    l_resid: np.ndarray,
    l_rslope: np.ndarray,
    l_rbase: np.ndarray,
    l_rdev: np.ndarray,
    l_pdev: np.ndarray,
    l_misc: np.ndarray,
    l_load: np.ndarray,
    l_amb: np.ndarray,
    out: np.ndarray,  # (B, N_FEATURES) pre-filled with NaN
) -> None:
    nt = coef.shape[0]
    # per-segment accumulators, reused for every row
    # the component signals' sums per segment: (segment, quantity, signal), the signal innermost
    acc = np.empty((_N_SEG, _A_N, KC))
    rs = np.empty((nt, 6, _N_SEG))  # residuals: n, sx, sxx, sy, sxy, syy
    ld = np.empty((nt, 5, _N_SEG))  # load response: n, sx, sxx, sd, sxd
    am = np.empty((nt, 5))  # ambient response over 168 h
    ctx_s = np.empty(4)
    ctx_c = np.empty(4)
    means = np.empty(K)
    rbase = np.empty(nt)
    for i in range(rows.shape[0]):
        r = rows[i]
        st = start[i]
        acc[:] = 0.0
        acc[:, _A_MAX, :] = -np.inf
        rs[:] = 0.0
        ld[:] = 0.0
        am[:] = 0.0
        ctx_s[:] = 0.0
        ctx_c[:] = 0.0
        pc_s24 = pc_n24 = pc_s = pc_n = 0.0
        ev24 = sp24 = al24 = dn24 = al168 = cov168 = 0.0
        bl = baseline[i]
        if has_model:
            # the turbine's own long-term residual (linear model on 30-day means of P, P^2, rpm, rpm^2)
            bp = bl[P_IDX] / 1000.0
            bpsq = bl[K] / 1e6
            br = bl[R_IDX] / 10.0
            brsq = bl[K + 1] / 100.0
            for j in range(nt):
                e = coef[j, 0]
                e += bp * coef[j, 1]
                e += bpsq * coef[j, 2]
                e += bp * coef[j, 3]
                e += bl[A_IDX] * coef[j, 4]
                e += br * coef[j, 5]
                e += brsq * coef[j, 6]
                rbase[j] = bl[j] - e
        prev_p = np.nan
        for t in range(N_BINS):
            s = st + t
            if s >= N_BINS:
                s -= N_BINS
            g = _seg_of(t)
            recent = t >= N_BINS - 24
            tf = float(t)
            tt = tf * tf
            # the component signals: branch-free, each signal's sums in its own lane of ``acc`` (the
            # compiler vectorises the loop); a value that is not added adds +0.0 instead, which leaves
            # every sum bit for bit as it was (a sum that starts at +0.0 is never -0.0, x + 0.0 == x)
            for k in range(KC):
                cn = float(cnts[r, s, k])
                sm = float(sums[r, s, k])
                y = sm / cn if cn > 0 else np.nan
                means[k] = y
                acc[g, _A_SUM, k] += sm
                acc[g, _A_CNT, k] += cn
                mx = half[max_bits[r, s, k]] if use_bits else float(max_f[r, s, k])
                cm = acc[g, _A_MAX, k]
                acc[g, _A_MAX, k] = mx if mx > cm else cm
                fin = np.isfinite(y)
                acc[g, _A_HS, k] += 1.0 if fin else 0.0
                acc[g, _A_HS + 1, k] += tf if fin else 0.0
                acc[g, _A_HS + 2, k] += tt if fin else 0.0
                acc[g, _A_HS + 3, k] += y if fin else 0.0
                acc[g, _A_HS + 4, k] += y * tf if fin else 0.0
                acc[g, _A_HS + 5, k] += y * y if fin else 0.0
                d = mx - y
                ok = recent and mx != -np.inf and np.isfinite(d)
                acc[0, _A_POM_S, k] += d if ok else 0.0
                acc[0, _A_POM_N, k] += 1.0 if ok else 0.0
            for k in range(KC, K):
                cn = float(cnts[r, s, k])
                sm = float(sums[r, s, k])
                means[k] = sm / cn if cn > 0 else np.nan
                if recent:
                    ctx_s[k - KC] += sm
                    ctx_c[k - KC] += cn
            ev = float(ctr[r, s, CTR_EVENTS])
            if ev > 0:
                cov168 += 1.0
            al168 += float(ctr[r, s, CTR_ALARMS])
            if recent:
                ev24 += ev
                sp24 += float(ctr[r, s, CTR_SPIKES])
                al24 += float(ctr[r, s, CTR_ALARMS])
                dn24 += float(ctr[r, s, CTR_DOWN])
            if has_model:
                p = means[P_IDX]
                prev = p if t == 0 or not np.isfinite(prev_p) else prev_p
                prev_p = p
                pk = p / 1000.0
                rr = means[R_IDX] / 10.0
                amb = means[A_IDX]
                amb_ok = np.isfinite(amb)
                pk_ok = np.isfinite(pk)
                for j in range(nt):
                    e = coef[j, 0]
                    e += pk * coef[j, 1]
                    e += (pk * pk) * coef[j, 2]
                    e += (prev / 1000.0) * coef[j, 3]
                    e += amb * coef[j, 4]
                    e += rr * coef[j, 5]
                    e += (rr * rr) * coef[j, 6]
                    res = means[j] - e
                    if np.isfinite(res):
                        _add_point(rs, j, g, tf, res)
                    dv = res - rbase[j]
                    if np.isfinite(dv):
                        if pk_ok:
                            ld[j, 0, g] += 1.0
                            ld[j, 1, g] += pk
                            ld[j, 2, g] += pk * pk
                            ld[j, 3, g] += dv
                            ld[j, 4, g] += pk * dv
                        if amb_ok:
                            am[j, 0] += 1.0
                            am[j, 1] += amb
                            am[j, 2] += amb * amb
                            am[j, 3] += dv
                            am[j, 4] += amb * dv
                if ctr[r, s, CTR_DOWN] == 0 and ctr[r, s, CTR_CURTAILED] == 0:
                    pc = p - _interp(means[_WIND], pc_wind, pc_power, pc_inv)
                    if np.isfinite(pc):
                        pc_s += pc
                        pc_n += 1.0
                        if recent:
                            pc_s24 += pc
                            pc_n24 += 1.0

        o = out[i]
        for k in range(KC):
            for hi in range(4):
                tc = _nest(acc[:, _A_CNT, k], hi)
                o[l_comp[k, hi, 0]] = _nest(acc[:, _A_SUM, k], hi) / tc if tc > 0 else np.nan
                mx = acc[3, _A_MAX, k]
                for sg in range(2, 2 - hi, -1):
                    if acc[sg, _A_MAX, k] > mx:
                        mx = acc[sg, _A_MAX, k]
                o[l_comp[k, hi, 1]] = np.nan if mx == -np.inf else mx
                _, sd_, sl_ = _tail(
                    _nest(acc[:, _A_HS, k], hi),
                    _nest(acc[:, _A_HS + 1, k], hi),
                    _nest(acc[:, _A_HS + 2, k], hi),
                    _nest(acc[:, _A_HS + 3, k], hi),
                    _nest(acc[:, _A_HS + 4, k], hi),
                    _nest(acc[:, _A_HS + 5, k], hi),
                )
                o[l_comp[k, hi, 2]] = sd_
                o[l_comp[k, hi, 3]] = sl_
            pn = acc[0, _A_POM_N, k]
            o[l_pom[k]] = acc[0, _A_POM_S, k] / pn if pn > 0 else np.nan
        for c in range(4):
            o[l_ctx[c]] = ctx_s[c] / ctx_c[c] if ctx_c[c] > 0 else np.nan
        for hi in range(2):
            tc = _nest(acc[:, _A_CNT, _PRES], hi)
            m = _nest(acc[:, _A_SUM, _PRES], hi) / tc if tc > 0 else np.nan
            o[l_pdev[hi]] = m - bl[_PRES]
        o[l_misc[0]] = bhours[i]
        if has_model:
            o[l_misc[1]] = pc_s24 / pc_n24 if pc_n24 > 0 else np.nan
            o[l_misc[2]] = pc_s / pc_n if pc_n > 0 else np.nan
            for j in range(nt):
                o[l_rbase[j]] = rbase[j]
                for hi in range(4):
                    mean_, _, sl_ = _tail(
                        _nest(rs[j, 0], hi),
                        _nest(rs[j, 1], hi),
                        _nest(rs[j, 2], hi),
                        _nest(rs[j, 3], hi),
                        _nest(rs[j, 4], hi),
                        _nest(rs[j, 5], hi),
                    )
                    o[l_resid[j, hi]] = mean_
                    if hi < 3:
                        o[l_rdev[j, hi]] = mean_ - rbase[j]
                    if hi >= 2:
                        o[l_rslope[j, hi - 2]] = sl_
                for li in range(3):
                    hi = li + 1  # 24, 72, 168 h
                    beta, icpt = _beta(
                        _nest(ld[j, 0], hi),
                        _nest(ld[j, 1], hi),
                        _nest(ld[j, 2], hi),
                        _nest(ld[j, 3], hi),
                        _nest(ld[j, 4], hi),
                        0.01,
                    )
                    o[l_load[j, li, 0]] = beta
                    o[l_load[j, li, 1]] = icpt + FULL_LOAD_MW * beta
                beta, _ = _beta(am[j, 0], am[j, 1], am[j, 2], am[j, 3], am[j, 4], 4.0)
                o[l_amb[j]] = beta
        o[l_misc[3]] = al24
        o[l_misc[4]] = al168
        o[l_misc[5]] = dn24 / ev24 if ev24 > 0 else np.nan
        # readings of the newest 24 h (segments 2 and 3): integer counts, exact in any order
        cnt24 = 0.0
        for k in range(KC):
            cnt24 += acc[2, _A_CNT, k] + acc[3, _A_CNT, k]
        for c in range(K - KC):
            cnt24 += ctx_c[c]
        o[l_misc[6]] = (ev24 * K - cnt24) / (max(ev24, 1.0) * K) if ev24 > 0 else 1.0
        o[l_misc[7]] = sp24
        o[l_misc[8]] = cov168
        fz = frozen[i]
        nfk = 0.0
        fmax = fz[0]
        for k in range(K):
            if k < _T and fz[k] > 0:
                nfk += 1.0
            if fz[k] > fmax:
                fmax = fz[k]
        o[l_misc[9]] = nfk
        o[l_misc[10]] = fmax


def _model_args(normal_model: NormalModel | None) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    if normal_model is None:
        z = np.zeros(2)
        return False, np.zeros((_T, 7)), z, z
    return (
        True,
        np.ascontiguousarray(normal_model.coef, dtype=np.float64),
        np.ascontiguousarray(normal_model.pc_wind, dtype=np.float64),
        np.ascontiguousarray(normal_model.pc_power, dtype=np.float64),
    )


_NO_BITS = np.zeros((1, 1, 1), dtype=np.uint16)
_NO_F32 = np.zeros((1, 1, 1), dtype=np.float32)


def ring_features(
    sums: np.ndarray,
    counts: np.ndarray,
    maxs: np.ndarray,
    counters: np.ndarray,
    rows: np.ndarray,
    start: np.ndarray,
    frozen_hours: np.ndarray,
    baseline: np.ndarray,
    baseline_hours: np.ndarray,
    normal_model: NormalModel | None = None,
) -> np.ndarray:
    """Features ``(len(rows), N_FEATURES)`` read straight from ring arrays (no gathered copy).

    ``sums`` / ``counts`` / ``maxs`` / ``counters`` are ``(R, N_BINS, ...)`` rings; row ``rows[i]``'s
    oldest hour is at slot ``start[i]`` (0 for arrays already in time order). ``maxs`` float16 (read
    as bits) or float32. ``frozen_hours`` ``(B, K)``, ``baseline`` ``(B, N_BASE)`` and
    ``baseline_hours`` ``(B,)`` are per output row. Features needing the normal model are NaN without one.
    """
    n = len(rows)
    out = np.full((n, N_FEATURES), np.nan)
    if n == 0:
        return out
    lay = _layout()
    if maxs.dtype == np.float16:
        bits, mf, use_bits = maxs.view(np.uint16), _NO_F32, True
    else:
        bits, mf, use_bits = _NO_BITS, np.asarray(maxs, dtype=np.float32), False
    has_model, coef, pcw, pcp = _model_args(normal_model)
    _features_kernel(
        sums,
        counts,
        bits,
        mf,
        use_bits,
        _half_to_f64(),
        counters,
        np.asarray(rows, dtype=np.int64),
        np.asarray(start, dtype=np.int64),
        np.ascontiguousarray(frozen_hours, dtype=np.float64),
        np.ascontiguousarray(baseline, dtype=np.float64),
        np.ascontiguousarray(baseline_hours, dtype=np.float64),
        has_model,
        coef,
        pcw,
        pcp,
        _interp_inv_step(pcw),
        lay.comp,
        lay.ctx,
        lay.pom,
        lay.resid,
        lay.rslope,
        lay.rbase,
        lay.rdev,
        lay.pdev,
        lay.misc,
        lay.load,
        lay.amb,
        out,
    )
    return out


def feature_matrix(b: BinArrays, normal_model: NormalModel | None = None) -> np.ndarray:
    """Features of B windows of time-ordered bins, ``(B, N_FEATURES)`` in ``FEATURE_NAMES`` order."""
    n = len(b)
    if n == 0:
        return np.zeros((0, N_FEATURES))
    return ring_features(
        b.sums,
        b.counts,
        b.maxs,
        b.counters,
        np.arange(n),
        np.zeros(n, dtype=np.int64),
        b.frozen_hours,
        b.baseline,
        b.baseline_hours,
        normal_model,
    )


def feature_columns(b: BinArrays, normal_model: NormalModel | None = None) -> dict[str, np.ndarray]:
    """Named feature columns of a non-empty batch of windows (see :func:`feature_matrix`)."""
    x = feature_matrix(b, normal_model)
    return {name: x[:, j] for j, name in enumerate(FEATURE_NAMES)}


@_jit
def _response_kernel(dev: np.ndarray, x: np.ndarray, hours: int, min_var: float, out: np.ndarray) -> None:
    for i in range(dev.shape[0]):
        for j in range(dev.shape[2]):
            n = sx = sxx = sd = sxd = 0.0
            for t in range(dev.shape[1] - hours, dev.shape[1]):
                d = dev[i, t, j]
                xv = x[i, t]
                if np.isfinite(d) and np.isfinite(xv):
                    n += 1.0
                    sx += xv
                    sxx += xv * xv
                    sd += d
                    sxd += xv * d
            beta, icpt = _beta(n, sx, sxx, sd, sxd, min_var)
            out[0, i, j] = beta
            out[1, i, j] = icpt


def response(dev: np.ndarray, x: np.ndarray, hours: int, min_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares ``dev ~ a + beta * x`` per window and target over the newest ``hours`` hours.

    ``dev`` is ``(B, N, T)``, ``x`` ``(B, N)`` (time on axis 1, newest last); the rule of the
    ``resid_load_beta`` / ``resid_ambient_beta`` features (same :func:`_beta`). Returns ``(beta, a)``,
    each ``(B, T)``.
    """
    dev = np.ascontiguousarray(dev, dtype=np.float64)
    out = np.empty((2, dev.shape[0], dev.shape[2]))
    _response_kernel(dev, np.ascontiguousarray(x, dtype=np.float64), int(hours), float(min_var), out)
    return out[0], out[1]


# --------------------------------------------------------------------------------------------------
# Data quality
# --------------------------------------------------------------------------------------------------


@dataclass
class QualitySums:
    """Per-window sums data quality needs (the numeric part; the dicts are built in Python)."""

    ctr24: np.ndarray  # (B, N_CTR) counters over the newest 24 hours
    cnt24: np.ndarray  # (B, K) readings over the newest 24 hours
    events_all: np.ndarray  # (B,) events in the window
    coverage24: np.ndarray  # (B,) hours with an event among the newest 24
    acnt24: np.ndarray | None  # (B, N_ACNT) auxiliary readings over the newest 24 hours


@_jit
def _quality_kernel(
    cnts: np.ndarray,
    ctr: np.ndarray,
    acnt: np.ndarray,
    has_aux: bool,
    rows: np.ndarray,
    start: np.ndarray,
    ctr24: np.ndarray,
    cnt24: np.ndarray,
    events_all: np.ndarray,
    coverage24: np.ndarray,
    acnt24: np.ndarray,
) -> None:
    for i in range(rows.shape[0]):
        r = rows[i]
        st = start[i]
        for t in range(N_BINS):
            s = st + t
            if s >= N_BINS:
                s -= N_BINS
            events_all[i] += np.int64(ctr[r, s, CTR_EVENTS])
            if t < N_BINS - 24:
                continue
            if ctr[r, s, CTR_EVENTS] > 0:
                coverage24[i] += 1
            for c in range(ctr.shape[2]):
                ctr24[i, c] += np.int64(ctr[r, s, c])
            for k in range(cnts.shape[2]):
                cnt24[i, k] += np.int64(cnts[r, s, k])
            if has_aux:
                for a in range(acnt.shape[2]):
                    acnt24[i, a] += np.int64(acnt[r, s, a])


_NO_ACNT = np.zeros((1, 1, N_ACNT), dtype=np.uint8)


def ring_quality_sums(
    counts: np.ndarray,
    counters: np.ndarray,
    aux_counts: np.ndarray | None,
    rows: np.ndarray,
    start: np.ndarray,
) -> QualitySums:
    """:class:`QualitySums` read straight from ring arrays (see :func:`ring_features` for the layout)."""
    n = len(rows)
    out = QualitySums(
        ctr24=np.zeros((n, counters.shape[2]), dtype=np.int64),
        cnt24=np.zeros((n, K), dtype=np.int64),
        events_all=np.zeros(n, dtype=np.int64),
        coverage24=np.zeros(n, dtype=np.int64),
        acnt24=None if aux_counts is None else np.zeros((n, N_ACNT), dtype=np.int64),
    )
    if n:
        _quality_kernel(
            counts,
            counters,
            _NO_ACNT if aux_counts is None else aux_counts,
            aux_counts is not None,
            np.asarray(rows, dtype=np.int64),
            np.asarray(start, dtype=np.int64),
            out.ctr24,
            out.cnt24,
            out.events_all,
            out.coverage24,
            out.acnt24 if out.acnt24 is not None else np.zeros((1, N_ACNT), dtype=np.int64),
        )
    return out


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
    sums = ring_quality_sums(b.counts, b.counters, b.aux_counts, np.arange(n), np.zeros(n, dtype=np.int64))
    return quality_dicts(sums, b.frozen_hours, b.last_ts, b.first_ts, b.late, now, fitted)


def quality_dicts(
    q: QualitySums,
    frozen_hours: np.ndarray,
    last_ts: np.ndarray,
    first_ts: np.ndarray,
    late: np.ndarray,
    now: Sequence[float | None] | None = None,
    fitted: Sequence[Collection[str] | None] | None = None,
) -> list[dict[str, Any]]:
    """The data-quality dicts of windows from their :class:`QualitySums` and per-window scalars
    (``last_ts`` / ``first_ts`` epoch seconds, NaN = none; ``late`` events dropped).

    Arrays become Python lists first: the loop then handles Python ints and floats only. Which rows
    have a frozen or a silent sensor, and each row's count of values, are found over arrays; only
    those rows build their entries (same dicts and lists, same order, as the per-signal loops).
    """
    events24s = q.ctr24[:, CTR_EVENTS].tolist()
    spikes = q.ctr24[:, CTR_SPIKES].tolist()
    cnt_sum = q.cnt24.sum(axis=1).tolist()
    events_all, coverage = q.events_all.tolist(), q.coverage24.tolist()
    acnt24 = q.acnt24
    lasts, firsts, lates = last_ts.tolist(), first_ts.tolist(), late.tolist()
    key_idx = [int(k) for k in KEY_IDX]
    with np.errstate(invalid="ignore"):
        has_frozen: list[bool] = np.any(frozen_hours > 0, axis=1).tolist()
    has_silent: list[bool] = ((q.cnt24[:, KEY_IDX] == 0).any(axis=1) & (q.ctr24[:, CTR_EVENTS] > 0)).tolist()
    stamps: dict[float, str] = {}  # a fleet's readings share their 10-min stamps: each made once
    out: list[dict[str, Any]] = []
    for i in range(len(events_all)):
        events24 = int(events24s[i])
        if has_frozen[i]:
            fh = frozen_hours[i].tolist()
            frozen = {TRACKED_SIGNALS[k]: round(h, 2) for k, h in enumerate(fh) if h > 0}
        else:
            frozen = {}
        if has_silent[i]:
            cnt_i = q.cnt24[i].tolist()
            silent = [sig for sig, k in zip(KEY_SIGNALS, key_idx, strict=True) if cnt_i[k] == 0]
        else:
            silent = []
        fit = None if fitted is None else fitted[i]
        if fit is None:
            expected_values = events24 * K
            missing24 = expected_values - int(cnt_sum[i])
        else:
            cnt = q.cnt24[i].tolist()
            have = frozenset(fit)
            present = [cnt[k] for k, sig in enumerate(TRACKED_SIGNALS) if sig in have]
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
        last = lasts[i]
        last_t = None if math.isnan(last) else last
        stamp = None if last_t is None else stamps.get(last_t)
        if stamp is None and last_t is not None:
            stamp = stamps[last_t] = datetime.fromtimestamp(last_t, UTC).isoformat()
        t_now = None if now is None else now[i]
        since = None if t_now is None or last_t is None else max(0.0, t_now - last_t)
        first = firsts[i]
        out.append(
            {
                "events_in_window": int(events_all[i]),
                "events_24h": events24,
                "last_event_time": stamp,
                "seconds_since_last_event": since,
                "history_hours": 0.0
                if math.isnan(first) or last_t is None
                else round((last_t - first) / 3600, 2),
                "coverage_hours_24h": int(coverage[i]),
                "missing_share_24h": round(missing24 / expected_values, 4) if expected_values else 1.0,
                "spikes_24h": int(spikes[i]),
                "frozen_signals": frozen,
                "silent_key_signals_24h": silent,
                "late_events_dropped": int(lates[i]),
            }
        )
    return out


def warm_up() -> float:
    """Compile (or load from the on-disk cache) the kernels a worker uses; returns the seconds it took.

    Call once at start so the first batch is not delayed by compilation: a tiny store with events,
    features with and without a normal model and data quality, for uint8 counts (the store's initial
    width) and uint16 (a store widened by more than 255 events an hour, e.g. 1-Hz data). Wider counts
    (uint32 / uint64) and the snapshot path (``feature_matrix`` of snapshots) compile on first use.
    """
    import time

    from models.window_store import WindowStore

    t0 = time.perf_counter()
    store = WindowStore(1)
    rows = store.rows_for(["warm-up"])
    vals = np.full((2, K), 1.0)
    status = np.zeros(2, dtype=np.int64)
    store.ingest(np.repeat(rows, 2), np.array([0.0, 3600.0]), vals, status, np.zeros((2, 3)))
    grid = np.array([0.0, 1.0])
    nm = NormalModel(NBM_TARGETS, np.zeros((_T, 7)), np.ones(_T), grid, grid)
    for needed in (0, 256):
        store._widen(needed)
        store.features(rows, nm)
        store.features(rows, None)
        store.data_quality(rows, np.array([3600.0]), [None])
    response(np.zeros((1, 24, 1)), np.zeros((1, 24)), 24, 0.01)
    from models.tree_predict import warm_up as warm_up_trees  # the models' tree kernel (same start)

    warm_up_trees()
    return time.perf_counter() - t0


__all__ = [
    "N_BINS",
    "BinArrays",
    "QualitySums",
    "data_quality",
    "feature_columns",
    "feature_matrix",
    "quality_dicts",
    "response",
    "ring_features",
    "ring_quality_sums",
    "warm_up",
]
