"""Labels, splits and a tiny end-to-end train -> register -> evaluate run (seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.features import FEATURE_NAMES
from models.registry import load_production, load_version, save_version
from models.train import History, TrainSettings, choose_split, make_labels, select_model_features, train

from ._synth import START, synth_fleet

pytestmark = pytest.mark.unit

T = pd.Timestamp(START)


def _failures() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "turbine_id": ["A", "A"],
            "mode": ["gearbox_bearing", "main_bearing"],
            "onset_time": [T + pd.Timedelta(days=5), T + pd.Timedelta(days=30)],
            "failure_time": [T + pd.Timedelta(days=10), T + pd.Timedelta(days=40)],
            "repair_time": [T + pd.Timedelta(days=11), T + pd.Timedelta(days=42)],
        }
    )


def test_labels_classifier_regressor_downtime_and_censoring() -> None:
    days = [0, 2.9, 3.0, 9.99, 10.0, 10.5, 11.0, 12.0, 35.0, 41.0, 50.0, 95.0]
    samples = pd.DataFrame({"turbine_id": "A", "time": [T + pd.Timedelta(days=d) for d in days]})
    samples = pd.concat([samples, pd.DataFrame({"turbine_id": ["B"], "time": [T]})], ignore_index=True)
    lab = make_labels(
        samples, _failures(), data_end=T + pd.Timedelta(days=100), label_days=7, horizon_days=30
    )
    by = dict(zip(days, lab.iloc[: len(days)].itertuples(), strict=True))
    assert by[0].ttf_days == pytest.approx(10) and by[0].y == 0 and by[0].ttf_target == pytest.approx(10)
    assert by[2.9].y == 0 and by[3.0].y == 1  # failure within 7 days, boundary inclusive
    assert by[9.99].y == 1 and by[9.99].degrading and not by[9.99].in_downtime
    assert by[10.0].in_downtime and by[10.5].in_downtime  # failure .. repair: excluded later
    assert not by[11.0].in_downtime  # repaired
    assert by[11.0].ttf_days == pytest.approx(29) and by[11.0].ttf_target == pytest.approx(29)
    assert by[12.0].ttf_target == pytest.approx(28) and not by[12.0].degrading
    assert by[35.0].y == 1 and by[35.0].degrading
    assert by[41.0].in_downtime
    assert np.isinf(by[50.0].ttf_days) and by[50.0].ttf_target == 30 and by[50.0].y == 0
    assert by[50.0].known_y and by[50.0].known_ttf
    # 5 days before the end of data with no failure seen: neither label is knowable
    assert not by[95.0].known_y and not by[95.0].known_ttf
    b = lab.iloc[-1]
    assert b.turbine_id == "B" and np.isinf(b.ttf_days) and b.y == 0 and not b.in_downtime


def test_split_is_disjoint_in_turbines_and_time() -> None:
    s = TrainSettings(calib_turbine_share=0.25, time_cut=0.7, gap_days=10)
    tids = [f"WT-{i:03d}" for i in range(8)]
    cal, cut = choose_split(tids, T, T + pd.Timedelta(days=100), s)
    assert len(cal) == 2 and cal <= set(tids)
    assert cut == T + pd.Timedelta(days=70)
    assert choose_split(tids, T, T + pd.Timedelta(days=100), s) == (cal, cut)  # deterministic


def test_model_features_are_a_named_subset() -> None:
    feats = select_model_features()
    assert set(feats) < set(FEATURE_NAMES)
    assert "gearbox_bearing_temp_c__resid_dev_24h" in feats
    assert "gearbox_bearing_temp_c__mean_24h" not in feats


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, pd.DataFrame]:
    frame, failures = synth_fleet(n_turbines=4, days=70, seed=1, failures_per_turbine=2, degradation_days=10)
    hist = History(frame=frame, failures=failures, source="synthetic")
    settings = TrainSettings(
        sample_every_hours=6, max_iter=20, min_samples_leaf=10, threads=1, gap_days=5, time_cut=0.6
    )
    models, meta, data = train(settings, hist)
    reg = tmp_path_factory.mktemp("reg")
    save_version(reg, models, meta, version="tiny")
    return reg, meta, data


def test_tiny_training_produces_a_loadable_bundle(tiny_run) -> None:  # type: ignore[no-untyped-def]
    reg, meta, data = tiny_run
    assert not data["in_downtime"].any()
    assert meta["training"]["samples_train"] > 0 and meta["training"]["positives_train"] > 0
    assert meta["model_features"] == select_model_features()
    assert "gearbox_bearing_temp_c__resid_dev_24h" in meta["normal_ranges"]
    assert set(meta["baseline"]["thresholds"]) >= {"gearbox_bearing_temp_c", "vibration_mm_s"}
    bundle = load_version(reg, "tiny")
    out = bundle.predict(data[list(FEATURE_NAMES)].to_numpy(float)[:50])
    assert out["probability"].shape == (50,)
    assert np.all((out["probability"] >= 0) & (out["probability"] <= 1))
    assert np.all(out["ttf_q10"] <= out["ttf_q90"])


def test_tiny_pipeline_writes_model_card_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import models.pipeline as P

    frame, failures = synth_fleet(n_turbines=3, days=60, seed=2, failures_per_turbine=2, degradation_days=10)
    ho_frame, ho_fail = synth_fleet(
        n_turbines=2, days=40, seed=9, failures_per_turbine=1, degradation_days=10
    )
    hists = iter(
        [
            History(frame, failures, source="synthetic train"),
            History(ho_frame, ho_fail, source="synthetic hold-out"),
        ]
    )
    monkeypatch.setattr(P, "simulate", lambda *a, **k: next(hists))
    settings = TrainSettings(sample_every_hours=6, max_iter=10, min_samples_leaf=10, threads=1, gap_days=5)
    res = P.train_and_register(tmp_path / "reg", settings, promote_if="first")
    assert res.promoted and load_production(tmp_path / "reg").version == res.version
    text = res.model_card.read_text()
    assert "| PR-AUC" in text and "Rule baseline" in text and "## Limits" in text
    for png in ("pr_curve.png", "calibration.png", "ttf_error.png"):
        assert (res.version_dir / png).stat().st_size > 1000
    meta = load_production(tmp_path / "reg").metadata
    assert {"model", "baseline", "holdout"} <= set(meta["metrics"])
