"""Two-stage TTF model: mixture quantiles, gate threshold, registry round trip, one pass per batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.features import FEATURE_NAMES
from models.registry import load_version, save_version
from models.train import TrainSettings, fit_models, fit_two_stage_ttf
from models.ttf import TTFQuantile, TwoStageTTF, _interp_rows
from tests.unit.models.conftest import tiny_models

pytestmark = pytest.mark.unit


class _Gate:
    def __init__(self, p: np.ndarray) -> None:
        self.p = p

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([1 - self.p, self.p])


class _Const:
    def __init__(self, days: float) -> None:
        self.v = np.log1p(days)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(x.shape[0], self.v)


def _model(p: list[float], threshold: float | None) -> TwoStageTTF:
    return TwoStageTTF(_Gate(np.asarray(p)), [_Const(2.0), _Const(5.0), _Const(10.0)], 30.0, threshold)


def test_mixture_quantiles() -> None:
    x = np.zeros((3, 1))
    q = _model([0.0, 1.0, 0.6], threshold=None).quantiles(x, (0.1, 0.5, 0.9))
    # no degradation -> horizon; certain degradation -> conditional quantiles
    np.testing.assert_allclose(q[:, 0], [30, 30, 30])
    np.testing.assert_allclose(q[:, 1], [2, 5, 10], rtol=1e-9)
    # p = 0.6: level 0.5 -> conditional level 0.833 (log-linear between 5 and 10 days), 0.9 -> horizon
    assert 5 < q[1, 2] < 10 and q[2, 2] == 30
    assert np.all(np.diff(q, axis=0) >= 0)


def test_gate_threshold_gives_conditional_quantiles() -> None:
    x = np.zeros((2, 1))
    q = _model([0.3, 0.6], threshold=0.5).quantiles(x, (0.1, 0.5, 0.9))
    np.testing.assert_allclose(q[:, 1], [2, 5, 10], rtol=1e-9)
    np.testing.assert_allclose(q[1:, 0], [30, 30])  # p < threshold: mixture (median at the horizon)
    assert q.shape == (3, 2) and _model([0.5], 0.5).quantiles(np.zeros((0, 1)), (0.5,)).shape == (1, 0)


def test_interp_rows_clamps_levels() -> None:
    vals = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]])
    lv = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(_interp_rows(np.array([0.0, 0.7]), lv, vals), [0.0, 25.0])


def test_two_stage_in_registry_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 600
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    ttf = np.where(x[:, 0] > 0.3, np.clip(15 - 6 * x[:, 0], 0.5, 29), 30.0)
    settings = TrainSettings(max_iter=10, min_samples_leaf=10, threads=1)
    models = tiny_models()
    models.update(fit_two_stage_ttf(x, ttf, settings))
    assert all(isinstance(models[f"ttf_q{q}"], TTFQuantile) for q in (10, 50, 90))
    save_version(tmp_path, models, {"ttf_horizon_days": 30.0}, version="v1")
    bundle = load_version(tmp_path, "v1")
    out = bundle.predict(x)
    assert set(out) == {"probability", "ttf_q10", "ttf_q50", "ttf_q90"}
    assert np.all(out["ttf_q10"] <= out["ttf_q50"]) and np.all(out["ttf_q50"] <= out["ttf_q90"])
    assert np.all((out["ttf_q10"] >= 0) & (out["ttf_q90"] <= 30))
    # the batched path gives what each artifact predicts on its own
    for q in (10, 50, 90):
        np.testing.assert_allclose(out[f"ttf_q{q}"], bundle.models[f"ttf_q{q}"].predict(x))
    # degrading samples get a short TTF, healthy ones the horizon
    deg = ttf < 30
    assert np.median(out["ttf_q50"][deg]) < 20 and np.median(out["ttf_q50"][~deg]) == 30


def test_fit_models_falls_back_to_censored_without_both_sides_of_the_horizon() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 5))
    y = (x[:, 0] > 0).astype(int)
    settings = TrainSettings(max_iter=5, min_samples_leaf=5, threads=1)
    models = fit_models(x, y, np.full(100, 5.0), x, y, settings)
    assert not isinstance(models["ttf_q50"], TTFQuantile)


class _Rows:
    """A conditional model whose value depends on the row, recording the rows it was asked for."""

    def __init__(self, base: float) -> None:
        self.base = base
        self.seen: list[np.ndarray] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.seen.append(x[:, 0].copy())
        return np.log1p(self.base + x[:, 0])


def _all_rows_quantiles(m: TwoStageTTF, x: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """The quantiles with the conditional models run on every row (the computation before the skip)."""
    p = m.gate_probability(x)
    cl = m.conditional_log(x)
    lv = np.asarray(m.levels)
    out = np.empty((len(levels), x.shape[0]))
    for i, a in enumerate(levels):
        inside = p > a
        val = np.where(
            inside, np.expm1(_interp_rows(np.where(inside, a / np.maximum(p, 1e-12), 1.0), lv, cl)), 30.0
        )
        if m.threshold is not None:
            val = np.where(p >= m.threshold, np.expm1(_interp_rows(np.full(len(p), a), lv, cl)), val)
        out[i] = np.clip(val, 0.0, 30.0)
    out.sort(axis=0)
    return out


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_healthy_rows_skip_the_conditional_models_with_the_same_quantiles(threshold: float | None) -> None:
    rng = np.random.default_rng(7)
    p = np.concatenate([np.zeros(40), rng.uniform(0, 0.1, 30), rng.uniform(0, 1, 30)])
    x = rng.uniform(0, 20, (len(p), 2))
    levels = (0.1, 0.5, 0.9)
    cond = [_Rows(1.0), _Rows(3.0), _Rows(8.0)]
    m = TwoStageTTF(_Gate(p), cond, 30.0, threshold)
    got = m.quantiles(x, levels)
    asked = cond[0].seen[-1]
    need = (p > 0.1) | (p >= threshold if threshold is not None else False)
    np.testing.assert_array_equal(np.sort(asked), np.sort(x[need, 0]))  # only rows that read them
    np.testing.assert_array_equal(got, _all_rows_quantiles(m, x, levels))
    m_none = TwoStageTTF(_Gate(np.zeros(5)), cond, 30.0, threshold)
    np.testing.assert_array_equal(m_none.quantiles(np.ones((5, 2)), levels), np.full((3, 5), 30.0))
