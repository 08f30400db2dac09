"""Risk policy: model outputs + data quality -> 0-100 score, tier and plain-language reasons.

Why a separate, configurable layer: operators tune thresholds without retraining, and data-quality
rules (stale, missing, frozen sensors) must override the model - a frozen gearbox thermometer stuck at
a hot value must never page someone as "critical".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.features import KEY_SIGNALS, NBM_TARGETS, TEMP_SIGNALS

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent / "config" / "policy.yaml"
TIER_ORDER: tuple[str, ...] = ("low", "moderate", "high", "critical")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreConfig(_Strict):
    ttf_horizon_days: float = Field(default=30.0, gt=0)
    ttf_urgent_days: float = Field(default=2.0, ge=0)
    ttf_weight: float = Field(default=0.7, ge=0, le=1)

    @model_validator(mode="after")
    def _urgent_below_horizon(self) -> ScoreConfig:
        if self.ttf_urgent_days >= self.ttf_horizon_days:
            raise ValueError("ttf_urgent_days must be below ttf_horizon_days")
        return self


class TierConfig(_Strict):
    critical: float = Field(default=80.0, ge=0, le=100)
    high: float = Field(default=50.0, ge=0, le=100)
    moderate: float = Field(default=20.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> TierConfig:
        if not (self.critical > self.high > self.moderate > 0):
            raise ValueError("tier thresholds must satisfy critical > high > moderate > 0")
        return self


class DataQualityConfig(_Strict):
    max_staleness_minutes: float = Field(default=120.0, gt=0)
    max_missing_share: float = Field(default=0.5, ge=0, le=1)
    min_coverage_hours_24h: int = Field(default=6, ge=0, le=24)
    key_signals: tuple[str, ...] = KEY_SIGNALS
    frozen_key_signal: Literal["unknown", "cap"] = "unknown"
    silent_key_signal: Literal["unknown", "cap", "ignore"] = "unknown"
    cap_score: float = Field(default=49.0, ge=0, le=100)


class ReasonConfig(_Strict):
    max_reasons: int = Field(default=3, ge=1, le=10)


class SpreadFloors(_Strict):
    """Smallest spread used for each deviation, so a very steady turbine is not paged for a tiny change."""

    power_pct: float = Field(default=2.0, gt=0)
    power_high_pct: float = Field(default=3.0, gt=0)
    pitch_deg: float = Field(default=0.5, gt=0)
    rotor_rpm: float = Field(default=0.3, gt=0)
    yaw_deg: float = Field(default=2.0, gt=0)
    availability_pct: float = Field(default=5.0, gt=0)
    temperature_c: float = Field(default=1.0, gt=0)


class OperationalConfig(_Strict):
    """Scoring of turbines with operational sensors only (``models.operational``).

    Each deviation is measured in units of the turbine's own normal spread (from its calibration):
    ``z = (window statistic - its normal center) / max(its normal spread, floor)``. The score rises
    linearly from 0 at ``z = 0`` to ``tiers.moderate`` at ``z_moderate`` and ``tiers.high`` at
    ``z_high``, then on towards ``max_score``. A deviation stays below "moderate" unless it persists:
    at least ``min_deviating_hours`` hours deviate clearly (beyond one hourly spread) the harmful way,
    they are at least ``min_persistence`` of all clearly deviating hours, and the first and last of the
    strongly deviating hours (beyond ``z_moderate`` hourly spreads) are at least
    ``min_deviation_span_hours`` apart (a few hours of curtailment without status codes look like a
    derating, but only for those hours).
    """

    window_hours: Literal[24, 48, 72, 168] = 48
    min_judged_hours: int = Field(default=12, ge=1, le=168)
    min_persistence: float = Field(default=0.7, ge=0, le=1)
    min_deviating_hours: int = Field(default=3, ge=0, le=168)
    min_deviation_span_hours: int = Field(default=10, ge=0, le=168)
    z_moderate: float = Field(default=3.0, gt=0)
    z_high: float = Field(default=6.0, gt=0)
    max_score: float = Field(default=79.0, ge=0, le=100)
    spread_floor: SpreadFloors = Field(default_factory=SpreadFloors)
    curtailment_note_share: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> OperationalConfig:
        if self.z_high <= self.z_moderate:
            raise ValueError("z_high must be above z_moderate")
        return self


class PolicyConfig(_Strict):
    """Validated content of ``policy.yaml``."""

    schema_version: Literal[1] = 1
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    tiers: TierConfig = Field(default_factory=TierConfig)
    data_quality: DataQualityConfig = Field(default_factory=DataQualityConfig)
    reasons: ReasonConfig = Field(default_factory=ReasonConfig)
    operational: OperationalConfig = Field(default_factory=OperationalConfig)

    @model_validator(mode="after")
    def _cap_below_critical(self) -> PolicyConfig:
        if self.data_quality.cap_score >= self.tiers.critical:
            raise ValueError("data_quality.cap_score must be below tiers.critical")
        if self.operational.max_score < self.tiers.high:
            raise ValueError("operational.max_score must reach tiers.high")
        return self


class PolicyConfigError(ValueError):
    """Invalid policy file; the message names the file and every offending key."""


def load_policy(path: str | Path | None = None) -> RiskPolicy:
    """Load and validate a policy YAML (default: the packaged ``models/config/policy.yaml``)."""
    p = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise PolicyConfigError(f"{p}: policy file not found") from exc
    except yaml.YAMLError as exc:
        raise PolicyConfigError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyConfigError(f"{p}: top level must be a mapping")
    try:
        cfg = PolicyConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "<root>"
            msg = "unknown key (not allowed)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{loc}: {msg}")
        raise PolicyConfigError(f"{p}: invalid policy configuration: " + "; ".join(problems)) from exc
    return RiskPolicy(cfg)


# --------------------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------------------

_PRETTY = {
    "gearbox_oil_temp_c": "gearbox oil temperature",
    "gearbox_bearing_temp_c": "gearbox bearing temperature",
    "generator_winding_temp_c": "generator winding temperature",
    "generator_bearing_temp_c": "generator bearing temperature",
    "main_bearing_temp_c": "main bearing temperature",
    "converter_temp_c": "converter temperature",
    "vibration_mm_s": "drive-train vibration",
    "pitch_hydraulic_pressure_bar": "pitch hydraulic pressure",
    "power_kw": "power",
    "ambient_temp_c": "ambient temperature",
    "wind_speed_ms": "wind speed",
}
_UNIT = {s: "°C" for s in TEMP_SIGNALS} | {
    "vibration_mm_s": "mm/s",
    "pitch_hydraulic_pressure_bar": "bar",
}


def pretty_signal(name: str) -> str:
    return _PRETTY.get(name, name.replace("_", " "))


def _fmt_range(rng: tuple[float, float] | None, unit: str) -> str:
    if rng is None:
        return ""
    return f" (normal {rng[0]:.1f} to {rng[1]:.1f} {unit})"


def _exceedance(value: float, rng: tuple[float, float]) -> float:
    """How far outside its normal range a value is, in range widths (0 when inside)."""
    lo, hi = rng
    width = max(hi - lo, 1e-6)
    if value > hi:
        return (value - hi) / width
    if value < lo:
        return (lo - value) / width
    return 0.0


_RESID, _SLOPE, _FIXED = 0, 1, 2
#: A 3-day trend fitted on less history than this is mostly the daily load cycle: not a reason.
SLOPE_MIN_HISTORY_HOURS = 54.0


def _trend_trusted(history_hours: float | None) -> bool:
    return (
        history_hours is None or not math.isfinite(history_hours) or history_hours >= SLOPE_MIN_HISTORY_HOURS
    )


_FIXED_REASONS: tuple[tuple[str, str, str], ...] = (
    ("vibration_mm_s__max_24h", "peak drive-train vibration in the last 24 h", "mm/s"),
    ("pitch_hydraulic_pressure_bar__mean_24h", "pitch hydraulic pressure (24 h mean)", "bar"),
    ("power_curve_resid_24h", "power vs. the power curve (24 h mean)", "kW"),
    ("alarms_24h", "alarm events in the last 24 h", ""),
)


def build_reasons(
    indicators: Mapping[str, float],
    normal_ranges: Mapping[str, Sequence[float]] | None,
    max_reasons: int,
    history_hours: float | None = None,
) -> list[dict[str, Any]]:
    """The indicators furthest outside their normal range, in plain words with value and range.

    Trends ("rising x/day over 3 days") are left out while the window holds less than
    :data:`SLOPE_MIN_HISTORY_HOURS` of history (``history_hours``; None = unknown, trusted).
    """
    all_ranges = normal_ranges or {}
    trends = _trend_trusted(history_hours)
    candidates: list[tuple[float, dict[str, Any]]] = []

    class _Ranges:
        """Converts only the ranges actually looked at (the bundle holds ~230 of them)."""

        @staticmethod
        def get(name: str) -> tuple[float, float] | None:
            r = all_ranges.get(name)
            return None if r is None else (float(r[0]), float(r[1]))

    ranges = _Ranges()

    def get(name: str) -> float | None:
        v = indicators.get(name)
        return None if v is None or not math.isfinite(v) else float(v)

    for sig in NBM_TARGETS:
        unit = _UNIT.get(sig, "")
        name = f"{sig}__resid_24h"
        val = get(name)
        rng = ranges.get(name)
        # only "hotter / shakier than expected" drives risk; a cool component is not a reason
        if val is not None and rng is not None and val > rng[1]:
            exc = _exceedance(val, rng)
            if exc > 0:
                text = f"{pretty_signal(sig)} {abs(val):.1f} {unit} above expected for this load"
                slope = get(f"{sig}__resid_slope_72h")
                srng = ranges.get(f"{sig}__resid_slope_72h")
                if trends and slope is not None and srng is not None and _exceedance(slope, srng) > 0:
                    trend = "rising" if slope > 0 else "falling"
                    text += f", {trend} {abs(slope):.1f} {unit}/day"
                candidates.append(
                    (
                        exc,
                        {"indicator": name, "text": text, "value": round(val, 2), "normal_range": list(rng)},
                    )
                )
        name = f"{sig}__slope_72h"
        val = get(name)
        rng = ranges.get(name)
        if trends and val is not None and rng is not None and _exceedance(val, rng) > 0:
            trend = "rising" if val > 0 else "falling"
            candidates.append(
                (
                    _exceedance(val, rng) * 0.8,
                    {
                        "indicator": name,
                        "text": f"{pretty_signal(sig)} {trend} {abs(val):.1f} {unit}/day over 3 days"
                        + _fmt_range(rng, f"{unit}/day"),
                        "value": round(val, 2),
                        "normal_range": list(rng),
                    },
                )
            )
    for name, words, unit in _FIXED_REASONS:
        val = get(name)
        rng = ranges.get(name)
        if val is not None and rng is not None and _exceedance(val, rng) > 0:
            candidates.append(
                (
                    _exceedance(val, rng),
                    {
                        "indicator": name,
                        "text": f"{words}: {val:.1f} {unit}".rstrip() + _fmt_range(rng, unit),
                        "value": round(val, 2),
                        "normal_range": list(rng),
                    },
                )
            )
    candidates.sort(key=lambda c: -c[0])
    return [c[1] for c in candidates[:max_reasons]]


@dataclass(frozen=True)
class _Candidate:
    kind: int
    name: str
    col: int
    rng: tuple[float, float]
    sig: str = ""
    unit: str = ""
    words: str = ""
    slope_col: int = -1  # resid reasons: column of the residual slope (-1: not a feature)
    slope_rng: tuple[float, float] | None = None


class ReasonTable:
    """:func:`build_reasons` for a whole feature matrix at once (same reasons, texts and order).

    Why: building every candidate reason in Python costs ~40 us per turbine, most of it for texts
    that are then thrown away. Here the exceedance of every candidate indicator is one numpy matrix,
    a stable argsort per row picks the top ``max_reasons``, and only those few get their text.
    Built once per (feature names, normal ranges): the candidate columns and ranges are resolved here.
    """

    def __init__(
        self, feature_names: Sequence[str], normal_ranges: Mapping[str, Sequence[float]] | None
    ) -> None:
        all_ranges = normal_ranges or {}
        col = {name: i for i, name in enumerate(feature_names)}

        def rng_of(name: str) -> tuple[float, float] | None:
            r = all_ranges.get(name)
            return None if r is None else (float(r[0]), float(r[1]))

        cands: list[_Candidate] = []

        def add(kind: int, name: str, **kw: Any) -> None:
            rng = rng_of(name)
            if name in col and rng is not None:  # otherwise build_reasons never proposes it
                cands.append(_Candidate(kind, name, col[name], rng, **kw))

        for sig in NBM_TARGETS:
            unit = _UNIT.get(sig, "")
            sname = f"{sig}__resid_slope_72h"
            add(
                _RESID,
                f"{sig}__resid_24h",
                sig=sig,
                unit=unit,
                slope_col=col.get(sname, -1),
                slope_rng=rng_of(sname),
            )
            add(_SLOPE, f"{sig}__slope_72h", sig=sig, unit=unit)
        for name, words, unit in _FIXED_REASONS:
            add(_FIXED, name, words=words, unit=unit)
        self.candidates = cands
        self._cols = np.array([c.col for c in cands], dtype=np.intp)
        self._lo = np.array([c.rng[0] for c in cands], dtype=np.float64)
        self._hi = np.array([c.rng[1] for c in cands], dtype=np.float64)
        d = self._hi - self._lo
        self._width = np.where(d < 1e-6, 1e-6, d)  # == max(hi - lo, 1e-6), NaN included
        self._weight = np.array([0.8 if c.kind == _SLOPE else 1.0 for c in cands])
        self._resid = np.array([c.kind == _RESID for c in cands], dtype=bool)
        self._slope = np.array([c.kind == _SLOPE for c in cands], dtype=bool)

    def exceedance(self, x: np.ndarray, trusted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(candidate values, ranking key): key = exceedance x weight, NaN where not a reason.

        ``trusted`` (one bool per row) drops the trend candidates of rows whose history is too short.
        """
        v = x[:, self._cols]
        lo, hi, width = self._lo, self._hi, self._width
        with np.errstate(invalid="ignore", over="ignore"):
            above = v > hi
            exc = np.where(above, (v - hi) / width, np.where(v < lo, (lo - v) / width, 0.0))
            ok = np.isfinite(v) & (exc > 0) & (above | ~self._resid)
            if trusted is not None:
                ok &= trusted[:, None] | ~self._slope
            return v, np.where(ok, exc * self._weight, np.nan)

    def top(
        self, x: np.ndarray, max_reasons: int, history_hours: Sequence[float | None] | None = None
    ) -> list[list[dict[str, Any]]]:
        """Reasons of every row of ``x`` (features in the table's column order), best first."""
        n = x.shape[0]
        if not self.candidates or n == 0:
            return [[] for _ in range(n)]
        trusted = (
            None
            if history_hours is None
            else np.array([_trend_trusted(h) for h in history_hours], dtype=bool)
        )
        v, key = self.exceedance(x, trusted)
        valid = ~np.isnan(key)
        k = min(max_reasons, key.shape[1])
        # stable sort of -key == build_reasons' stable sort by -exc (ties keep candidate order)
        order = np.argsort(np.where(valid, -key, np.inf), axis=1, kind="stable")[:, :k]
        n_top = np.minimum(valid.sum(axis=1), k).tolist()
        out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        cands = self.candidates
        for i in np.flatnonzero(valid.any(axis=1)).tolist():
            row = order[i].tolist()
            trends = trusted is None or bool(trusted[i])
            out[i] = [self._reason(cands[j], float(v[i, j]), x[i], trends) for j in row[: n_top[i]]]
        return out

    @staticmethod
    def _reason(c: _Candidate, val: float, xrow: np.ndarray, trends: bool = True) -> dict[str, Any]:
        rng = c.rng
        if c.kind == _RESID:
            unit = c.unit
            text = f"{pretty_signal(c.sig)} {abs(val):.1f} {unit} above expected for this load"
            if trends and c.slope_col >= 0 and c.slope_rng is not None:
                slope = float(xrow[c.slope_col])
                if math.isfinite(slope) and _exceedance(slope, c.slope_rng) > 0:
                    trend = "rising" if slope > 0 else "falling"
                    text += f", {trend} {abs(slope):.1f} {unit}/day"
        elif c.kind == _SLOPE:
            trend = "rising" if val > 0 else "falling"
            text = f"{pretty_signal(c.sig)} {trend} {abs(val):.1f} {c.unit}/day over 3 days" + _fmt_range(
                rng, f"{c.unit}/day"
            )
        else:
            text = f"{c.words}: {val:.1f} {c.unit}".rstrip() + _fmt_range(rng, c.unit)
        return {"indicator": c.name, "text": text, "value": round(val, 2), "normal_range": list(rng)}


# --------------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------------


@dataclass
class PolicyDecision:
    score: float
    tier: str
    reasons: list[dict[str, Any]] = field(default_factory=list)


class RiskPolicy:
    """Turns model outputs and data-quality indicators into a score, a tier and reasons."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()

    def score(self, probability: float, ttf_days: float | None = None) -> float:
        """0-100, non-decreasing in probability and in TTF urgency."""
        sc = self.config.score
        p = min(max(float(probability), 0.0), 1.0)
        urgency = 0.0
        if ttf_days is not None and math.isfinite(ttf_days):
            span = sc.ttf_horizon_days - sc.ttf_urgent_days
            urgency = min(max((sc.ttf_horizon_days - ttf_days) / span, 0.0), 1.0) * sc.ttf_weight
        return round(100.0 * max(p, urgency), 2)

    def tier_for_score(self, score: float) -> str:
        t = self.config.tiers
        if score >= t.critical:
            return "critical"
        if score >= t.high:
            return "high"
        if score >= t.moderate:
            return "moderate"
        return "low"

    def data_quality_issues(self, dq: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """(reasons, hard) - hard issues make the tier unknown; soft ones only cap it."""
        cfg = self.config.data_quality
        reasons: list[dict[str, Any]] = []
        hard = False

        def add(indicator: str, text: str, value: Any, rng: Any, is_hard: bool) -> None:
            nonlocal hard
            reasons.append({"indicator": indicator, "text": text, "value": value, "normal_range": rng})
            hard = hard or is_hard

        if not dq or not dq.get("events_in_window") or dq.get("last_event_time") is None:
            add("no_data", "no telemetry in the feature window", 0, None, True)
            return reasons, hard
        since = dq.get("seconds_since_last_event")
        if since is not None and since > cfg.max_staleness_minutes * 60:
            add(
                "stale_data",
                f"last reading {since / 60:.0f} min ago (max {cfg.max_staleness_minutes:.0f} min)",
                round(float(since), 1),
                [0, cfg.max_staleness_minutes * 60],
                True,
            )
        miss = dq.get("missing_share_24h")
        if miss is not None and miss > cfg.max_missing_share:
            add(
                "missing_values",
                f"{miss:.0%} of values missing in the last 24 h (max {cfg.max_missing_share:.0%})",
                miss,
                [0, cfg.max_missing_share],
                True,
            )
        cov = dq.get("coverage_hours_24h")
        if cov is not None and cov < cfg.min_coverage_hours_24h:
            add(
                "low_coverage",
                f"readings in only {cov} of the last 24 hours (min {cfg.min_coverage_hours_24h})",
                cov,
                [cfg.min_coverage_hours_24h, 24],
                True,
            )
        for sig in dq.get("silent_key_signals_24h") or []:
            if sig in cfg.key_signals and cfg.silent_key_signal != "ignore":
                add(
                    f"silent_sensor:{sig}",
                    f"{pretty_signal(sig)} sensor sent no value in the last 24 h",
                    0,
                    None,
                    cfg.silent_key_signal == "unknown",
                )
        for sig, hours in (dq.get("frozen_signals") or {}).items():
            if sig in cfg.key_signals:
                add(
                    f"frozen_sensor:{sig}",
                    f"{pretty_signal(sig)} sensor frozen (identical readings) for {hours:.1f} h",
                    hours,
                    None,
                    cfg.frozen_key_signal == "unknown",
                )
        return reasons, hard

    def model_reason(
        self,
        probability: float,
        ttf_days: float | None,
        ttf_low_days: float | None,
        ttf_high_days: float | None,
    ) -> dict[str, Any]:
        """The always-present reason quoting the model output (``probability`` must be finite)."""
        cfg = self.config
        ttf_txt = ""
        if ttf_days is not None and math.isfinite(ttf_days):
            if ttf_days >= cfg.score.ttf_horizon_days - 1e-9:
                ttf_txt = f"; no failure expected within {cfg.score.ttf_horizon_days:.0f} days"
            else:
                lo = "?" if ttf_low_days is None else f"{ttf_low_days:.1f}"
                hi = "?" if ttf_high_days is None else f"{ttf_high_days:.1f}"
                ttf_txt = f"; expected time to failure {ttf_days:.1f} days ({lo}-{hi})"
        return {
            "indicator": "failure_probability_7d",
            "text": f"model: {probability:.0%} probability of failure within 7 days{ttf_txt}",
            "value": round(float(probability), 4),
            "normal_range": [0.0, cfg.tiers.moderate / 100.0],
        }

    def scores(self, probability: np.ndarray, ttf_days: np.ndarray) -> list[float]:
        """:meth:`score` of many turbines at once (0.0 where the probability is not finite)."""
        sc = self.config.score
        p = np.asarray(probability, dtype=np.float64)
        t = np.asarray(ttf_days, dtype=np.float64)
        valid = np.isfinite(p)
        with np.errstate(invalid="ignore"):
            pc = np.minimum(np.maximum(p, 0.0), 1.0)
            span = sc.ttf_horizon_days - sc.ttf_urgent_days
            u = np.minimum(np.maximum((sc.ttf_horizon_days - t) / span, 0.0), 1.0) * sc.ttf_weight
            raw = 100.0 * np.maximum(pc, np.where(np.isfinite(t), u, 0.0))
        # Python's round (correctly rounded), not np.round: identical to score() to the last bit
        return [round(v, 2) if ok else 0.0 for v, ok in zip(raw.tolist(), valid.tolist(), strict=True)]

    def tiers_for_scores(self, scores: Sequence[float]) -> list[str]:
        t = self.config.tiers
        s = np.asarray(scores, dtype=np.float64)
        idx = (s >= t.moderate).astype(np.intp) + (s >= t.high) + (s >= t.critical)
        return [TIER_ORDER[i] for i in idx.tolist()]

    def assess_batch(
        self,
        *,
        probability: np.ndarray,
        ttf_days: np.ndarray,
        ttf_low_days: np.ndarray,
        ttf_high_days: np.ndarray,
        data_quality: Sequence[Mapping[str, Any]],
        features: np.ndarray,
        reasons: ReasonTable,
    ) -> list[PolicyDecision]:
        """:meth:`assess` of many turbines (same scores, tiers and reasons, in the same order).

        ``features`` is the feature matrix in the column order ``reasons`` was built for. Scores and
        tiers are computed over arrays, model reasons only for each row's top indicators; the
        data-quality rules stay per turbine (a handful of dict look-ups).
        """
        cfg = self.config
        n = len(data_quality)
        p = np.asarray(probability, dtype=np.float64)
        scores = self.scores(p, ttf_days)
        tiers = self.tiers_for_scores(scores)
        top = reasons.top(
            features,
            cfg.reasons.max_reasons,
            [(dq or {}).get("history_hours") for dq in data_quality],
        )
        valid = np.isfinite(p).tolist()
        pl, tl, lol, hil = (
            np.asarray(a, dtype=np.float64).tolist() for a in (p, ttf_days, ttf_low_days, ttf_high_days)
        )
        cap = cfg.data_quality.cap_score
        out: list[PolicyDecision] = []
        for i in range(n):
            dq_reasons, hard = self.data_quality_issues(data_quality[i] or {})
            model_reasons = top[i]
            score, tier = scores[i], tiers[i]
            if valid[i]:
                model_reasons.append(self.model_reason(pl[i], tl[i], lol[i], hil[i]))
            else:
                dq_reasons.append(
                    {
                        "indicator": "no_model_output",
                        "text": "model output unavailable",
                        "value": None,
                        "normal_range": None,
                    }
                )
                hard = True
            if dq_reasons:
                score = min(score, cap)
                capped = self.tier_for_score(score)
                tier = "unknown" if hard else min(tier, capped, key=TIER_ORDER.index)
            out.append(PolicyDecision(score=score, tier=tier, reasons=dq_reasons + model_reasons))
        return out

    def assess(
        self,
        *,
        probability: float | None,
        ttf_days: float | None = None,
        ttf_low_days: float | None = None,
        ttf_high_days: float | None = None,
        data_quality: Mapping[str, Any] | None = None,
        indicators: Mapping[str, float] | None = None,
        normal_ranges: Mapping[str, Sequence[float]] | None = None,
    ) -> PolicyDecision:
        """Score, tier and reasons for one turbine."""
        cfg = self.config
        dq_reasons, hard = self.data_quality_issues(data_quality or {})
        valid_p = probability is not None and math.isfinite(probability)
        score = self.score(probability, ttf_days) if valid_p else 0.0  # type: ignore[arg-type]
        tier = self.tier_for_score(score)
        model_reasons = build_reasons(
            indicators or {},
            normal_ranges,
            cfg.reasons.max_reasons,
            (data_quality or {}).get("history_hours"),
        )
        if valid_p:
            model_reasons.append(self.model_reason(probability, ttf_days, ttf_low_days, ttf_high_days))  # type: ignore[arg-type]
        if not valid_p:
            dq_reasons.append(
                {
                    "indicator": "no_model_output",
                    "text": "model output unavailable",
                    "value": None,
                    "normal_range": None,
                }
            )
            hard = True
        if dq_reasons:
            score = min(score, cfg.data_quality.cap_score)
            capped = self.tier_for_score(score)
            tier = "unknown" if hard else min(tier, capped, key=TIER_ORDER.index)
        return PolicyDecision(score=score, tier=tier, reasons=dq_reasons + model_reasons)
