"""Risk policy: model outputs + data quality -> 0-100 score, tier and plain-language reasons.

Why a separate, configurable layer: operators tune thresholds without retraining, and data-quality
rules (stale, missing, frozen sensors) must override the model - a frozen gearbox thermometer stuck at
a hot value must never page someone as "critical".
"""

from __future__ import annotations

import math
import numbers
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
    pretty = _PRETTY.get(name)
    return pretty if pretty is not None else name.replace("_", " ")


def _fmt_range(rng: tuple[float, float] | None, unit: str) -> str:
    if rng is None:
        return ""
    return f" (normal {rng[0]:.1f} to {rng[1]:.1f} {unit})"


def _exceed(
    v: np.ndarray, lo: np.ndarray, hi: np.ndarray, width: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(exceedance, above): how far outside ``[lo, hi]`` each value is, in range widths (0 inside; NaN
    where a bound is NaN), and whether it is above the range. ``width`` = ``max(hi - lo, 1e-6)``."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        above = v > hi
        return np.where(above, (v - hi) / width, np.where(v < lo, (lo - v) / width, 0.0)), above


def _width(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        d = hi - lo
    return np.where(d < 1e-6, 1e-6, d)  # == max(hi - lo, 1e-6), NaN kept


_RESID, _SLOPE, _FIXED = 0, 1, 2
#: A 3-day trend fitted on less history than this is mostly the daily load cycle: not a reason.
SLOPE_MIN_HISTORY_HOURS = 54.0


def trends_trusted(history_hours: np.ndarray) -> np.ndarray:
    """Per row: may trends be reasons? No while the window holds less than
    :data:`SLOPE_MIN_HISTORY_HOURS` of history; an unknown (NaN) or infinite history is trusted."""
    h = np.asarray(history_hours, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(h) | (h >= SLOPE_MIN_HISTORY_HOURS)


_FIXED_REASONS: tuple[tuple[str, str, str], ...] = (
    ("vibration_mm_s__max_24h", "peak drive-train vibration in the last 24 h", "mm/s"),
    ("pitch_hydraulic_pressure_bar__mean_24h", "pitch hydraulic pressure (24 h mean)", "bar"),
    ("power_curve_resid_24h", "power vs. the power curve (24 h mean)", "kW"),
    ("alarms_24h", "alarm events in the last 24 h", ""),
)


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
    """The model reasons of a whole feature matrix: the indicators furthest outside their normal range,
    in plain words with value and range, best first.

    Candidates, in this order (ties keep it): for each NBM target its 24 h residual (only "hotter /
    shakier than expected": above the range), annotated with the residual's 3-day trend when that is
    outside its own range, then its 3-day slope (ranked at 0.8 of its exceedance); then the fixed
    indicators of ``_FIXED_REASONS``. An indicator is a candidate only when it is a feature column and
    has a normal range. Trends are left out of rows whose window holds less than
    :data:`SLOPE_MIN_HISTORY_HOURS` of history.

    How: the exceedance of every candidate is one numpy matrix, a stable argsort per row picks the top
    ``max_reasons``, and only those few get their text. Built once per (feature names, normal ranges).
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
            if name in col and rng is not None:
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
        self._texts = [self._text_parts(c) for c in cands]
        self._cols = np.array([c.col for c in cands], dtype=np.intp)
        self._lo = np.array([c.rng[0] for c in cands], dtype=np.float64)
        self._hi = np.array([c.rng[1] for c in cands], dtype=np.float64)
        self._width = _width(self._lo, self._hi)
        self._weight = np.array([0.8 if c.kind == _SLOPE else 1.0 for c in cands])
        self._resid = np.array([c.kind == _RESID for c in cands], dtype=bool)
        self._slope = np.array([c.kind == _SLOPE for c in cands], dtype=bool)
        # residual reasons: their trend annotation (NaN bounds where there is none: never outside)
        annotated = [c.kind == _RESID and c.slope_col >= 0 and c.slope_rng is not None for c in cands]
        self._trend = np.array(annotated, dtype=bool)
        self._trend_cols = np.array([max(c.slope_col, 0) for c in cands], dtype=np.intp)
        self._trend_lo = np.array(
            [c.slope_rng[0] if c.slope_rng else np.nan for c in cands], dtype=np.float64
        )
        self._trend_hi = np.array(
            [c.slope_rng[1] if c.slope_rng else np.nan for c in cands], dtype=np.float64
        )
        self._trend_width = _width(self._trend_lo, self._trend_hi)

    def exceedance(self, x: np.ndarray, trusted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(candidate values, ranking key): key = exceedance x weight, NaN where not a reason.

        ``trusted`` (one bool per row) drops the trend candidates of rows whose history is too short.
        """
        v = x[:, self._cols]
        exc, above = _exceed(v, self._lo, self._hi, self._width)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(v) & (exc > 0) & (above | ~self._resid)
            if trusted is not None:
                ok &= trusted[:, None] | ~self._slope
            return v, np.where(ok, exc * self._weight, np.nan)

    def top(
        self,
        x: np.ndarray,
        max_reasons: int,
        history_hours: np.ndarray | Sequence[float | None] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Reasons of every row of ``x`` (features in the table's column order), best first.

        ``history_hours``: per row, the hours of history of its window (NaN / None: unknown, trusted).
        """
        n = x.shape[0]
        if not self.candidates or n == 0:
            return [[] for _ in range(n)]
        trusted = None if history_hours is None else trends_trusted(_floats(history_hours))
        v, key = self.exceedance(x, trusted)
        valid = ~np.isnan(key)
        k = min(max_reasons, key.shape[1])
        order = np.argsort(np.where(valid, -key, np.inf), axis=1, kind="stable")[:, :k]
        n_top = np.minimum(valid.sum(axis=1), k)
        s = x[:, self._trend_cols]
        exc_s, _ = _exceed(s, self._trend_lo, self._trend_hi, self._trend_width)
        with np.errstate(invalid="ignore"):
            trend = self._trend & np.isfinite(s) & (exc_s > 0)
        if trusted is not None:
            trend &= trusted[:, None]
        out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        cands = self.candidates
        # the chosen (row, candidate) pairs in rank order, gathered at once: only they become Python objects
        rows, rank = np.nonzero(np.arange(k) < n_top[:, None])
        chosen = order[rows, rank]
        picked = zip(
            rows.tolist(),
            chosen.tolist(),
            v[rows, chosen].tolist(),
            s[rows, chosen].tolist(),
            trend[rows, chosen].tolist(),
            strict=True,
        )
        texts = self._texts
        for i, j, val, slope, annotate in picked:
            kind, head, tail, rng = texts[j]
            if kind == _RESID:
                text = f"{head}{abs(val):.1f}{tail}"
                if annotate:
                    way = "rising" if slope > 0 else "falling"
                    text = f"{text}, {way} {abs(slope):.1f} {cands[j].unit}/day"
            elif kind == _SLOPE:
                way = "rising" if val > 0 else "falling"
                text = f"{head}{way} {abs(val):.1f}{tail}"
            else:
                text = f"{head}{val:.1f}{tail}"
            out[i].append(
                {"indicator": cands[j].name, "text": text, "value": round(val, 2), "normal_range": list(rng)}
            )
        return out

    @staticmethod
    def _text_parts(c: _Candidate) -> tuple[int, str, str, tuple[float, float]]:
        """(kind, text before the value, text after it, range) of a candidate's reason: the texts that
        do not depend on the row, made once per table (:meth:`top` adds the value and the trend)."""
        rng = c.rng
        if c.kind == _RESID:
            return _RESID, f"{pretty_signal(c.sig)} ", f" {c.unit} above expected for this load", rng
        if c.kind == _SLOPE:
            range_text = _fmt_range(rng, f"{c.unit}/day")
            return _SLOPE, f"{pretty_signal(c.sig)} ", f" {c.unit}/day over 3 days{range_text}", rng
        # f"{words}: {value} {unit}".rstrip(): a formatted finite value never ends with a space
        return _FIXED, f"{c.words}: ", f" {c.unit}".rstrip() + _fmt_range(rng, c.unit), rng


# --------------------------------------------------------------------------------------------------
# Data-quality columns (dicts from the windows -> arrays, once per batch)
# --------------------------------------------------------------------------------------------------

_FAST_NUMBERS = frozenset({int, float, bool, type(None)})


def _floats(values: Any) -> np.ndarray:
    """float64 array of ``values`` (None and anything that is not a number: NaN)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    return _numbers(list(values))[0]


def _numbers(values: list[Any]) -> tuple[np.ndarray, list[int]]:
    """(float64 array: None -> NaN, indexes of the values that are present but not real numbers)."""
    if set(map(type, values)) <= _FAST_NUMBERS:
        try:
            return np.array(values, dtype=np.float64), []
        except OverflowError:  # an int beyond float: the slow path gives it +-inf
            pass
    out = np.full(len(values), np.nan)
    bad: list[int] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        if not isinstance(v, numbers.Real):
            bad.append(i)
            continue
        try:
            out[i] = float(v)
        except OverflowError:  # an int beyond the float range
            out[i] = -math.inf if v < 0 else math.inf
        except (TypeError, ValueError):
            bad.append(i)
    return out, bad


def _truthy_rows(values: list[Any]) -> list[int]:
    """Indexes of the truthy values (a value whose truth cannot be told counts as truthy)."""
    try:
        return [i for i, v in enumerate(values) if v]
    except Exception:  # e.g. a numpy array; the field check then names it
        out = []
        for i, v in enumerate(values):
            try:
                if v:
                    out.append(i)
            except Exception:
                out.append(i)
        return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _r(indicator: str, text: str, value: Any, normal_range: Any) -> dict[str, Any]:
    return {"indicator": indicator, "text": text, "value": value, "normal_range": normal_range}


def _invalid(field_name: str, value: Any) -> dict[str, Any]:
    return {
        "indicator": f"invalid_data_quality:{field_name}",
        "text": f"data-quality field {field_name} is not usable: {_shown(value)}",
        "value": None,
        "normal_range": None,
    }


@dataclass
class DataQualityBatch:
    """The data-quality verdict of a batch: per row its reasons (rule order) and whether any is hard."""

    issues: dict[int, list[dict[str, Any]]]  # row -> its reasons, rows with an issue only
    hard: np.ndarray  # bool per row: hard issues make the tier unknown; soft ones only cap the score
    history_hours: np.ndarray  # float per row (NaN: unknown), for the trend rule of the model reasons

    @property
    def reasons(self) -> list[list[dict[str, Any]]]:
        """The reasons of every row (a new list each)."""
        return [list(self.issues.get(i, ())) for i in range(len(self.hard))]


_DQ_NUMBERS = ("seconds_since_last_event", "missing_share_24h", "coverage_hours_24h")
_NO_DATA = {
    "indicator": "no_data",
    "text": "no telemetry in the feature window",
    "value": 0,
    "normal_range": None,
}
_NO_MODEL = {
    "indicator": "no_model_output",
    "text": "model output unavailable",
    "value": None,
    "normal_range": None,
}


# --------------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------------


@dataclass
class PolicyDecision:
    score: float
    tier: str
    reasons: list[dict[str, Any]] = field(default_factory=list)


class RiskPolicy:
    """Turns model outputs and data-quality indicators into a score, a tier and reasons, over arrays
    (a single turbine is a batch of one)."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()

    def scores(self, probability: np.ndarray, ttf_days: np.ndarray) -> list[float]:
        """0-100 per turbine, non-decreasing in probability and in TTF urgency (0.0 where the
        probability is not finite; a non-finite TTF adds no urgency)."""
        sc = self.config.score
        p = np.asarray(probability, dtype=np.float64)
        t = np.asarray(ttf_days, dtype=np.float64)
        valid = np.isfinite(p)
        with np.errstate(invalid="ignore"):
            pc = np.minimum(np.maximum(p, 0.0), 1.0)
            span = sc.ttf_horizon_days - sc.ttf_urgent_days
            u = np.minimum(np.maximum((sc.ttf_horizon_days - t) / span, 0.0), 1.0) * sc.ttf_weight
            raw = 100.0 * np.maximum(pc, np.where(np.isfinite(t), u, 0.0))
        # Python's round (correctly rounded), not np.round: the scores stored so far, to the last bit
        return [round(v, 2) if ok else 0.0 for v, ok in zip(raw.tolist(), valid.tolist(), strict=True)]

    def tiers_for_scores(self, scores: Sequence[float] | np.ndarray) -> list[str]:
        return [TIER_ORDER[i] for i in self._tier_index(np.asarray(scores, dtype=np.float64)).tolist()]

    def _tier_index(self, s: np.ndarray) -> np.ndarray:
        t = self.config.tiers
        with np.errstate(invalid="ignore"):
            return (s >= t.moderate).astype(np.intp) + (s >= t.high) + (s >= t.critical)

    def apply_data_quality(
        self,
        scores: Sequence[float] | np.ndarray,
        flagged: Sequence[bool] | np.ndarray,
        hard: Sequence[bool] | np.ndarray,
    ) -> tuple[list[float], list[str]]:
        """(scores, tiers) once data quality is judged: a row with any data-quality reason (``flagged``)
        has its score capped at ``cap_score`` and its tier lowered to match; with a hard one its tier is
        ``unknown``."""
        s = np.asarray(scores, dtype=np.float64)
        f = np.asarray(flagged, dtype=bool)
        h = np.asarray(hard, dtype=bool) & f
        with np.errstate(invalid="ignore"):
            capped = np.where(f, np.minimum(s, self.config.data_quality.cap_score), s)
        idx = np.minimum(self._tier_index(s), self._tier_index(capped))
        tiers = ["unknown" if u else TIER_ORDER[i] for i, u in zip(idx.tolist(), h.tolist(), strict=True)]
        return capped.tolist(), tiers

    def data_quality_batch(self, data_quality: Sequence[Any]) -> DataQualityBatch:
        """The data-quality rules over a batch of data-quality dicts (``FeatureWindow.data_quality``).

        Each rule is evaluated over arrays built once from the dicts; texts are made only for the rows
        with an issue. Rules, in reason order: no telemetry in the window (alone, hard); stale; too many
        missing values; too few hours with readings (hard); a silent key sensor and a frozen key sensor
        (hard or a cap, per ``data_quality.silent_key_signal`` / ``frozen_key_signal``). A field of the
        wrong type (or a value that is not a mapping) is a hard ``invalid_data_quality`` reason naming it.
        """
        cfg = self.config.data_quality
        n = len(data_quality)
        empty: Mapping[str, Any] = {}
        maps = [d if type(d) is dict or isinstance(d, Mapping) else empty for d in data_quality]
        not_map = [
            i for i, (d, m) in enumerate(zip(data_quality, maps, strict=True)) if m is empty and d is not None
        ]
        history, bad_history = _numbers([m.get("history_hours") for m in maps])
        issues: dict[int, list[dict[str, Any]]] = {}
        hard = np.zeros(n, dtype=bool)
        for i in not_map:
            got = type(data_quality[i]).__name__
            text = f"data-quality indicators are not a mapping (got {got})"
            issues[i] = [_r("invalid_data_quality", text, None, None)]
            hard[i] = True
        if n == 0:
            return DataQualityBatch(issues, hard, history)
        has_events = np.zeros(n, dtype=bool)
        has_events[_truthy_rows([m.get("events_in_window") for m in maps])] = True
        no_data = ~has_events | np.array([m.get("last_event_time") is None for m in maps], dtype=bool)
        no_data[not_map] = False
        raw = {f: [m.get(f) for m in maps] for f in _DQ_NUMBERS}
        cols = {f: _numbers(raw[f]) for f in _DQ_NUMBERS}
        since, miss, cov = (cols[f][0] for f in _DQ_NUMBERS)
        with np.errstate(invalid="ignore"):
            stale = since > cfg.max_staleness_minutes * 60
            missing = miss > cfg.max_missing_share
            low_cov = cov < cfg.min_coverage_hours_24h
        silent = [m.get("silent_key_signals_24h") for m in maps]
        frozen = [m.get("frozen_signals") for m in maps]
        look = stale | missing | low_cov
        look[_truthy_rows(silent)] = True
        look[_truthy_rows(frozen)] = True
        bad: dict[int, list[str]] = {}
        for f, rows in [*((f, cols[f][1]) for f in _DQ_NUMBERS), ("history_hours", bad_history)]:
            for i in rows:
                bad.setdefault(i, []).append(f)
                look[i] = True
        for i in np.flatnonzero(no_data).tolist():
            issues[i] = [dict(_NO_DATA)]
            hard[i] = True
        for i in np.flatnonzero(look & ~no_data).tolist():
            out: list[dict[str, Any]] = []
            if stale[i]:
                limit = cfg.max_staleness_minutes
                text = f"last reading {since[i] / 60:.0f} min ago (max {limit:.0f} min)"
                out.append(_r("stale_data", text, round(float(since[i]), 1), [0, limit * 60]))
            if missing[i]:
                v, limit = raw["missing_share_24h"][i], cfg.max_missing_share
                text = f"{v:.0%} of values missing in the last 24 h (max {limit:.0%})"
                out.append(_r("missing_values", text, v, [0, limit]))
            if low_cov[i]:
                v, need = raw["coverage_hours_24h"][i], cfg.min_coverage_hours_24h
                text = f"readings in only {v} of the last 24 hours (min {need})"
                out.append(_r("low_coverage", text, v, [need, 24]))
            is_hard = bool(out)
            invalid = [_invalid(f, maps[i].get(f)) for f in bad.get(i, ())]
            found, sensor_hard = self._sensor_issues(silent[i], frozen[i], invalid)
            out.extend(found)
            out.extend(invalid)
            if out:
                issues[i] = out
            hard[i] = is_hard or sensor_hard or bool(invalid)
        return DataQualityBatch(issues, hard, history)

    def _sensor_issues(
        self, silent: Any, frozen: Any, invalid: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], bool]:
        """(reasons, hard) of one row's silent and frozen key sensors; a field of the wrong type is
        added to ``invalid``."""
        cfg = self.config.data_quality
        keys = cfg.key_signals
        out: list[dict[str, Any]] = []
        hard = False
        if silent and cfg.silent_key_signal != "ignore":
            if isinstance(silent, (list, tuple, set, frozenset)):
                for sig in silent:
                    if isinstance(sig, str) and sig in keys:
                        text = f"{pretty_signal(sig)} sensor sent no value in the last 24 h"
                        out.append(_r(f"silent_sensor:{sig}", text, 0, None))
                        hard = hard or cfg.silent_key_signal == "unknown"
            else:
                invalid.append(_invalid("silent_key_signals_24h", silent))
        if frozen:
            if isinstance(frozen, Mapping):
                for sig, hours in frozen.items():
                    if not (isinstance(sig, str) and sig in keys):
                        continue
                    if not isinstance(hours, numbers.Real):
                        invalid.append(_invalid(f"frozen_signals.{sig}", hours))
                        continue
                    text = f"{pretty_signal(sig)} sensor frozen (identical readings) for {hours:.1f} h"
                    out.append(_r(f"frozen_sensor:{sig}", text, hours, None))
                    hard = hard or cfg.frozen_key_signal == "unknown"
            else:
                invalid.append(_invalid("frozen_signals", frozen))
        return out, hard

    def model_reasons(
        self,
        probability: np.ndarray,
        ttf_days: np.ndarray,
        ttf_low_days: np.ndarray,
        ttf_high_days: np.ndarray,
    ) -> list[dict[str, Any] | None]:
        """Per row, the reason quoting the model output (None where the probability is not finite):
        the probability, and the expected time to failure with its bounds unless beyond the horizon."""
        horizon = self.config.score.ttf_horizon_days
        near = horizon - 1e-9
        beyond = f"; no failure expected within {horizon:.0f} days"
        upper = self.config.tiers.moderate / 100.0
        p = np.asarray(probability, dtype=np.float64)
        t = np.asarray(ttf_days, dtype=np.float64)
        ok = np.isfinite(p).tolist()
        has_ttf = np.isfinite(t).tolist()
        out: list[dict[str, Any] | None] = []
        for pi, ti, lo, hi, ok_i, has_t in zip(
            p.tolist(),
            t.tolist(),
            np.asarray(ttf_low_days, dtype=np.float64).tolist(),
            np.asarray(ttf_high_days, dtype=np.float64).tolist(),
            ok,
            has_ttf,
            strict=True,
        ):
            if not ok_i:
                out.append(None)
                continue
            if not has_t:
                ttf_txt = ""
            elif ti >= near:
                ttf_txt = beyond
            else:
                ttf_txt = f"; expected time to failure {ti:.1f} days ({lo:.1f}-{hi:.1f})"
            out.append(
                {
                    "indicator": "failure_probability_7d",
                    "text": f"model: {pi:.0%} probability of failure within 7 days{ttf_txt}",
                    "value": round(pi, 4),
                    "normal_range": [0.0, upper],
                }
            )
        return out

    def assess_batch(
        self,
        *,
        probability: np.ndarray,
        ttf_days: np.ndarray,
        ttf_low_days: np.ndarray,
        ttf_high_days: np.ndarray,
        data_quality: Sequence[Any],
        features: np.ndarray,
        reasons: ReasonTable,
    ) -> list[PolicyDecision]:
        """Score, tier and reasons of every turbine of a batch (one per ``data_quality`` entry).

        ``features`` is the feature matrix in the column order ``reasons`` was built for; NaN in the
        model outputs means "no value" (a non-finite probability: tier unknown, "model output
        unavailable"). Reasons: data-quality reasons first, then the model reasons, then the one
        quoting the model output.
        """
        cfg = self.config
        n = len(data_quality)
        if n == 0:
            return []
        p = np.asarray(probability, dtype=np.float64)
        valid = np.isfinite(p)
        dq = self.data_quality_batch(data_quality)
        top = reasons.top(np.asarray(features, dtype=np.float64), cfg.reasons.max_reasons, dq.history_hours)
        flagged = ~valid
        flagged[list(dq.issues)] = True
        scores, tiers = self.apply_data_quality(self.scores(p, ttf_days), flagged, dq.hard | ~valid)
        model = self.model_reasons(p, ttf_days, ttf_low_days, ttf_high_days)
        out: list[PolicyDecision] = []
        issues = dq.issues
        for i, (found, quote, score, tier) in enumerate(zip(top, model, scores, tiers, strict=True)):
            if quote is not None:
                found.append(quote)
            else:
                found.insert(0, dict(_NO_MODEL))
            if i in issues:
                found[:0] = issues[i]
            out.append(PolicyDecision(score=score, tier=tier, reasons=found))
        return out
