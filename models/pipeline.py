"""Train -> register -> evaluate on a hold-out -> model card: the one flow behind the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.drift import reference_files
from models.evaluate import evaluate, model_card, plot_all
from models.registry import load_version, promote, save_version, update_metadata
from models.train import History, Progress, TrainSettings, load_history, simulate, train


@dataclass
class PipelineResult:
    version: str
    version_dir: Path
    metrics: dict[str, Any]
    model_card: Path
    promoted: bool


def _clean(obj: Any) -> Any:
    """JSON-safe metrics (NaN -> None)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def train_and_register(
    registry_dir: str | Path,
    settings: TrainSettings,
    *,
    data: str | Path | None = None,
    failures: str | Path | None = None,
    holdout_data: str | Path | None = None,
    promote_if: str = "first",  # "always" | "first" (only when no production yet) | "never"
    version: str | None = None,
    progress: Progress | None = None,
) -> PipelineResult:
    """Train on simulator history (or ``data``), save a version, evaluate on the hold-out, write the card."""
    say = progress or (lambda _s, _f: None)
    say("simulate training fleet", 0.0)
    history: History = (
        load_history(data, failures)
        if data
        else simulate(settings.n_turbines, settings.days, settings.seed, settings.preset)
    )
    say("simulate training fleet", 1.0)
    models, meta, dataset = train(settings, history, progress=progress)
    vdir = save_version(registry_dir, models, meta, version=version, extra_files=reference_files(dataset))
    bundle = load_version(registry_dir, vdir.name)
    say("simulate hold-out fleet", 0.0)
    holdout = (
        load_history(holdout_data)
        if holdout_data
        else simulate(
            settings.holdout_turbines, settings.holdout_days, settings.holdout_seed, settings.preset
        )
    )
    say("simulate hold-out fleet", 1.0)
    result = evaluate(bundle, holdout, threads=settings.threads, progress=progress)
    plots = plot_all(result, vdir)
    metrics = _clean(result.metrics)
    card = vdir / "model_card.md"
    card.write_text(model_card(bundle.metadata, result.metrics, plots), encoding="utf-8")
    update_metadata(vdir, {"metrics": metrics, "model_card": card.name, "plots": plots})
    (vdir / "holdout_metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    from models.registry import production_version

    promoted = promote_if == "always" or (
        promote_if == "first" and production_version(registry_dir, required=False) is None
    )
    if promoted:
        promote(registry_dir, vdir.name)
    return PipelineResult(vdir.name, vdir, metrics, card, promoted)


def train_from_failure_log(
    registry_dir: str | Path,
    settings: TrainSettings,
    history_path: str | Path,
    failure_log_path: str | Path,
    *,
    promote_if: str = "first",
    version: str | None = None,
    progress: Progress | None = None,
) -> PipelineResult:
    """Supervised training on an operator's history (contract Parquet/CSV) and failure log (CSV).

    Same features (replayed through ``FeatureWindow``, the scorer's code), labels, models, registry
    and model card as the simulator flow; the hold-out is the operator's own data, split off by turbine
    AND time (:func:`models.train.split_operator_history`). Raises ``FailureLogError`` (bad file, row,
    field) or ``NotEnoughFailures`` (how many there are and how many are needed) before any heavy work.
    """
    from models.train import read_contract_history, read_failure_log, split_operator_history

    say = progress or (lambda _s, _f: None)
    say("read history and failure log", 0.0)
    frame = read_contract_history(history_path)
    failures = read_failure_log(
        failure_log_path, set(frame["turbine_id"].unique()), horizon_days=settings.ttf_horizon_days
    )
    history = History(frame, failures, source=f"{history_path} + failure log {failure_log_path}")
    split = split_operator_history(history, settings)
    say("read history and failure log", 1.0)
    models, meta, dataset = train(settings, split.train, progress=progress)
    meta["training"]["failure_log"] = {
        "path": str(failure_log_path),
        "failures": len(failures),
        "components": sorted(str(c) for c in failures["component"].unique()),
        "failures_fit": split.fit_failures,
        "failures_calibration": split.calibration_failures,
        "failures_holdout": split.holdout_failures,
        "holdout_turbines": split.holdout_turbines,
        "holdout_from": split.cut.isoformat(),
        "onset": f"unknown: failure_time - {settings.ttf_horizon_days:g} d is never used as healthy",
        "post_repair_excluded_days": float(
            (failures["repair_time"] - failures["logged_repair_time"]).dt.total_seconds().max() / 86400
        ),
    }
    vdir = save_version(registry_dir, models, meta, version=version, extra_files=reference_files(dataset))
    bundle = load_version(registry_dir, vdir.name)
    result = evaluate(bundle, split.holdout, threads=settings.threads, progress=progress)
    plots = plot_all(result, vdir)
    metrics = _clean(result.metrics)
    card = vdir / "model_card.md"
    fl = meta["training"]["failure_log"]
    card.write_text(
        model_card(bundle.metadata, result.metrics, plots)
        + f"""
## Operator data (this version)
Trained on the operator's own history and failure log, not on the simulator: {fl["failures"]} logged
failures ({", ".join(fl["components"])}), {fl["failures_fit"]} in the fitting part,
{fl["failures_calibration"]} for calibration, {fl["failures_holdout"]} in the hold-out (turbines
{", ".join(fl["holdout_turbines"])} after {fl["holdout_from"]}). Onset {fl["onset"]}; samples from a
failure to {fl["post_repair_excluded_days"]:g} days after its repair excluded. The hold-out above is
that part of the operator's data (the simulator-related limits do not apply; the small number of
failures does).
""",
        encoding="utf-8",
    )
    update_metadata(vdir, {"metrics": metrics, "model_card": card.name, "plots": plots})
    (vdir / "holdout_metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    from models.registry import production_version

    promoted = promote_if == "always" or (
        promote_if == "first" and production_version(registry_dir, required=False) is None
    )
    if promoted:
        promote(registry_dir, vdir.name)
    return PipelineResult(vdir.name, vdir, metrics, card, promoted)
