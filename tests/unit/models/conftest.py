"""Fixtures for the models tests: a tiny trained bundle saved in a temporary registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from models.features import FEATURE_NAMES, fit_normal_model, hourly_means
from models.registry import save_version
from tests.unit.models._synth import synth_fleet


def tiny_models() -> dict:
    """Models fitted on random features in milliseconds (structure, not quality, is under test)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURE_NAMES)))
    y = (x[:, 0] > 0.5).astype(int)
    ttf = np.clip(30 - 10 * x[:, 0], 0, 30)
    frame, _ = synth_fleet(n_turbines=1, days=3, failures_per_turbine=0)
    models: dict = {
        "classifier": HistGradientBoostingClassifier(max_iter=5).fit(x, y),
        "normal_model": fit_normal_model(hourly_means(frame)),
    }
    for q in ("10", "50", "90"):
        models[f"ttf_q{q}"] = HistGradientBoostingRegressor(
            loss="quantile", quantile=int(q) / 100, max_iter=5
        ).fit(x, ttf)
    return models


@pytest.fixture(scope="session")
def tiny_bundle_models() -> dict:
    return tiny_models()


@pytest.fixture
def registry(tmp_path: Path, tiny_bundle_models: dict) -> Path:
    reg = tmp_path / "registry"
    save_version(reg, tiny_bundle_models, {"metrics": {"pr_auc": 0.5}}, version="v1")
    save_version(reg, tiny_bundle_models, {"metrics": {"pr_auc": 0.6}}, version="v2")
    return reg
