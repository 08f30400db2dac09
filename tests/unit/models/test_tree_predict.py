"""models.tree_predict: accelerated histogram gradient boosting gives scikit-learn's values to the bit."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.frozen import FrozenEstimator

from models.tree_predict import _FastCalibrated, _FastRaw, accelerate, supported
from models.ttf import TTFQuantile, TwoStageTTF

pytestmark = pytest.mark.unit


def _data(n: int = 600, f: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values: both missing_go_to_left sides learnt
    y = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(scale=0.3, size=n)
    return x, y


def _hostile_rows(est: object, f: int) -> np.ndarray:
    """Random rows, NaN / +-inf / huge values, and every split threshold exactly (the <= edge)."""
    rng = np.random.default_rng(1)
    rows = [rng.normal(size=(300, f)) * 3]
    for v in (np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, -0.0):
        rows.append(np.full((1, f), v))
    nodes = np.concatenate([p[0].nodes for p in est._predictors])  # type: ignore[attr-defined]
    splits = nodes[nodes["is_leaf"] == 0]
    edge = rng.normal(size=(len(splits), f))
    edge[np.arange(len(splits)), splits["feature_idx"]] = splits["num_threshold"]
    rows.append(edge)
    mixed = rng.normal(size=(200, f))
    mixed[rng.random(mixed.shape) < 0.3] = np.nan
    rows.append(mixed)
    return np.vstack(rows)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def test_classifier_regressor_and_calibrated_same_values_to_the_bit() -> None:
    x, y = _data()
    clf = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x, y > 0)
    reg = HistGradientBoostingRegressor(loss="quantile", quantile=0.9, max_iter=40, random_state=0).fit(x, y)
    cal = CalibratedClassifierCV(FrozenEstimator(copy.deepcopy(clf)), method="sigmoid").fit(x, y > 0)
    rows = _hostile_rows(clf, x.shape[1])
    ref = {
        "proba": clf.predict_proba(rows),
        "decision": clf.decision_function(rows),
        "reg": reg.predict(rows),
        "cal": cal.predict_proba(rows),
    }
    assert accelerate(clf) == 1 and accelerate(reg) == 1 and accelerate(cal) == 1
    assert accelerate(clf) == 0  # once
    assert isinstance(clf.__dict__["_raw_predict"], _FastRaw)
    got = {
        "proba": clf.predict_proba(rows),
        "decision": clf.decision_function(rows),
        "reg": reg.predict(rows),
        "cal": cal.predict_proba(rows),
    }
    for name in ref:
        assert _same(ref[name], got[name]), name
    assert isinstance(cal.__dict__["predict_proba"], _FastCalibrated)  # its glue skipped too
    assert _same(np.asarray(cal.predict_proba(rows.tolist())), ref["cal"])  # scikit-learn's path
    for other in (pickle.loads(pickle.dumps(cal)), copy.deepcopy(cal)):
        assert other.__dict__["predict_proba"].model is other
        assert _same(other.predict_proba(rows), ref["cal"])
    with pytest.raises(ValueError, match="features"):
        cal.predict_proba(rows[:, :5])
    for chunk in (rows[:1], np.asfortranarray(rows), rows[::3]):  # one row, Fortran order, a view
        assert _same(type(clf)._raw_predict(clf, chunk), clf._raw_predict(chunk))
    with pytest.raises(ValueError, match="features"):  # scikit-learn's own validation stays
        clf.predict_proba(rows[:, :5])


def test_two_stage_ttf_and_copies() -> None:
    x, y = _data(seed=2)
    gate = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y > 0.5)
    cond = [
        HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=20, random_state=0).fit(x, y)
        for q in (0.1, 0.5, 0.9)
    ]
    model = TTFQuantile(TwoStageTTF(gate, cond, 30.0, threshold=0.5), 0.5)
    rows = _hostile_rows(gate, x.shape[1])
    ref = model.model.quantiles(rows, (0.1, 0.5, 0.9))
    assert accelerate(model) == 4
    assert _same(ref, model.model.quantiles(rows, (0.1, 0.5, 0.9)))
    for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert isinstance(other.model.gate.__dict__["_raw_predict"], _FastRaw)
        assert other.model.gate.__dict__["_raw_predict"].est is other.model.gate
        assert _same(ref, other.model.quantiles(rows, (0.1, 0.5, 0.9)))


def test_calibrated_classifiers_it_does_not_cover_keep_scikit_learns_predict_proba() -> None:
    x, y = _data(seed=5)
    clf = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y > 0)
    rows = _hostile_rows(clf, x.shape[1])
    iso = CalibratedClassifierCV(FrozenEstimator(copy.deepcopy(clf)), method="isotonic").fit(x, y > 0)
    cv = CalibratedClassifierCV(HistGradientBoostingClassifier(max_iter=10), method="sigmoid", cv=3)
    cv.fit(x, y > 0)  # three calibrated classifiers, averaged
    multi = CalibratedClassifierCV(HistGradientBoostingClassifier(max_iter=10), method="sigmoid", cv=2)
    multi.fit(x, np.digitize(y, [-0.5, 0.5]))  # three classes: not accelerated at all
    for model, fast in ((iso, False), (cv, True), (multi, False)):
        ref = model.predict_proba(rows)
        accelerate(model)
        assert isinstance(model.__dict__.get("predict_proba"), _FastCalibrated) is fast
        assert _same(model.predict_proba(rows), ref)


def test_what_it_does_not_cover_is_left_to_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.integers(0, 5, 300), rng.normal(size=300)])
    cat = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]).fit(x, x[:, 0] > 2)
    multi = HistGradientBoostingClassifier(max_iter=10).fit(x, rng.integers(0, 3, 300))
    unfitted = HistGradientBoostingRegressor()
    for est in (cat, multi, unfitted, object(), None):
        assert not supported(est)
        assert accelerate(est) == 0
    assert "_raw_predict" not in cat.__dict__


def test_inputs_the_fast_path_does_not_take_get_scikit_learns_validation() -> None:
    """Only a plain 2-D float64 ndarray with rows and the fitted feature count skips scikit-learn's
    checks; every other input is validated (converted or refused) exactly as scikit-learn does."""
    import pandas as pd

    x, y = _data(seed=4)
    clf = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, y > 0)
    rows = _hostile_rows(clf, x.shape[1])
    ref = clf.predict_proba(rows)
    accelerate(clf)
    for same in (rows, rows.tolist(), rows[::2], np.asfortranarray(rows)):
        want = ref if len(same) == len(rows) else ref[::2]
        assert _same(np.asarray(clf.predict_proba(same)), want)
    with np.errstate(over="ignore"):  # +-1e308 -> +-inf
        f32 = rows.astype(np.float32)  # converted to float64 by scikit-learn, as without acceleration
    assert _same(clf.predict_proba(f32), clf.predict_proba(f32.astype(np.float64)))
    for bad, match in ((rows[:0], "0 sample"), (rows[:, :3], "features"), (rows[0], "2D array")):
        with pytest.raises(ValueError, match=match):
            clf.predict_proba(bad)
    named = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(
        pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]), y > 0
    )
    accelerate(named)
    with pytest.warns(UserWarning, match="feature names"):  # scikit-learn's own check still runs
        named.predict_proba(rows)
