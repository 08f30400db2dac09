"""Raw predictions of scikit-learn's histogram gradient boosting: every tree of a model in ONE compiled
call, the same values to the last bit.

Why: ``HistGradientBoosting*._raw_predict`` calls each tree's predictor from Python (200 trees per
model, 5 models per bundle: ~1,000 calls per predict, each with its own allocation and OpenMP region).
On a sweep chunk of 1,024 rows that is ~2.6 ms of fixed cost per model plus a per-row traversal slower
than a flat loop. Here all trees of a model are flattened once into node arrays and one numba kernel
walks them row by row.

Same values: per row the sum starts at 0, adds the model's baseline, then each tree's leaf value in the
order of ``_predictors`` (scikit-learn's order of additions: ``raw += baseline``, then ``raw += tree``);
a node sends NaN to its ``missing_go_to_left`` side and ``x <= threshold`` left, as
``sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx``; fastmath is off. Only models this covers are
accelerated (numerical features, no preprocessor, one tree per iteration); any other is left to
scikit-learn. ``tests/unit/models/test_tree_predict.py`` checks equality on real and hostile rows.

How: :func:`accelerate` gives an estimator an instance attribute ``_raw_predict`` (scikit-learn's
``predict`` / ``predict_proba`` / ``decision_function`` call it, a ``CalibratedClassifierCV`` through
its estimator's ``decision_function``): input validation, link functions and calibration stay
scikit-learn's own. The scorer's loaded bundles are accelerated (``models.scoring.BatchScorer``);
an accelerated estimator must not be saved again (the registry saves freshly trained ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numba import njit


def _jit(fn: Any) -> Any:
    """``numba.njit(cache=True, nogil=True)`` (a process compiles once when no cache dir is writable)."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


@_jit
def _forest_raw(  # pragma: no cover - compiled
    x: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    missing_left: np.ndarray,
    children: np.ndarray,
    value: np.ndarray,
    baseline: float,
    out: np.ndarray,
) -> None:
    n = x.shape[0]
    for i in range(n):
        out[i] = 0.0
        out[i] += baseline
    # tree by tree over all rows: one tree's nodes stay in cache, the rows' walks are independent
    # (the processor overlaps them); each row still adds its leaves in tree order
    for t in range(roots.shape[0]):
        root = roots[t]
        for i in range(n):
            node = root
            f = feature[node]
            while f >= 0:  # a leaf's feature is -1
                v = x[i, f]
                # NaN compares False: it goes to its node's missing_go_to_left side
                if v <= threshold[node] or (missing_left[node] and np.isnan(v)):
                    node = children[2 * node]
                else:
                    node = children[2 * node + 1]
                f = feature[node]
            out[i] += value[node]


class FlatForest:
    """All trees of one fitted model as flat node arrays: a node's split feature (-1: a leaf), its
    threshold, its NaN side, its two children side by side (absolute indexes), its leaf value. A walk
    step reads two small int32 arrays and the threshold (was seven arrays, int64 indexes and a leaf
    flag: ~20 % less time per row, load 4)."""

    def __init__(self, predictors: Iterable[Any]) -> None:
        nodes = [p.nodes for p in predictors]
        sizes = np.array([len(n) for n in nodes], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        allnodes: Any = np.concatenate(nodes) if nodes else np.empty(0)
        if int(sizes.sum()) >= 2**30:  # pragma: no cover - 2 children per node in int32
            raise ValueError(f"{int(sizes.sum())} nodes: too many for the flat forest")
        base = np.repeat(offsets, sizes)
        leaf = allnodes["is_leaf"] != 0
        self.roots = offsets
        self.feature = np.where(leaf, -1, allnodes["feature_idx"]).astype(np.int32)
        self.threshold = np.ascontiguousarray(allnodes["num_threshold"], dtype=np.float64)
        self.missing_left = np.ascontiguousarray(allnodes["missing_go_to_left"] != 0)
        children = np.empty(2 * len(base), dtype=np.int32)
        children[0::2] = allnodes["left"].astype(np.int64) + base
        children[1::2] = allnodes["right"].astype(np.int64) + base
        self.children = children
        self.value = np.ascontiguousarray(allnodes["value"], dtype=np.float64)

    def raw(self, x: np.ndarray, baseline: float) -> np.ndarray:
        """Per row of ``x`` (float64, validated): baseline + every tree's leaf value, in tree order."""
        out = np.empty(x.shape[0], dtype=np.float64)
        _forest_raw(
            x,
            self.roots,
            self.feature,
            self.threshold,
            self.missing_left,
            self.children,
            self.value,
            baseline,
            out,
        )
        return out


class _FastRaw:
    """An estimator's ``_raw_predict`` computed by :class:`FlatForest` (same signature, same result).

    The forest is flattened by :func:`accelerate` (else on first use); a copy or pickle of the estimator
    carries a new one, flattened on first use."""

    def __init__(self, est: Any) -> None:
        self.est = est
        self._forest: tuple[FlatForest, float, Any] | None = None

    def _flat(self) -> tuple[FlatForest, float, Any]:
        if self._forest is None:
            est = self.est
            base = np.asarray(est._baseline_prediction)
            forest = FlatForest(p[0] for p in est._predictors)
            self._forest = (forest, float(base.astype(np.float64).reshape(-1)[0]), base.dtype)
        return self._forest

    def __call__(self, X: Any, n_threads: int | None = None) -> np.ndarray:
        est = self.est
        if getattr(est, "_in_fit", False):  # never during a fit: scikit-learn's own path
            return type(est)._raw_predict(est, X, n_threads)
        forest, baseline, dtype = self._flat()
        # scikit-learn's validation (float64, feature count), skipped where it would return X itself
        x = X if _validated(est, X) else est._preprocess_X(X, reset=False)
        raw = np.zeros((x.shape[0], 1), dtype=dtype, order="F")
        raw[:, 0] = forest.raw(np.ascontiguousarray(x, dtype=np.float64), baseline)
        return raw

    def __reduce__(self) -> Any:
        return (_FastRaw, (self.est,))


class _FastCalibrated:
    """A sigmoid-calibrated binary classifier's ``predict_proba`` over accelerated estimators without
    scikit-learn's per-call glue (fitted checks whose tags deep-copy the frozen estimator, a label
    encoder fitted per call, validation: ~3 ms per call, 30 ms per 10,000-turbine sweep).

    Same values: each calibrated classifier's decision is its estimator's ``_raw_predict`` raveled (the
    binary ``decision_function``; the positive class is the last, so no sign flip), its probability
    ``expit(-(a * d + b))`` (``_SigmoidCalibration.predict``), the negative class ``1 - p``, the
    ``(1, 1 + 1e-5]`` clip, then the mean over the calibrated classifiers from zeros, as
    ``CalibratedClassifierCV.predict_proba`` and ``_CalibratedClassifier.predict_proba`` compute them.
    Any other model, or an input :func:`_validated` does not take, goes to scikit-learn's own method.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, X: Any) -> np.ndarray:
        model = self.model
        parts = _sigmoid_parts(model)
        if parts is None or not all(_validated(est, X) for est, _ in parts):
            return np.asarray(type(model).predict_proba(model, X))
        from scipy.special import expit

        n = X.shape[0]
        mean = np.zeros((n, 2))
        for est, cal in parts:
            decision = est._raw_predict(X).ravel()
            proba = np.zeros((n, 2))
            proba[:, 1] = expit(-(cal.a_ * decision + cal.b_))
            proba[:, 0] = 1.0 - proba[:, 1]
            proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
            mean += proba
        mean /= len(parts)
        return mean

    def __reduce__(self) -> Any:
        return (_FastCalibrated, (self.model,))


def _sigmoid_parts(model: Any) -> list[tuple[Any, Any]] | None:
    """(accelerated estimator, sigmoid calibrator) of each calibrated classifier of a fitted binary
    sigmoid ``CalibratedClassifierCV`` whose estimators are accelerated and know both classes in its
    order; None for anything else."""
    try:
        from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
    except ImportError:  # pragma: no cover - scikit-learn moved it
        return None
    if type(model) is not CalibratedClassifierCV or getattr(model, "method", None) != "sigmoid":
        return None
    classes = getattr(model, "classes_", None)
    ccs = getattr(model, "calibrated_classifiers_", None)
    if classes is None or len(classes) != 2 or not ccs:
        return None
    out = []
    for cc in ccs:
        est = getattr(cc, "estimator", None)
        est = getattr(est, "estimator", est)  # a FrozenEstimator's own
        cals = getattr(cc, "calibrators", None) or []
        if (
            getattr(cc, "method", None) != "sigmoid"
            or not isinstance(vars(est).get("_raw_predict") if hasattr(est, "__dict__") else None, _FastRaw)
            or len(cals) != 1
            or type(cals[0]) is not _SigmoidCalibration
            or list(getattr(est, "classes_", ())) != list(classes)
            or list(getattr(cc, "classes", ())) != list(classes)
        ):
            return None
        out.append((est, cals[0]))
    return out


def _validated(est: Any, X: Any) -> bool:
    """True when scikit-learn's input validation of ``X`` (``validate_data(reset=False)``, float64,
    NaN allowed) would pass and return ``X`` itself: a plain 2-D float64 ndarray with rows and the
    fitted feature count, for an estimator fitted without feature names (one with names checks them and
    may warn). ~1 ms of Python per call (narwhals' dataframe probes, tags, check_array) skipped; any
    other input goes through scikit-learn's own checks and errors."""
    return (
        type(X) is np.ndarray
        and X.dtype == np.float64
        and X.ndim == 2
        and X.shape[0] >= 1
        and X.shape[1] == getattr(est, "n_features_in_", -1)
        and not hasattr(est, "feature_names_in_")
    )


def supported(est: Any) -> bool:
    """A fitted histogram gradient boosting model this module computes exactly."""
    try:
        from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
    except ImportError:  # pragma: no cover - scikit-learn moved it
        return False
    if not isinstance(est, BaseHistGradientBoosting) or not hasattr(est, "_predictors"):
        return False
    if getattr(est, "_preprocessor", None) is not None or getattr(est, "n_trees_per_iteration_", 0) != 1:
        return False
    cats = getattr(est, "is_categorical_", None)
    if cats is not None and np.any(cats):
        return False
    if any(len(p) != 1 for p in est._predictors):
        return False
    return all(not np.any(p[0].nodes["is_categorical"]) for p in est._predictors)


def accelerate(model: Any) -> int:
    """Accelerate every supported estimator reachable from ``model`` (itself, a calibrated
    classifier's estimators, a wrapped (frozen) estimator, a two-stage TTF's gate and conditional
    models); returns how many. A binary sigmoid ``CalibratedClassifierCV`` over accelerated
    estimators also gets :class:`_FastCalibrated` as its ``predict_proba`` (not counted)."""
    done = 0
    for est in _estimators(model):
        if not supported(est) or isinstance(vars(est).get("_raw_predict"), _FastRaw):
            continue
        fast = est._raw_predict = _FastRaw(est)
        fast._flat()  # flattened now (at model load), not in the first predict (~18 ms for the bundle)
        done += 1
    for m in _estimators(model):  # then a calibrated classifier over them: its glue skipped too
        if _sigmoid_parts(m) is not None and not isinstance(vars(m).get("predict_proba"), _FastCalibrated):
            m.predict_proba = _FastCalibrated(m)
    return done


def _estimators(model: Any) -> Iterable[Any]:
    seen: set[int] = set()
    todo = [model]
    while todo:
        m = todo.pop()
        if m is None or id(m) in seen:
            continue
        seen.add(id(m))
        yield m
        for cc in getattr(m, "calibrated_classifiers_", None) or ():
            todo.append(getattr(cc, "estimator", None))
        todo.append(getattr(m, "estimator", None))  # FrozenEstimator, a calibrated classifier's own
        inner = getattr(m, "model", None)  # models.ttf.TTFQuantile
        if inner is not None:
            todo.append(inner)
        gate = getattr(m, "gate", None)  # models.ttf.TwoStageTTF
        if gate is not None:
            todo.append(gate)
            todo.extend(getattr(m, "cond", None) or ())


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the kernel."""
    x = np.zeros((1, 1))
    roots = np.zeros(1, dtype=np.int64)
    leaf = np.full(1, -1, dtype=np.int32)
    children = np.zeros(2, dtype=np.int32)
    _forest_raw(x, roots, leaf, np.zeros(1), np.zeros(1, bool), children, np.zeros(1), 0.0, np.empty(1))
