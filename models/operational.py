"""Operational scoring: turbines with operational sensors only, judged against their OWN calibration.

A turbine that measures wind, power, pitch and/or rotor speed, ambient temperature (and perhaps wind
and nacelle direction) but no component temperatures or vibration cannot feed the failure models. It
can still tell when it behaves unlike itself:

- **power** vs its own power curve (method of bins), over the hours with wind in the curve's range;
- **pitch** and **rotor speed** vs their usual values at the same wind;
- **yaw misalignment**: circular mean of nacelle - wind direction vs its usual offset;
- **availability**: share of the hours with wind in the operating range in which it produced;
- **temperatures** it has, vs their calibrated normal-behaviour models;
- **curtailment** (status codes) is reported, and curtailed hours are not judged.

Each deviation is expressed in units of the turbine's own normal spread for the same window length
(``models.calibration``), so thresholds (``operational:`` in ``models/config/policy.yaml``) are the
turbine's, never simulator constants. The operational set predicts no failure probability and no time
to failure: both stay ``None`` and ``data_quality["predictions"]`` says why.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from models.calibration import (
    ANGLE,
    AVAILABILITY,
    PITCH,
    POWER,
    POWER_HIGH,
    ROTOR,
    WINDOW_HOURS,
    YAW,
    Calibration,
    IndicatorNormal,
    Terms,
    TurbineCalibration,
    hourly_terms,
    window_hourly,
    window_stat,
    wrap_deg,
)
from models.features import (
    N_BINS,
    FeatureWindow,
    HourlyMeans,
    WindowSnapshot,
    hourly_view,
    window_data_quality,
)
from models.policy import OperationalConfig, RiskPolicy, pretty_signal
from models.scoring import RiskAssessment, unknown_assessment
from models.sensor_sets import OPERATIONAL, signals_used

PREDICTION_NOTE = (
    "no failure probability or time to failure: the operational sensor set (no component temperatures "
    "or vibration) cannot predict them; the score measures how far the turbine departs from its own "
    "calibrated behaviour"
)
CALIBRATE_HINT = "python -m models calibrate --input <history.parquet|csv> [--register fleet.yaml]"


@dataclass
class Deviation:
    """One indicator of one window, against the turbine's own normal."""

    indicator: str
    stat: float  # window statistic (power: relative deviation; availability: share; others: degrees, rpm, °C)
    center: float  # the turbine's normal value of the statistic
    band: float  # half-width of the normal band (z_moderate x spread)
    z: float  # signed (stat - center) / spread
    badness: float  # z in the harmful direction (>= 0)
    persistence: float  # share of the clearly deviating hours that deviate the harmful way
    hours: int  # window length actually judged
    judged_hours: int
    wind_lo: float
    wind_hi: float
    score: float = 0.0
    down_hours: int = 0
    span_hours: int = 0  # first to last strongly deviating hour

    @property
    def flagged(self) -> bool:
        return self.score > 0


def _floor(cfg: OperationalConfig, indicator: str) -> float:
    f = cfg.spread_floor
    if indicator == POWER:
        return f.power_pct / 100.0
    if indicator == POWER_HIGH:
        return f.power_high_pct / 100.0
    if indicator == PITCH:
        return f.pitch_deg
    if indicator == ROTOR:
        return f.rotor_rpm
    if indicator == YAW:
        return f.yaw_deg
    if indicator == AVAILABILITY:
        return f.availability_pct / 100.0
    return f.temperature_c


def _normal_for(ind: IndicatorNormal, hours: int) -> tuple[float, float] | None:
    n = ind.normal(hours)
    if n is not None:
        return n
    if not ind.windows:
        return None
    nearest = min(ind.windows, key=lambda h: abs(h - hours))
    return ind.normal(nearest)


class OperationalScorer:
    """Scores ``(turbine_id, FeatureWindow)`` items against a calibration (see the module docstring)."""

    def __init__(self, policy: RiskPolicy | None = None, calibration: Calibration | None = None) -> None:
        self.policy = policy or RiskPolicy()
        self.calibration = calibration

    @property
    def version(self) -> str:
        """``model_version`` of the assessments: the calibration they were judged against."""
        return (
            f"operational/{self.calibration.version}" if self.calibration is not None else "operational/none"
        )

    # ---------------------------------------------------------------- deviations
    def deviations(
        self, tc: TurbineCalibration, snapshot: WindowSnapshot, hm: HourlyMeans | None = None
    ) -> tuple[list[Deviation], list[str]]:
        """Deviations of one window that could be judged, and the indicators that could not."""
        cfg = self.policy.config.operational
        tiers = self.policy.config.tiers
        hm = hm if hm is not None else hourly_view(snapshot)
        h = window_hourly(hm)
        terms = hourly_terms(tc, h)
        out: list[Deviation] = []
        not_judged: list[str] = []
        candidates = [w for w in WINDOW_HOURS if w >= cfg.window_hours and w <= N_BINS] or [cfg.window_hours]
        wind = h["wind_speed_ms"]
        for name, t in terms.items():
            ind = tc.deviations.get(name)
            if ind is None:
                continue
            chosen = None
            for hours in candidates:
                sl = slice(N_BINS - hours, N_BINS)
                n = int(t.judged[sl].sum())
                if n >= cfg.min_judged_hours:
                    chosen = (hours, sl, n)
                    break
            if chosen is None:
                not_judged.append(name)
                continue
            hours, sl, n = chosen
            normal = _normal_for(ind, hours)
            if normal is None:
                not_judged.append(name)
                continue
            center, spread = normal
            floor = _floor(cfg, name)
            spread = max(spread, floor)
            stat, _ = window_stat(t, sl.start, sl.stop)
            diff = float(wrap_deg(stat - center)) if t.kind == ANGLE else stat - center
            z = diff / spread
            if name in (POWER, POWER_HIGH, AVAILABILITY):
                badness = max(0.0, -z)
            elif name.startswith("temp:"):
                badness = max(0.0, z)
            else:
                badness = abs(z)
            persistence, deviating, span = _persistence(t, ind, sl, diff, floor, cfg.z_moderate)
            judged = t.judged[sl]
            w = wind[sl][judged]
            dev = Deviation(
                indicator=name,
                stat=stat,
                center=center,
                band=cfg.z_moderate * spread,
                z=z,
                badness=badness,
                persistence=persistence,
                hours=hours,
                judged_hours=n,
                wind_lo=float(np.nanmin(w)) if w.size else math.nan,
                wind_hi=float(np.nanmax(w)) if w.size else math.nan,
                down_hours=int((hm.down[sl] > 0).sum()),
                span_hours=span,
            )
            persistent = (
                persistence >= cfg.min_persistence
                and deviating >= cfg.min_deviating_hours
                and span >= cfg.min_deviation_span_hours
            )
            dev.score = _score(badness, persistent, cfg, tiers.moderate, tiers.high)
            out.append(dev)
        return out, not_judged

    # ---------------------------------------------------------------- scoring
    def score(
        self,
        items: Sequence[tuple[str, Any]],
        now: datetime | None = None,
        fitted: Mapping[str, Collection[str] | None] | None = None,
    ) -> list[RiskAssessment]:
        """Assess every item; ``now`` enables the staleness check (None: each item as of its newest event).

        ``fitted`` gives each turbine's fitted sensors for data quality (default: the signals its
        calibration saw).
        """
        return self.assess_many(
            items,
            [now] * len(items),
            [fitted.get(tid) if fitted is not None else None for tid, _ in items],
        )

    def assess_many(
        self,
        items: Sequence[tuple[str, Any]],
        nows: Sequence[datetime | None],
        fitted: Sequence[Collection[str] | None],
    ) -> list[RiskAssessment]:
        """Assess items, each as of its ``nows`` entry (None: its newest event) with its fitted sensors.

        The data quality of all windows is computed over arrays in one call (``window_data_quality``);
        the deviations are per window (hourly view of its own bins).
        """
        cal = self.calibration
        resolved: list[Collection[str] | None] = []
        for (tid, _), f in zip(items, fitted, strict=True):
            tc = cal.get(tid) if cal is not None else None
            resolved.append(tc.signals if f is None and tc is not None else f)
        win_idx = [i for i, (_, it) in enumerate(items) if isinstance(it, FeatureWindow)]
        dqs: dict[int, dict[str, Any]] = {}
        if win_idx:
            windows = [items[i][1] for i in win_idx]
            found = window_data_quality(
                windows,
                [nows[i] if nows[i] is not None else items[i][1].as_of for i in win_idx],
                fitted=[resolved[i] for i in win_idx],
            )
            dqs = dict(zip(win_idx, found, strict=True))
        return [
            self.assess(tid, item, nows[i], resolved[i], dq=dqs.get(i)) for i, (tid, item) in enumerate(items)
        ]

    def assess(
        self,
        turbine_id: str,
        item: Any,
        now: datetime | None = None,
        fitted: Collection[str] | None = None,
        dq: dict[str, Any] | None = None,
    ) -> RiskAssessment:
        """One item; ``dq``: its data quality when already computed (:meth:`assess_many`)."""
        cfg = self.policy.config
        cal = self.calibration
        tc = cal.get(turbine_id) if cal is not None else None
        if not isinstance(item, FeatureWindow):
            return self._unknown(
                turbine_id,
                getattr(item, "as_of", None),
                "no_window",
                "operational scoring needs the turbine's hourly window "
                "(a precomputed feature row is not enough)",
                dict(getattr(item, "data_quality", {}) or {}),
            )
        snap = item.snapshot()
        as_of = item.as_of
        if fitted is None and tc is not None:
            fitted = tc.signals
        if dq is None:
            dq = item.data_quality(now=now if now is not None else as_of, snapshot=snap, fitted=fitted)
        dq.update(
            sensor_set=OPERATIONAL,
            signals_used=signals_used(OPERATIONAL, fitted),
            calibration_version=cal.version if cal is not None else None,
            predictions=PREDICTION_NOTE,
        )
        if tc is None:
            if cal is not None and turbine_id in cal.refused:
                text = (
                    f"calibration {cal.version} refused this turbine ({cal.refused[turbine_id]}); "
                    f"run `{CALIBRATE_HINT}` with more history"
                )
            elif cal is None:
                text = f"no calibration in the registry: run `{CALIBRATE_HINT}` to fit its normal behaviour"
            else:
                text = (
                    f"no calibration for {turbine_id} in calibration {cal.version}: run `{CALIBRATE_HINT}` "
                    "with its history"
                )
            return self._unknown(turbine_id, as_of, "no_calibration", text, dq)
        verdict = self.policy.data_quality_batch([dq])  # a batch of one
        dq_reasons, hard = verdict.reasons[0], bool(verdict.hard[0])
        hm = hourly_view(snap)
        devs, not_judged = self.deviations(tc, snap, hm)
        dq["judged"] = {d.indicator: {"hours": d.hours, "judged_hours": d.judged_hours} for d in devs}
        if not_judged:
            dq["not_judged"] = not_judged
        score = max((d.score for d in devs), default=0.0)
        flagged = sorted((d for d in devs if d.score >= cfg.tiers.moderate), key=lambda d: -d.badness)
        power_first = next((d for d in flagged if d.indicator in (POWER, POWER_HIGH)), None)
        flagged = [d for d in flagged if d.indicator not in (POWER, POWER_HIGH) or d is power_first]
        reasons = [_reason(d, tc) for d in flagged[: cfg.reasons.max_reasons]]
        if not reasons and not hard:
            reasons.append(
                _summary(devs, not_judged, tc, cfg.operational.window_hours, cfg.operational.z_moderate)
            )
        curt = _curtailment(hm, cfg.operational)
        if curt is not None:
            reasons.append(curt)
        (score,), (tier,) = self.policy.apply_data_quality([score], [bool(dq_reasons)], [hard])
        return RiskAssessment(
            turbine_id=turbine_id,
            as_of=as_of,
            score=round(score, 2),
            tier=tier,
            probability=None,
            ttf_days=None,
            ttf_low_days=None,
            ttf_high_days=None,
            reasons=dq_reasons + reasons,
            data_quality=dq,
            model_version=self.version,
        )

    def power_reason(self, turbine_id: str, snapshot: WindowSnapshot) -> dict[str, Any] | None:
        """The calibrated power-curve reason of a window when its power deviation is flagged, else None.

        Used by the fleet scorer to replace the full model's comparison with the simulator's curve.
        """
        tc = self.calibration.get(turbine_id) if self.calibration is not None else None
        if tc is None:
            return None
        devs, _ = self.deviations(tc, snapshot)
        power = [d for d in devs if d.indicator in (POWER, POWER_HIGH)]
        best = max(power, key=lambda d: d.score, default=None)
        if best is not None and best.score >= self.policy.config.tiers.moderate:
            return _reason(best, tc)
        return None

    def _unknown(
        self, turbine_id: str, as_of: datetime | None, indicator: str, text: str, dq: dict[str, Any]
    ) -> RiskAssessment:
        return unknown_assessment(turbine_id, as_of, indicator, text, dq, self.version)


def _persistence(
    t: Terms, ind: IndicatorNormal, sl: slice, diff: float, floor: float, strong: float
) -> tuple[float, int, int]:
    """(share, count) of the clearly deviating hours (beyond one hourly spread) that deviate on ``diff``'s
    side, and the span in hours (first to last) of the STRONGLY deviating ones (beyond ``strong`` hourly
    spreads). Why a share of the deviating hours and not of all hours: a derating or a pitch fault shows
    only in part of the wind range, while one odd hour in a calm window must not carry the statistic.
    Why the span: a curtailment of a few hours in an export without status codes deviates like a
    derating, but only for those few hours."""
    judged = t.judged[sl]
    if not judged.any() or diff == 0:
        return 0.0, 0, 0
    hd_all = t.hourly[sl]
    hd_all = wrap_deg(hd_all - ind.hourly_center) if t.kind == ANGLE else hd_all - ind.hourly_center
    sign = 1.0 if diff > 0 else -1.0
    limit = max(ind.hourly_spread, floor) if ind.hourly_spread > 0 else 0.0  # 0/1 hours: any departure
    with np.errstate(invalid="ignore"):
        harmful = judged & (sign * hd_all > limit)
        against = int((judged & (-sign * hd_all > limit)).sum())
        where = np.flatnonzero(judged & (sign * hd_all > strong * limit))
    with_ = int(harmful.sum())
    span = int(where[-1] - where[0] + 1) if where.size else 0
    return (with_ / (with_ + against) if with_ else 0.0), with_, span


def _score(badness: float, persistent: bool, cfg: OperationalConfig, moderate: float, high: float) -> float:
    """0 at z = 0, ``moderate`` at ``z_moderate``, ``high`` at ``z_high``, towards ``max_score`` beyond."""
    z = badness
    if not math.isfinite(z) or z <= 0:
        return 0.0
    if z < cfg.z_moderate:
        s = moderate * z / cfg.z_moderate
    elif z < cfg.z_high:
        s = moderate + (high - moderate) * (z - cfg.z_moderate) / (cfg.z_high - cfg.z_moderate)
    else:
        s = high + (cfg.max_score - high) * min(1.0, (z - cfg.z_high) / cfg.z_high)
    if not persistent:
        s = min(s, moderate - 0.01)
    return round(min(s, cfg.max_score), 2)


def _span(hours: int) -> str:
    return f"over the last {hours} h"


def _reason(d: Deviation, tc: TurbineCalibration) -> dict[str, Any]:
    lo, hi = d.center - d.band, d.center + d.band
    span = _span(d.hours)
    if d.indicator in (POWER, POWER_HIGH):
        pct = d.stat * 100.0
        word = "below" if pct < 0 else "above"
        text = (
            f"produces {abs(pct):.0f} % {word} its own power curve between {d.wind_lo:.0f} and "
            f"{d.wind_hi:.0f} m/s {span} (normal {_signed(lo * 100)} to {_signed(hi * 100)} %)"
        )
        return _r("power_curve_deviation", text, round(pct, 1), [round(lo * 100, 1), round(hi * 100, 1)])
    if d.indicator in (PITCH, ROTOR):
        diff = d.stat - d.center
        word = "above" if diff > 0 else "below"
        if d.indicator == PITCH:
            text = (
                f"pitch {abs(diff):.1f}° {word} its usual angle at the same wind {span} "
                f"(normal ±{d.band:.1f}°)"
            )
            return _r("pitch_deviation", text, round(diff, 2), [round(-d.band, 2), round(d.band, 2)])
        text = (
            f"rotor speed {abs(diff):.1f} rpm {word} its usual speed at the same wind {span} "
            f"(normal ±{d.band:.1f} rpm)"
        )
        return _r("rotor_speed_deviation", text, round(diff, 2), [round(-d.band, 2), round(d.band, 2)])
    if d.indicator == YAW:
        text = (
            f"nacelle {abs(d.stat):.0f}° off the wind on average {span} "
            f"(usually {_signed(d.center)}°, normal {_signed(lo)}° to {_signed(hi)}°)"
        )
        return _r("yaw_misalignment", text, round(d.stat, 1), [round(lo, 1), round(hi, 1)])
    if d.indicator == AVAILABILITY:
        olo, ohi = tc.operating_range_ms
        text = (
            f"produced in only {d.stat:.0%} of the {d.judged_hours} hours with wind between {olo:.0f} and "
            f"{ohi:.0f} m/s {span} (usually {d.center:.0%})"
        )
        if d.down_hours:
            text += f"; fault or maintenance status in {d.down_hours} h"
        return _r("availability", text, round(d.stat, 3), [round(max(lo, 0.0), 3), round(min(hi, 1.0), 3)])
    sig = d.indicator.split(":", 1)[1]
    diff = d.stat - d.center
    word = "above" if diff > 0 else "below"
    text = (
        f"{pretty_signal(sig)} {abs(diff):.1f} °C {word} its usual value for this power and ambient {span} "
        f"(normal ±{d.band:.1f} °C)"
    )
    return _r(f"temperature_deviation:{sig}", text, round(diff, 2), [round(-d.band, 2), round(d.band, 2)])


def _signed(x: float) -> str:
    """Whole number with its sign, and no "-0"."""
    v = round(x)
    return f"{v:+d}" if v else "0"


def _r(indicator: str, text: str, value: float, rng: list[float]) -> dict[str, Any]:
    return {"indicator": indicator, "text": text, "value": value, "normal_range": rng}


_NAMES = {
    POWER: "power curve",
    POWER_HIGH: "power near rated",
    PITCH: "pitch",
    ROTOR: "rotor speed",
    YAW: "yaw",
    AVAILABILITY: "availability",
}


def _name(indicator: str) -> str:
    return _NAMES.get(indicator, pretty_signal(indicator.split(":", 1)[-1]))


def _summary(
    devs: list[Deviation], not_judged: list[str], tc: TurbineCalibration, hours: int, z_moderate: float
) -> dict[str, Any]:
    """The reason of a turbine with no flagged deviation: what was judged, what deviated only briefly
    (large but not persistent, e.g. a few hours of curtailment without a status code), what could not be."""
    brief = [d for d in devs if d.badness >= z_moderate]
    calm = [_name(d.indicator) for d in devs if d.badness < z_moderate]
    power = next((d for d in devs if d.indicator == POWER), None)
    parts = []
    if calm:
        text = "behaves as calibrated: " + ", ".join(calm) + " within its own normal ranges"
        if power is not None and power.badness < z_moderate:
            text += f" (power {_signed(power.stat * 100)} % vs its own curve {_span(power.hours)})"
        parts.append(text)
    for d in brief:
        what = (
            f"power {_signed(d.stat * 100)} % vs its own curve"
            if d.indicator in (POWER, POWER_HIGH)
            else f"{_name(d.indicator)} off its usual value"
        )
        parts.append(
            f"brief {_name(d.indicator)} deviation not counted: {what} {_span(d.hours)}, not persistent "
            f"(strong deviations within {d.span_hours} h; curtailment or a short stop?)"
        )
    text = "; ".join(parts) if parts else f"nothing could be judged {_span(hours)}"
    if not_judged:
        names = ", ".join(_name(n) for n in not_judged)
        text += (
            f"; not judged ({names}): fewer than the hours needed with wind between "
            f"{tc.cut_in_ms:.1f} and {tc.max_wind_ms:.1f} m/s in the last {max(WINDOW_HOURS)} h"
        )
    value = None if power is None else round(power.stat * 100, 1)
    rng = (
        None
        if power is None
        else [round((power.center - power.band) * 100, 1), round((power.center + power.band) * 100, 1)]
    )
    return {"indicator": "operational_summary", "text": text, "value": value, "normal_range": rng}


def _curtailment(hm: HourlyMeans, cfg: OperationalConfig) -> dict[str, Any] | None:
    sl = slice(N_BINS - cfg.window_hours, N_BINS)
    events = float(hm.events[sl].sum())
    if events <= 0:
        return None
    share = float(hm.curtailed[sl].sum()) / events
    if share < cfg.curtailment_note_share or share == 0:
        return None
    return {
        "indicator": "curtailment",
        "text": f"curtailed {share:.0%} of the time {_span(cfg.window_hours)} "
        "(status codes; those hours are not judged)",
        "value": round(share, 3),
        "normal_range": None,
    }
