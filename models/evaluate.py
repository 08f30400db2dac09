"""Hold-out evaluation (another simulator seed), baseline comparison, plots and the model card.

Why a separate fleet with another seed: different turbines, weather and failure timings - the closest
offline proxy for "next year on the real fleet". Nothing here is used to tune the models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, precision_recall_curve
from threadpoolctl import threadpool_limits

from models.features import COMPONENT_SIGNALS, FEATURE_NAMES, N_FEATURES
from models.registry import ModelBundle
from models.train import History, Progress, baseline_predict, build_dataset

TARGETS = {"pr_auc": 0.9, "brier": 0.05, "ttf_mae_le14_days": 1.5}


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    data: pd.DataFrame  # hold-out samples with labels and predictions


def recall_at_precision(y: np.ndarray, p: np.ndarray, precision: float) -> float:
    if y.sum() == 0:
        return float("nan")
    prec, rec, _ = precision_recall_curve(y, p)
    ok = prec >= precision
    return float(rec[ok].max()) if ok.any() else 0.0


def classification_metrics(y: np.ndarray, p: np.ndarray, precision: float = 0.9) -> dict[str, float]:
    has_both = 0 < y.sum() < len(y)
    return {
        "pr_auc": float(average_precision_score(y, p)) if has_both else float("nan"),
        f"recall_at_precision_{precision}": recall_at_precision(y, p, precision),
        "brier": float(brier_score_loss(y, np.clip(p, 0, 1))) if len(y) else float("nan"),
    }


def ttf_metrics(
    ttf_true: np.ndarray, q50: np.ndarray, q10: np.ndarray | None = None, q90: np.ndarray | None = None
) -> dict[str, float]:
    sel = np.isfinite(ttf_true) & (ttf_true <= 14.0)
    healthy = ~np.isfinite(ttf_true) | (ttf_true > 30.0)
    out = {
        "ttf_mae_le14_days": float(np.mean(np.abs(q50[sel] - ttf_true[sel]))) if sel.any() else float("nan"),
        "ttf_samples_le14": int(sel.sum()),
        # the price of a short TTF: samples with no failure within 30 days told "< 14 days"
        "ttf_healthy_below14_share": float(np.mean(q50[healthy] < 14.0)) if healthy.any() else float("nan"),
    }
    if q10 is not None and q90 is not None and sel.any():
        inside = (ttf_true[sel] >= q10[sel]) & (ttf_true[sel] <= q90[sel])
        out["ttf_interval_coverage_le14"] = float(inside.mean())
        out["ttf_interval_width_le14_days"] = float(np.mean(q90[sel] - q10[sel]))
    return out


def evaluate(
    bundle: ModelBundle,
    history: History,
    every_hours: float | None = None,
    threads: int = 2,
    progress: Progress | None = None,
) -> EvalResult:
    """Replay the hold-out through the same features, predict in one batch, compute all figures."""
    meta = bundle.metadata
    settings = meta.get("training", {}).get("settings", {})
    every = every_hours or float(settings.get("sample_every_hours", 2.0))
    label_days = float(meta.get("label_days", 7.0))
    horizon = float(meta.get("ttf_horizon_days", 30.0))
    data = build_dataset(
        history, bundle.normal_model, every, label_days, horizon, n_jobs=min(2, threads), progress=progress
    )
    x = data[list(FEATURE_NAMES)].to_numpy(float)
    assert x.shape[1] == N_FEATURES
    with threadpool_limits(limits=threads):
        pred = bundle.predict(x)
    for k, v in pred.items():
        data[f"pred_{k}"] = v
    base = baseline_predict(meta["baseline"], data)
    data["base_score"] = base["score"]
    data["base_probability"] = base["probability"]
    data["base_ttf"] = base["ttf_q50"]

    cls = data["known_y"].to_numpy()
    y = data["y"].to_numpy()[cls]
    m_model = classification_metrics(y, data["pred_probability"].to_numpy()[cls])
    m_base = classification_metrics(y, data["base_score"].to_numpy()[cls])
    m_base["brier"] = (
        float(brier_score_loss(y, data["base_probability"].to_numpy()[cls])) if len(y) else math.nan
    )
    ttf_true = data["ttf_days"].to_numpy()
    m_model |= ttf_metrics(
        ttf_true,
        data["pred_ttf_q50"].to_numpy(),
        data["pred_ttf_q10"].to_numpy(),
        data["pred_ttf_q90"].to_numpy(),
    )
    m_base |= ttf_metrics(ttf_true, data["base_ttf"].to_numpy())
    metrics: dict[str, Any] = {
        "holdout": {
            "source": history.source,
            "samples": int(cls.sum()),
            "positives": int(y.sum()),
            "failures": len(history.failures),
            "turbines": int(history.frame["turbine_id"].nunique()),
        },
        "model": m_model,
        "baseline": m_base,
        "targets": TARGETS,
    }
    metrics["targets_met"] = {
        "pr_auc": m_model["pr_auc"] >= TARGETS["pr_auc"],
        "brier": m_model["brier"] <= TARGETS["brier"],
        "ttf_mae_le14_days": m_model["ttf_mae_le14_days"] <= TARGETS["ttf_mae_le14_days"],
        "better_than_baseline": m_model["pr_auc"] > m_base["pr_auc"] and m_model["brier"] < m_base["brier"],
    }
    return EvalResult(metrics=metrics, data=data)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def plot_all(result: EvalResult, out_dir: Path) -> list[str]:
    """PR curve, calibration and TTF error plots as PNG; returns the file names."""
    d = result.data[result.data["known_y"]]
    y = d["y"].to_numpy()
    files = []
    if 0 < y.sum() < len(y):
        fig, ax = plt.subplots(figsize=(5, 4))
        for col, label in (("pred_probability", "model"), ("base_score", "rule baseline")):
            prec, rec, _ = precision_recall_curve(y, d[col].to_numpy())
            ax.plot(rec, prec, label=f"{label} (AP={average_precision_score(y, d[col].to_numpy()):.3f})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Failure within 7 days - hold-out")
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(out_dir / "pr_curve.png", dpi=100)
        plt.close(fig)
        files.append("pr_curve.png")

        fig, ax = plt.subplots(figsize=(5, 4))
        frac, mean_p = calibration_curve(y, d["pred_probability"].to_numpy(), n_bins=10, strategy="quantile")
        ax.plot([0, 1], [0, 1], "k:", label="perfect")
        ax.plot(mean_p, frac, "o-", label="model")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_title("Calibration - hold-out")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "calibration.png", dpi=100)
        plt.close(fig)
        files.append("calibration.png")

    t = result.data
    true = t["ttf_days"].to_numpy()
    sel = np.isfinite(true) & (true <= 30)
    if sel.any():
        tt, q10 = true[sel], t["pred_ttf_q10"].to_numpy()[sel]
        q50, q90 = t["pred_ttf_q50"].to_numpy()[sel], t["pred_ttf_q90"].to_numpy()[sel]
        edges = np.arange(0, 31, 1.0)
        idx = np.clip(np.digitize(tt, edges) - 1, 0, len(edges) - 2)
        centre = edges[:-1] + 0.5
        med = np.array([np.median(q50[idx == i]) if (idx == i).any() else np.nan for i in range(len(centre))])
        lo = np.array([np.mean(q10[idx == i]) if (idx == i).any() else np.nan for i in range(len(centre))])
        hi = np.array([np.mean(q90[idx == i]) if (idx == i).any() else np.nan for i in range(len(centre))])
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(tt, q50, s=2, alpha=0.05, color="tab:blue", label="samples (median prediction)")
        ax.fill_between(centre, lo, hi, color="tab:orange", alpha=0.25, label="mean 10-90 % interval")
        ax.plot(centre, med, color="tab:orange", label="median prediction per day")
        ax.plot([0, 30], [0, 30], "k:", label="perfect")
        ax.set_xlabel("true time to failure (days)")
        ax.set_ylabel("predicted time to failure (days)")
        ax.set_title("Time-to-failure - hold-out")
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "ttf_error.png", dpi=100)
        plt.close(fig)
        files.append("ttf_error.png")
    return files


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.3f}"
    return str(v)


def _ttf_text(st: dict[str, Any], meta: dict[str, Any]) -> str:
    horizon = f"{meta.get('ttf_horizon_days', 30):g}"
    if st.get("ttf_model", "censored") == "two_stage":
        thr = st.get("ttf_gate_threshold")
        use = (
            f"conditional quantiles where P >= {thr:g}, mixture quantiles elsewhere"
            if thr is not None
            else "quantiles of the mixture"
        )
        return (
            f"two-stage: gradient-boosted gate P(TTF <= {horizon} d) and quantile gradient boosting of "
            f"log TTF on degrading samples; {use}"
        )
    return f"quantile gradient boosting, censored at {horizon} days"


def _backtest_section(meta: dict[str, Any]) -> str:
    """The event-level backtest and its goals (``python -m models backtest`` stores them in metadata)."""
    report = meta.get("backtest")
    if not isinstance(report, dict) or "sources" not in report:
        return ""
    from models.backtest_metrics import card_section

    return "\n" + card_section(report, "backtest_lead_times.png")


def model_card(meta: dict[str, Any], metrics: dict[str, Any], plots: list[str]) -> str:
    """Markdown model card: data, features, metrics vs. baseline and targets, limits."""
    tr = meta.get("training", {})
    st = tr.get("settings", {})
    m, b, tg = metrics["model"], metrics["baseline"], metrics["targets"]
    ho = metrics["holdout"]
    rows = [
        ("PR-AUC (failure <= 7 d)", "pr_auc", f">= {tg['pr_auc']}"),
        ("Recall at precision 0.9", "recall_at_precision_0.9", ""),
        ("Brier score", "brier", f"<= {tg['brier']}"),
        ("TTF MAE, true TTF <= 14 d (days)", "ttf_mae_le14_days", f"<= {tg['ttf_mae_le14_days']}"),
        ("TTF 10-90 % interval coverage (<= 14 d)", "ttf_interval_coverage_le14", "~0.8"),
        ("Share of samples with TTF > 30 d told < 14 d", "ttf_healthy_below14_share", "low"),
    ]
    table = "\n".join(
        f"| {label} | {_fmt(m.get(key, float('nan')))} | {_fmt(b.get(key, float('nan')))} | {target} |"
        for label, key, target in rows
    )
    met = metrics.get("targets_met", {})
    n_inputs = len(meta.get("model_features") or FEATURE_NAMES)
    met_txt = ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in met.items())
    return f"""# Model card - {meta.get("version", "?")}

Created {meta.get("created_at", "?")} with scikit-learn {meta.get("runtime", {}).get("sklearn", "?")}.

## Purpose
Rank wind turbines by risk of a component failure: P(failure within {meta.get("label_days", 7):g} days)
(calibrated gradient boosting) and time to failure with a 10-90 % interval
({_ttf_text(st, meta)}). Scores are turned into tiers by `models/config/policy.yaml`.

## Training data
- Source: {tr.get("source", "?")} (fingerprint `{str(tr.get("data_fingerprint", "?"))[:16]}`)
- {tr.get("rows", "?")} telemetry rows, {tr.get("failures", "?")} failures; features sampled every
  {st.get("sample_every_hours", "?")} h per turbine; samples during fault/repair down time excluded.
- Split by turbine AND time: fit on {tr.get("samples_train", "?")} samples
  ({tr.get("positives_train", "?")} positive) of the other turbines before
  `time_cut - {st.get("gap_days", "?")} d`; sigmoid calibration on
  {tr.get("samples_calibration", "?")} samples ({tr.get("positives_calibration", "?")} positive) of turbines
  {", ".join(tr.get("calibration_turbines", []))} after `{tr.get("time_cut", "?")}`.

## Features ({len(FEATURE_NAMES)})
Computed incrementally by `models.features.FeatureWindow` (hourly bins, 7-day ring), identical online
and offline: rolling mean / max / spread / slope over 6 h, 24 h, 72 h, 7 d of
{", ".join(COMPONENT_SIGNALS)}; residuals of component temperatures and vibration against a
normal-behaviour model (load, previous-hour load, ambient, rotor speed; fitted on healthy hours of the
fitting turbines) and their deviation from the turbine's own 30-day residual baseline, the load and
ambient response of that deviation (24 h, 72 h, 7 d least squares), pressure deviation from its
baseline, power-curve residual, alarm counts, down-time share, data quality (missing share, spikes,
coverage, frozen sensors). The models use {n_inputs} of them (deviations,
trends, data quality - absolute levels are left out because trees memorise turbines and weather).

## Hold-out evaluation
{ho["turbines"]} turbines, {ho["source"]}; {ho["samples"]} samples, {ho["positives"]} positive,
{ho["failures"]} failures. Baseline = fixed temperature / vibration / pressure alarm thresholds
(99.5th percentile of healthy 24 h maxima) plus SCADA alarms, as operators use today.

| Metric | Model | Rule baseline | Target |
|---|---|---|---|
{table}

Targets met: {met_txt}.

{chr(10).join(f"![{p}]({p})" for p in plots)}
{_backtest_section(meta)}
## Limits
- Trained and evaluated on simulated data only; real SCADA has other failure signatures, sensor
  behaviour and maintenance practice. Re-train and re-validate on real history before relying on it.
- Needs about 7 days of history per turbine for the longest horizons; features over shorter history
  are computed from what exists (the policy reports `unknown` when coverage is too low).
- Failures without a precursor in the measured signals (sudden faults, or onset less than 7 days
  before failure) cannot be predicted; this bounds recall at short horizons.
- TTF is only knowable once a degradation shows in the signals: before the onset (or while it is
  still within the noise) the model predicts the horizon, which keeps the MAE on samples whose true
  TTF is <= 14 days well above a day or two. Treat TTF as indicative.
- Probabilities are calibrated on simulator failure rates ("training" preset, raised rates); with
  realistic rates the same score corresponds to a lower real-world frequency.
"""
