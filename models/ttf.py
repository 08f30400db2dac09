"""Two-stage time-to-failure model: "is it degrading?" x "how long, given it is?".

Why: a single quantile regressor on TTF censored at the horizon sees mostly healthy samples (target =
horizon), so its median stays at the horizon until symptoms are strong. Here

- a *gate* classifier estimates ``p = P(TTF <= horizon)`` (the turbine is degrading);
- *conditional* quantile regressors, fitted only on samples with ``TTF <= horizon``, predict
  ``log1p(TTF)`` at levels 0.1 / 0.5 / 0.9 (log scale: errors of a day matter at 3 days, not at 25);
- quantiles combine both. With ``threshold`` set, a turbine whose ``p >= threshold`` gets the
  conditional quantiles and the others the mixture quantiles (below); with ``threshold=None`` only
  the mixture ``p * conditional + (1 - p) * (mass beyond the horizon)`` is used: its quantile at
  level ``a`` is the conditional quantile at ``a / p`` if ``a < p``, else the horizon.

The registry keeps one artifact per quantile (``ttf_q10/q50/q90.joblib``), each a :class:`TTFQuantile`
wrapping the same :class:`TwoStageTTF`; ``ModelBundle.predict`` computes all three in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Levels of the conditional quantile regressors (log1p(TTF) scale).
COND_LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)


class TwoStageTTF:
    def __init__(
        self,
        gate: Any,
        cond: Sequence[Any],
        horizon: float,
        threshold: float | None = None,
        levels: Sequence[float] = COND_LEVELS,
    ) -> None:
        self.gate = gate
        self.cond = list(cond)
        self.levels = tuple(float(v) for v in levels)
        self.horizon = float(horizon)
        self.threshold = None if threshold is None else float(threshold)

    def gate_probability(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.gate.predict_proba(x)[:, 1], dtype=np.float64)

    def conditional_log(self, x: np.ndarray) -> np.ndarray:
        """``(len(levels), n)`` conditional log1p(TTF) quantiles, sorted along the level axis."""
        q = np.vstack([m.predict(x) for m in self.cond])
        q.sort(axis=0)
        return q

    def quantiles(self, x: np.ndarray, levels: Sequence[float]) -> np.ndarray:
        """``(len(levels), n)`` TTF quantiles in days, within ``[0, horizon]``."""
        n = x.shape[0]
        if n == 0:
            return np.zeros((len(levels), 0))
        if x.dtype == np.float64:  # one C-ordered copy of a column selection, not one per model call
            x = np.ascontiguousarray(x)
        p = self.gate_probability(x)
        lv = np.asarray(self.levels)
        # The conditional quantiles matter only where some level falls inside the gate's mass (p > a) or
        # where the threshold rule reads them; elsewhere every quantile is the horizon. Most of a fleet is
        # healthy: its rows skip the conditional models (a tree predicts each row on its own: same values).
        need = p > min(levels) if len(levels) else np.zeros(n, dtype=bool)
        if self.threshold is not None:
            need |= p >= self.threshold
        if need.all():
            cl = self.conditional_log(x)
        else:
            cl = np.zeros((len(lv), n))
            if need.any():
                cl[:, need] = self.conditional_log(x[need])
        out = np.empty((len(levels), n))
        for i, a in enumerate(levels):
            # mixture quantile: conditional quantile at a / p where a < p, else beyond the horizon
            inside = p > a
            rel = np.where(inside, a / np.maximum(p, 1e-12), 1.0)
            mix = _interp_rows(rel, lv, cl)
            val = np.where(inside, np.expm1(mix), self.horizon)
            if self.threshold is not None:
                cond = np.expm1(_interp_rows(np.full(n, a), lv, cl))
                val = np.where(p >= self.threshold, cond, val)
            out[i] = np.clip(val, 0.0, self.horizon)
        out.sort(axis=0)
        return out


def _interp_rows(rel: np.ndarray, levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per column j: piecewise-linear interpolation of ``values[:, j]`` at level ``rel[j]`` (clamped)."""
    rel = np.clip(rel, levels[0], levels[-1])
    k = np.clip(np.searchsorted(levels, rel, side="right") - 1, 0, len(levels) - 2)
    lo, hi = levels[k], levels[k + 1]
    cols = np.arange(values.shape[1])
    v0, v1 = values[k, cols], values[k + 1, cols]
    w = (rel - lo) / (hi - lo)
    return v0 + w * (v1 - v0)


class TTFQuantile:
    """One registry artifact: the ``level`` quantile of a :class:`TwoStageTTF` (``predict`` -> days)."""

    def __init__(self, model: TwoStageTTF, level: float) -> None:
        self.model = model
        self.level = float(level)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.quantiles(x, (self.level,))[0]
