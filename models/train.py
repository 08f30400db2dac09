"""Training: simulator history (or a Parquet file with the telemetry contract) -> registry version.

Why this shape:
- labels come from ground-truth failures: ``y = failure within 7 days`` (classifier) and time to the
  next failure censored at 30 days (quantile regressors at 0.1/0.5/0.9 give the interval);
- samples taken while the turbine is down for fault/repair are excluded (nothing to predict there),
  as are samples whose label the data cannot know yet (too close to the end of the history);
- the split is by turbine AND time: models are fitted on "train" turbines before a cut-off, and
  calibrated/validated on the other turbines after the cut-off plus a gap, so neither the same
  machine nor the same weather leaks from fitting into validation;
- numeric libraries are limited to ``threads`` (threadpoolctl) so training never oversubscribes the
  two cores it shares with Kafka and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from models.features import (
    COMPONENT_SIGNALS,
    FEATURE_NAMES,
    TEMP_SIGNALS,
    NormalModel,
    compute_features,
    fit_normal_model,
    hourly_means,
)
from models.ttf import COND_LEVELS, TTFQuantile, TwoStageTTF

Progress = Callable[[str, float], None]  # (step description, fraction done 0..1)


@dataclass
class TrainSettings:
    """Everything that determines a training run (stored in the version's metadata)."""

    n_turbines: int = 20
    days: float = 730.0
    seed: int = 7
    holdout_turbines: int = 20
    holdout_days: float = 365.0
    holdout_seed: int = 1007
    sample_every_hours: float = 2.0
    label_days: float = 7.0
    ttf_horizon_days: float = 30.0
    calib_turbine_share: float = 0.25
    time_cut: float = 0.7
    gap_days: float = 37.0  # label horizon + a week of window: no overlap across the time cut
    # Strongly regularised: ~130 failures is little data, and trees otherwise memorise turbines.
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 200
    max_features: float = 0.5
    # TTF: "two_stage" (gate P(TTF <= horizon) x conditional log-TTF quantiles, models/ttf.py) or
    # "censored" (quantile regressors on TTF censored at the horizon, the earlier model).
    ttf_model: str = "two_stage"
    # Gate probability from which a turbine gets the conditional TTF (None: mixture quantiles only).
    ttf_gate_threshold: float | None = 0.5
    threads: int = 2
    random_state: int = 0
    preset: str = "training"


@dataclass
class History:
    """Telemetry plus ground truth for one fleet (training or hold-out)."""

    frame: pd.DataFrame
    failures: pd.DataFrame
    sensor_faults: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = ""

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.frame["event_time"].max())

    def fingerprint(self) -> str:
        """Stable hash of the data's shape and contents summary (recorded in metadata)."""
        h = hashlib.sha256()
        h.update(str(self.source).encode())
        h.update(str(len(self.frame)).encode())
        h.update(str(self.frame["event_time"].min()).encode() + str(self.end).encode())
        sample = self.frame.iloc[:: max(1, len(self.frame) // 5000)]
        h.update(np.asarray(pd.util.hash_pandas_object(sample, index=False)).tobytes())
        h.update(np.asarray(pd.util.hash_pandas_object(self.failures.astype(str), index=False)).tobytes())
        return h.hexdigest()


def simulate(n_turbines: int, days: float, seed: int, preset: str = "training") -> History:
    """Generate a fleet history with the simulator (imported lazily: the scorer never needs it)."""
    from simulator.config import FleetConfig
    from simulator.fleet import Fleet

    fleet = Fleet(FleetConfig(preset=preset, n_turbines=n_turbines, duration_days=days, seed=seed))  # type: ignore[arg-type]
    truth = fleet.ground_truth()
    return History(
        frame=fleet.to_frame(),
        failures=truth.failures,
        sensor_faults=truth.sensor_faults,
        source=f"simulator preset={preset} turbines={n_turbines} days={days} seed={seed}",
    )


def load_history(path: str | Path, failures: str | Path | None = None) -> History:
    """A Parquet export with the telemetry contract + its failures table.

    ``failures`` defaults to ``<stem>.failures.parquet`` or ``<stem>_failures.parquet`` next to the file.
    """
    p = Path(path)
    frame = pd.read_parquet(p)
    candidates = (
        [Path(failures)]
        if failures
        else [
            p.with_name(p.stem + ".failures.parquet"),
            p.with_name(p.stem + "_failures.parquet"),
            p.with_name("failures.parquet"),
        ]
    )
    for c in candidates:
        if c.is_file():
            fails = pd.read_parquet(c)
            break
    else:
        raise FileNotFoundError(f"{p}: no failures table found (tried {', '.join(map(str, candidates))})")
    faults_path = p.with_name(p.stem + ".sensor_faults.parquet")
    faults = pd.read_parquet(faults_path) if faults_path.is_file() else pd.DataFrame()
    return History(frame=frame, failures=fails, sensor_faults=faults, source=str(p))


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------


def make_labels(
    samples: pd.DataFrame,
    failures: pd.DataFrame,
    data_end: pd.Timestamp,
    label_days: float = 7.0,
    horizon_days: float = 30.0,
) -> pd.DataFrame:
    """Label each (turbine_id, time) sample.

    Columns added: ``ttf_days`` (to the next failure strictly after ``time``; inf if none known),
    ``y`` (failure within ``label_days``), ``ttf_target`` (TTF censored at ``horizon_days``),
    ``in_downtime`` (between a failure and its repair), ``degrading`` (between onset and failure),
    ``known_y`` / ``known_ttf`` (the history is long enough to know the label).
    """
    out = samples[["turbine_id", "time"]].copy()
    t = pd.to_datetime(out["time"], utc=True).to_numpy(dtype="datetime64[us]").astype(np.int64) / 1e6
    end = pd.Timestamp(data_end).tz_convert("UTC").tz_localize(None).to_datetime64().astype("datetime64[us]")
    end_s = end.astype(np.int64) / 1e6
    ttf = np.full(len(out), np.inf)
    down = np.zeros(len(out), dtype=bool)
    degrading = np.zeros(len(out), dtype=bool)

    def secs(col: pd.Series) -> np.ndarray:
        return (
            pd.to_datetime(col, utc=True)
            .dt.tz_localize(None)
            .to_numpy(dtype="datetime64[us]")
            .astype(np.int64)
            / 1e6
        )

    tids = out["turbine_id"].to_numpy()
    for tid, fails in failures.groupby("turbine_id"):
        rows = np.nonzero(tids == tid)[0]
        if len(rows) == 0:
            continue
        fails = fails.sort_values("failure_time")
        ft, rt, ot = secs(fails["failure_time"]), secs(fails["repair_time"]), secs(fails["onset_time"])
        ts = t[rows]
        nxt = np.searchsorted(ft, ts, side="right")  # first failure strictly after ts
        has = nxt < len(ft)
        ttf_rows = np.full(len(rows), np.inf)
        ttf_rows[has] = (ft[nxt[has]] - ts[has]) / 86400.0
        ttf[rows] = ttf_rows
        prev = nxt - 1
        hp = prev >= 0
        down_rows = np.zeros(len(rows), dtype=bool)
        down_rows[hp] = ts[hp] < rt[prev[hp]]
        down[rows] = down_rows
        deg = np.zeros(len(rows), dtype=bool)
        deg[has] = ts[has] >= ot[nxt[has]]
        degrading[rows] = deg
    remaining = (end_s - t) / 86400.0
    out["ttf_days"] = ttf
    out["y"] = (ttf <= label_days).astype(int)
    out["ttf_target"] = np.minimum(ttf, horizon_days)
    out["in_downtime"] = down
    out["degrading"] = degrading
    out["known_y"] = (ttf <= label_days) | (remaining >= label_days)
    out["known_ttf"] = (ttf <= horizon_days) | (remaining >= horizon_days)
    return out


# --------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------


def healthy_hours(
    history: History, turbines: set[str] | None = None, before: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Hourly means of hours with a healthy, running, correctly measured turbine (normal-model data)."""
    frame = history.frame
    if turbines is not None:
        frame = frame[frame["turbine_id"].isin(turbines)]
    if before is not None:
        frame = frame[frame["event_time"] < before]
    hourly = hourly_means(frame)
    keep = hourly["unusual"].to_numpy() == 0
    hour = hourly["hour"]
    tids = hourly["turbine_id"].to_numpy()
    for spans, a, b in (
        (history.failures, "onset_time", "repair_time"),
        (history.sensor_faults, "start", "end"),
    ):
        if spans is None or spans.empty:
            continue
        for row in spans.itertuples(index=False):
            lo = pd.Timestamp(getattr(row, a)).floor("h")
            hi = pd.Timestamp(getattr(row, b)).ceil("h")
            keep &= ~((tids == row.turbine_id) & (hour >= lo).to_numpy() & (hour <= hi).to_numpy())
    return hourly[keep & (hourly["power_kw"].notna().to_numpy())]


def _features_one(group: pd.DataFrame, normal_model: NormalModel | None, every_hours: float) -> pd.DataFrame:
    return compute_features(group, normal_model, every_hours=every_hours)


def build_dataset(
    history: History,
    normal_model: NormalModel | None,
    every_hours: float,
    label_days: float,
    horizon_days: float,
    n_jobs: int = 2,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Features (replayed through ``FeatureWindow``) + labels, without down-time samples."""
    groups = [g for _, g in history.frame.groupby("turbine_id", sort=True)]
    parts: list[pd.DataFrame] = []
    step = max(1, n_jobs * 2)
    with Parallel(n_jobs=n_jobs, backend="loky") as par:
        for i in range(0, len(groups), step):
            batch = groups[i : i + step]
            parts.extend(par(delayed(_features_one)(g, normal_model, every_hours) for g in batch))
            if progress:
                progress("features", min(1.0, (i + len(batch)) / len(groups)))
    feats = pd.concat(parts, ignore_index=True)
    labels = make_labels(feats, history.failures, history.end, label_days, horizon_days)
    data = pd.concat([feats, labels.drop(columns=["turbine_id", "time"])], axis=1)
    return data[~data["in_downtime"]].reset_index(drop=True)


#: Feature families the models use. Absolute levels (temperature means, maxima) mostly encode the
#: turbine and the weather, so trees memorise them; deviations from the turbine's own baseline,
#: trends and data quality generalise across turbines (hold-out PR-AUC +0.05 in development).
MODEL_FEATURE_MARKERS: tuple[str, ...] = (
    "resid_dev",
    "resid_slope",
    "_beta_",
    "resid_full_load",
    "__slope_",
    "spread",
    "peak_over",
    "__dev_",
    "alarms",
    "down_share",
    "power_curve",
    "missing",
    "spikes",
    "frozen",
    "baseline_hours",
    "coverage",
)


def select_model_features() -> list[str]:
    """The subset of ``FEATURE_NAMES`` fed to the models (stored as ``model_features`` in metadata)."""
    return [n for n in FEATURE_NAMES if any(m in n for m in MODEL_FEATURE_MARKERS)]


def choose_split(
    turbine_ids: list[str], t0: pd.Timestamp, t1: pd.Timestamp, settings: TrainSettings
) -> tuple[set[str], pd.Timestamp]:
    """Calibration turbines and the time cut: fitting uses the OTHER turbines BEFORE ``cut - gap``,
    calibration/validation uses the calibration turbines AFTER ``cut`` (disjoint in turbines and time)."""
    tids = sorted(turbine_ids)
    rng = np.random.default_rng(settings.random_state)
    n_cal = max(1, round(len(tids) * settings.calib_turbine_share)) if len(tids) > 1 else 0
    cal = set(rng.choice(tids, size=n_cal, replace=False).tolist()) if n_cal else set()
    return cal, t0 + (t1 - t0) * settings.time_cut


def normal_ranges(x: pd.DataFrame) -> dict[str, list[float]]:
    """1st-99th percentile of every feature on healthy samples: the "normal range" shown in reasons."""
    out: dict[str, list[float]] = {}
    for name in FEATURE_NAMES:
        col = x[name].to_numpy(float)
        col = col[np.isfinite(col)]
        if len(col) >= 20:
            lo, hi = np.percentile(col, [1, 99])
            out[name] = [round(float(lo), 3), round(float(hi), 3)]
    return out


# --------------------------------------------------------------------------------------------------
# Rule-based baseline (what operators use today)
# --------------------------------------------------------------------------------------------------


def fit_baseline(healthy: pd.DataFrame, all_train: pd.DataFrame, horizon_days: float) -> dict[str, Any]:
    """Fixed alarm thresholds per signal, set like an operator would: just above normal extremes.

    Temperatures and vibration: 99.5th percentile of the healthy 24 h maximum; hydraulic pressure:
    0.5th percentile of the healthy 24 h mean (pressure loss). Probability when the rule fires / does
    not fire and the TTF it implies are the training frequencies - a fair probabilistic baseline.
    """
    thresholds: dict[str, float] = {}
    for sig in COMPONENT_SIGNALS:
        if sig == "pitch_hydraulic_pressure_bar":
            col = healthy[f"{sig}__mean_24h"].dropna()
            thresholds[sig] = float(np.percentile(col, 0.5)) if len(col) else 0.0
        else:
            col = healthy[f"{sig}__max_24h"].dropna()
            thresholds[sig] = float(np.percentile(col, 99.5)) if len(col) else math.inf
    base: dict[str, Any] = {"thresholds": thresholds}
    score = baseline_score(base, all_train)
    fired = score >= 1.0
    y = all_train["y"].to_numpy()
    base["p_fired"] = float(y[fired].mean()) if fired.any() else 0.5
    base["p_quiet"] = float(y[~fired].mean()) if (~fired).any() else 0.0
    ttf = all_train["ttf_target"].to_numpy()
    sel = fired & (ttf < horizon_days)
    base["ttf_fired_days"] = float(np.median(ttf[sel])) if sel.any() else horizon_days / 2
    base["ttf_quiet_days"] = horizon_days
    return base


def baseline_score(base: dict[str, Any], x: pd.DataFrame) -> np.ndarray:
    """Continuous rule score: worst ratio of a reading to its alarm threshold (>= 1 means alarm)."""
    ratios = []
    for sig, thr in base["thresholds"].items():
        if sig == "pitch_hydraulic_pressure_bar":
            v = x[f"{sig}__mean_24h"].to_numpy(float)
            ratios.append(np.where(v > 0, thr / np.maximum(v, 1e-6), np.nan))
        else:
            v = x[f"{sig}__max_24h"].to_numpy(float)
            ratios.append(v / thr if thr and math.isfinite(thr) and thr > 0 else np.zeros(len(x)))
    r = np.nanmax(np.vstack(ratios), axis=0) if ratios else np.zeros(len(x))
    alarms = x["alarms_24h"].to_numpy(float)
    r = np.where(alarms > 0, np.maximum(r, 1.0 + np.minimum(alarms, 100) / 1000), r)
    return np.nan_to_num(r, nan=0.0)


def baseline_predict(base: dict[str, Any], x: pd.DataFrame) -> dict[str, np.ndarray]:
    score = baseline_score(base, x)
    fired = score >= 1.0
    return {
        "score": score,
        "probability": np.where(fired, base["p_fired"], base["p_quiet"]),
        "ttf_q50": np.where(fired, base["ttf_fired_days"], base["ttf_quiet_days"]),
    }


# --------------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------------


def fit_models(
    x_train: np.ndarray,
    y_train: np.ndarray,
    ttf_train: np.ndarray,
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    settings: TrainSettings,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Calibrated classifier + three quantile regressors, numeric threads limited."""
    common = _common_params(settings)
    models: dict[str, Any] = {}
    with threadpool_limits(limits=settings.threads):
        clf = HistGradientBoostingClassifier(**common).fit(x_train, y_train)  # type: ignore[arg-type]
        if progress:
            progress("classifier", 0.25)
        if len(np.unique(y_cal)) == 2:
            cal = CalibratedClassifierCV(FrozenEstimator(clf), method="sigmoid").fit(x_cal, y_cal)
            models["classifier"] = cal
        else:
            models["classifier"] = clf
        n_degrading = int((ttf_train < settings.ttf_horizon_days).sum())
        if settings.ttf_model == "two_stage" and 20 <= n_degrading <= len(ttf_train) - 20:
            models.update(fit_two_stage_ttf(x_train, ttf_train, settings, progress))
        else:  # "censored", or too few samples on one side of the horizon for a gate
            for i, q in enumerate((0.1, 0.5, 0.9)):
                reg = HistGradientBoostingRegressor(loss="quantile", quantile=q, **common)  # type: ignore[arg-type]
                models[f"ttf_q{round(q * 100)}"] = reg.fit(x_train, ttf_train)
                if progress:
                    progress("ttf regressors", 0.5 + 0.5 * (i + 1) / 3)
    return models


def _common_params(settings: TrainSettings) -> dict[str, Any]:
    return {
        "max_iter": settings.max_iter,
        "learning_rate": settings.learning_rate,
        "max_leaf_nodes": settings.max_leaf_nodes,
        "min_samples_leaf": settings.min_samples_leaf,
        "max_features": settings.max_features,
        "l2_regularization": 1.0,
        "early_stopping": False,
        "random_state": settings.random_state,
    }


def fit_two_stage_ttf(
    x_train: np.ndarray, ttf_train: np.ndarray, settings: TrainSettings, progress: Progress | None = None
) -> dict[str, Any]:
    """Gate ``P(TTF <= horizon)`` + quantile regressors of ``log1p(TTF)`` on samples with TTF < horizon.

    ``ttf_train`` is the TTF censored at the horizon: values below it are exact failure times.
    Returns the three registry artifacts ``ttf_q10/q50/q90`` (:class:`models.ttf.TTFQuantile`).
    """
    common = _common_params(settings)
    horizon = settings.ttf_horizon_days
    degrading = ttf_train < horizon
    gate = HistGradientBoostingClassifier(**common).fit(x_train, degrading.astype(int))  # type: ignore[arg-type]
    if progress:
        progress("ttf regressors", 0.6)
    cond = []
    for i, q in enumerate(COND_LEVELS):
        reg = HistGradientBoostingRegressor(loss="quantile", quantile=q, **common)  # type: ignore[arg-type]
        cond.append(reg.fit(x_train[degrading], np.log1p(ttf_train[degrading])))
        if progress:
            progress("ttf regressors", 0.6 + 0.4 * (i + 1) / len(COND_LEVELS))
    model = TwoStageTTF(gate, cond, horizon, threshold=settings.ttf_gate_threshold)
    return {f"ttf_q{round(q * 100)}": TTFQuantile(model, q) for q in (0.1, 0.5, 0.9)}


def train(
    settings: TrainSettings,
    history: History,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """Fit everything on ``history``; returns (models, metadata, training dataset)."""
    # 1. split turbines first so the normal-behaviour model only sees training turbines/time
    tids = sorted(history.frame["turbine_id"].astype(str).unique())
    t0, t1 = history.frame["event_time"].min(), history.frame["event_time"].max()
    cal_turbines, cut = choose_split(tids, t0, t1, settings)
    hh = healthy_hours(history, set(tids) - cal_turbines, before=cut)
    normal = fit_normal_model(hh)
    if progress:
        progress("normal-behaviour model", 1.0)
    data = build_dataset(
        history,
        normal,
        settings.sample_every_hours,
        settings.label_days,
        settings.ttf_horizon_days,
        n_jobs=min(2, settings.threads),
        progress=progress,
    )
    in_cal = data["turbine_id"].isin(cal_turbines).to_numpy()
    gap = pd.Timedelta(days=settings.gap_days)
    train_m = ~in_cal & (data["time"] < cut - gap).to_numpy()
    cal_m = in_cal & (data["time"] >= cut).to_numpy()
    model_features = select_model_features()
    x = data[model_features].to_numpy(float)
    tr_cls = train_m & data["known_y"].to_numpy()
    tr_ttf = train_m & data["known_ttf"].to_numpy()
    # the classifier and regressors share X rows where both labels are known (simple and leak-free)
    tr = tr_cls & tr_ttf
    cal = cal_m & data["known_y"].to_numpy()
    models = fit_models(
        x[tr],
        data["y"].to_numpy()[tr],
        data["ttf_target"].to_numpy()[tr],
        x[cal],
        data["y"].to_numpy()[cal],
        settings,
        progress,
    )
    models["normal_model"] = normal
    used = asdict(settings)
    used["ttf_model"] = "two_stage" if isinstance(models["ttf_q50"], TTFQuantile) else "censored"
    ttf_all = data["ttf_days"].to_numpy()
    healthy = data[train_m & ~data["degrading"].to_numpy() & (ttf_all > 2 * settings.label_days)]
    ranges = normal_ranges(healthy)
    baseline = fit_baseline(healthy, data[tr], settings.ttf_horizon_days)
    meta: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(),
        "feature_names": list(FEATURE_NAMES),
        "model_features": model_features,
        "training": {
            "settings": used,
            "source": history.source,
            "data_fingerprint": history.fingerprint(),
            "rows": len(history.frame),
            "failures": len(history.failures),
            "samples_train": int(tr.sum()),
            "positives_train": int(data["y"].to_numpy()[tr].sum()),
            "samples_calibration": int(cal.sum()),
            "positives_calibration": int(data["y"].to_numpy()[cal].sum()),
            "calibration_turbines": sorted(cal_turbines),
            "time_cut": str(cut),
        },
        "label_days": settings.label_days,
        "ttf_horizon_days": settings.ttf_horizon_days,
        "normal_ranges": ranges,
        "baseline": baseline,
        "normal_model": {
            "targets": list(normal.targets),
            "resid_std": [round(float(s), 3) for s in normal.resid_std],
            "healthy_hours": len(hh),
        },
        "temperature_signals": list(TEMP_SIGNALS),
    }
    return models, meta, data


# --------------------------------------------------------------------------------------------------
# The operator's own failure log (issue 10, point 5)
# --------------------------------------------------------------------------------------------------

#: Columns of an operator failure log (CSV, one failure per row, times ISO 8601 with a UTC offset).
FAILURE_LOG_COLUMNS: tuple[str, ...] = ("turbine_id", "component", "failure_time", "repair_time")
#: After a repair the 7-day feature window still holds the failed state: samples in it are excluded
#: (they would teach the models that a just-repaired turbine looks like a failing one).
POST_REPAIR_WASHOUT_DAYS = 7.0
#: Fewest failures each part of the split needs: the classifier learns from the fitting part, and the
#: hold-out must contain failures for PR-AUC / recall to mean anything.
MIN_FIT_FAILURES = 10
MIN_HOLDOUT_FAILURES = 3
HOLDOUT_TURBINE_SHARE = 0.25


class FailureLogError(ValueError):
    """An unusable failure log or history; the message names the file, the row (line) and the field."""


class NotEnoughFailures(ValueError):
    """The failure log has too few failures in some part of the split to train and evaluate honestly."""


def _parse_utc(text: str, where: str) -> pd.Timestamp:
    value = text.strip()
    if not value:
        raise FailureLogError(
            f"{where}: empty; write an ISO 8601 time with its UTC offset, e.g. 2025-03-01T10:00:00Z"
        )
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise FailureLogError(
            f"{where}: {value[:60]!r} is not a time; write ISO 8601 with its UTC offset, "
            "e.g. 2025-03-01T10:00:00Z"
        ) from exc
    if ts is pd.NaT or pd.isna(ts):
        raise FailureLogError(f"{where}: {value[:60]!r} is not a time")
    if ts.tzinfo is None:
        raise FailureLogError(
            f"{where}: {value[:60]!r} has no UTC offset (local time is ambiguous around daylight-saving "
            "changes); add it, e.g. 2025-03-01T10:00:00+01:00 or ...Z"
        )
    return ts.tz_convert("UTC")


def read_failure_log(
    path: str | Path,
    turbines: set[str] | None = None,
    horizon_days: float = 30.0,
    washout_days: float = POST_REPAIR_WASHOUT_DAYS,
) -> pd.DataFrame:
    """Read and validate an operator failure log; returns the failures table training uses.

    Columns returned: ``turbine_id, component, failure_time, repair_time, logged_repair_time,
    onset_time``. The log has no onset: ``onset_time = failure_time - horizon_days`` (the month before a
    failure is never used as "healthy"), and ``repair_time`` is the logged repair plus ``washout_days``
    (samples whose window still holds the failed state are excluded like down time). Every problem is a
    :class:`FailureLogError` naming the file, the line and the field.
    """
    import csv

    from common.contracts import IDENTIFIER_PATTERN

    p = Path(path)
    if not p.is_file():
        raise FailureLogError(f"{p}: failure log not found")
    ident = re.compile(IDENTIFIER_PATTERN)
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, pd.Timestamp], int] = {}
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                header = [h.strip().lower() for h in next(reader)]
            except StopIteration:
                raise FailureLogError(
                    f"{p}: empty file; expected the header {','.join(FAILURE_LOG_COLUMNS)}"
                ) from None
            missing = [c for c in FAILURE_LOG_COLUMNS if c not in header]
            if missing:
                raise FailureLogError(
                    f"{p}: line 1: missing column(s) {', '.join(missing)}; the header must name "
                    f"{', '.join(FAILURE_LOG_COLUMNS)} "
                    f"(found: {', '.join(h[:40] for h in header) or 'nothing'})"
                )
            col = {c: header.index(c) for c in FAILURE_LOG_COLUMNS}
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                if len(values) < len(header):
                    raise FailureLogError(
                        f"{p}: line {line}: {len(values)} fields, the header has {len(header)}"
                    )
                tid = values[col["turbine_id"]].strip()
                if not ident.match(tid):
                    raise FailureLogError(
                        f"{p}: line {line}: turbine_id {tid[:60]!r} is not an identifier (a letter or digit, "
                        "then up to 63 letters, digits or ._:/-)"
                    )
                if turbines is not None and tid not in turbines:
                    raise FailureLogError(
                        f"{p}: line {line}: turbine_id {tid!r} has no rows in the history "
                        f"(history turbines: {', '.join(sorted(turbines)[:20])}); "
                        "remove the row or add its history"
                    )
                component = values[col["component"]].strip()
                if not component or any(ord(ch) < 32 for ch in component) or len(component) > 100:
                    raise FailureLogError(
                        f"{p}: line {line}: component must be 1-100 printable characters (e.g. gearbox)"
                    )
                failure = _parse_utc(values[col["failure_time"]], f"{p}: line {line}: failure_time")
                repair = _parse_utc(values[col["repair_time"]], f"{p}: line {line}: repair_time")
                if repair < failure:
                    raise FailureLogError(
                        f"{p}: line {line}: repair_time {repair.isoformat()} is before failure_time "
                        f"{failure.isoformat()}"
                    )
                key = (tid, failure)
                if key in seen:
                    raise FailureLogError(
                        f"{p}: line {line}: failure of {tid} at {failure.isoformat()} "
                        f"repeats line {seen[key]}"
                    )
                seen[key] = line
                rows.append(
                    {
                        "turbine_id": tid,
                        "component": component,
                        "failure_time": failure,
                        "logged_repair_time": repair,
                        "line": line,
                    }
                )
    except UnicodeDecodeError as exc:
        raise FailureLogError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise FailureLogError(f"{p}: not a readable CSV: {exc}") from exc
    if not rows:
        raise FailureLogError(f"{p}: no failures listed (only a header)")
    log = pd.DataFrame(rows).sort_values(["turbine_id", "failure_time"], kind="stable")
    for turbine, g in log.groupby("turbine_id"):
        prev_repair = g["logged_repair_time"].shift(1)
        overlap = g["failure_time"] < prev_repair
        if overlap.any():
            bad = g[overlap].iloc[0]
            raise FailureLogError(
                f"{p}: line {bad['line']}: failure_time of {turbine} at {bad['failure_time'].isoformat()} "
                "is before "
                "the repair of its previous failure; merge the two rows or correct the times"
            )
    log["repair_time"] = log["logged_repair_time"] + pd.Timedelta(days=washout_days)
    log["onset_time"] = log["failure_time"] - pd.Timedelta(days=horizon_days)
    return log.drop(columns=["line"]).reset_index(drop=True)


def read_contract_history(path: str | Path) -> pd.DataFrame:
    """Contract rows (``producers convert`` output, Parquet or CSV) with ``event_time`` in UTC."""
    p = Path(path)
    if not p.is_file():
        raise FailureLogError(f"{p}: history file not found")
    try:
        frame = pd.read_csv(p) if p.suffix.lower() == ".csv" else pd.read_parquet(p)
    except Exception as exc:
        raise FailureLogError(
            f"{p}: cannot read the history ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    missing = [c for c in ("turbine_id", "event_time") if c not in frame.columns]
    if missing:
        raise FailureLogError(
            f"{p}: missing column(s) {', '.join(missing)} (expected the telemetry contract)"
        )
    times = pd.to_datetime(frame["event_time"], utc=True, errors="coerce", format="mixed")
    bad = times.isna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise FailureLogError(
            f"{p}: row {i + 1}: event_time {str(frame['event_time'].iloc[i])[:60]!r} is not a time"
        )
    frame = frame.assign(event_time=times, turbine_id=frame["turbine_id"].astype(str))
    return frame.sort_values(["turbine_id", "event_time"], kind="stable").reset_index(drop=True)


@dataclass
class OperatorSplit:
    """Hold-out by turbine AND time for an operator history, with the failures each part holds."""

    train: History
    holdout: History
    holdout_turbines: list[str]
    cut: pd.Timestamp
    fit_failures: int
    calibration_failures: int
    holdout_failures: int


def split_operator_history(history: History, settings: TrainSettings) -> OperatorSplit:
    """Hold-out turbines (a quarter, at least one) after the time cut; training on the other turbines
    before ``cut - gap`` (which :func:`train` splits again into fitting and calibration). Raises
    :class:`NotEnoughFailures` naming the counts and what is needed."""
    frame = history.frame
    tids = sorted(frame["turbine_id"].astype(str).unique())
    t0, t1 = frame["event_time"].min(), frame["event_time"].max()
    if len(tids) < 3:
        raise NotEnoughFailures(
            f"{len(tids)} turbine(s) in the history; training with a hold-out by turbine needs at least 3 "
            "(fitting, calibration and hold-out turbines)"
        )
    rng = np.random.default_rng(settings.random_state + 1)
    n_ho = max(1, round(len(tids) * HOLDOUT_TURBINE_SHARE))
    holdout = set(rng.choice(tids, size=n_ho, replace=False).tolist())
    cut = t0 + (t1 - t0) * settings.time_cut
    gap = pd.Timedelta(days=settings.gap_days)
    min_days = math.ceil(3 * settings.gap_days / settings.time_cut)
    span_days = (t1 - t0).total_seconds() / 86400
    if span_days < min_days:
        raise NotEnoughFailures(
            f"the history spans {span_days:.0f} days; training with a hold-out by time needs at least "
            f"{min_days} days (fitting before the cut minus a {settings.gap_days:g}-day gap, "
            "hold-out after it)"
        )
    fails = history.failures
    train_frame = frame[~frame["turbine_id"].isin(holdout) & (frame["event_time"] < cut - gap)]
    train_fails = fails[~fails["turbine_id"].isin(holdout)]
    ho_frame = frame[frame["turbine_id"].isin(holdout) & (frame["event_time"] >= cut)]
    ho_fails = fails[fails["turbine_id"].isin(holdout)]
    train_hist = History(train_frame, train_fails, source=history.source + " (training part)")
    ho_hist = History(ho_frame, ho_fails, source=history.source + " (hold-out part)")
    # The same split train() will make on the training part, to count failures before any work.
    inner_tids = sorted(set(tids) - holdout)
    cal_turbines, inner_cut = choose_split(
        inner_tids, train_frame["event_time"].min(), train_frame["event_time"].max(), settings
    )
    ft = pd.to_datetime(fails["failure_time"], utc=True)
    fit_n = int(
        ((~fails["turbine_id"].isin(holdout | cal_turbines)) & (ft < inner_cut - gap) & (ft >= t0)).sum()
    )
    cal_n = int((fails["turbine_id"].isin(cal_turbines) & (ft >= inner_cut) & (ft < cut - gap)).sum())
    ho_n = int((fails["turbine_id"].isin(holdout) & (ft >= cut) & (ft <= t1)).sum())
    if fit_n < MIN_FIT_FAILURES or ho_n < MIN_HOLDOUT_FAILURES:
        span = max((t1 - t0).total_seconds(), 1.0)
        n_fit_t = len(inner_tids) - len(cal_turbines)
        fit_share = n_fit_t / len(tids) * max((inner_cut - gap - t0).total_seconds(), 0.0) / span
        ho_share = len(holdout) / len(tids) * max((t1 - cut).total_seconds(), 0.0) / span
        needed = math.ceil(
            max(MIN_FIT_FAILURES / max(fit_share, 1e-9), MIN_HOLDOUT_FAILURES / max(ho_share, 1e-9))
        )
        raise NotEnoughFailures(
            f"too few failures to train: {fit_n} in the fitting part (needs {MIN_FIT_FAILURES}), "
            f"{ho_n} in the hold-out part (needs {MIN_HOLDOUT_FAILURES}), {cal_n} for calibration; "
            f"the log lists {len(fails)} failures over {len(tids)} turbines. "
            "The split is by turbine AND time "
            f"(hold-out: turbines {', '.join(sorted(holdout))} after {cut.isoformat()}; fitting: "
            f"{n_fit_t} turbine(s) before {(inner_cut - gap).isoformat()}), so with failures spread evenly "
            f"over turbines and time this history needs about {needed} failures in the log. "
            "Until then use the calibrated scoring (python -m models calibrate), which "
            "needs no failure labels."
        )
    return OperatorSplit(train_hist, ho_hist, sorted(holdout), cut, fit_n, cal_n, ho_n)
