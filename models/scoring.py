"""Batch scoring: many turbines -> risk assessments with ONE predict call per model per batch.

Why batched: a scikit-learn ``predict`` has ~0.1-1 ms of fixed overhead; looping per turbine would
make a 10,000-turbine sweep take seconds instead of milliseconds (see ``bench/bench_scoring.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, N_FEATURES, FeatureWindow, WindowSnapshot, window_features
from models.policy import ReasonTable, RiskPolicy
from models.registry import ModelBundle
from models.tree_predict import accelerate

MAX_BATCH = 2048  # bounds the memory of the vectorised feature computation (~35 MB per chunk)


@dataclass
class RiskAssessment:
    """One turbine's assessment, as written to ``score_history`` / ``turbine_state``."""

    turbine_id: str
    as_of: datetime | None
    score: float
    tier: str
    probability: float | None
    ttf_days: float | None
    ttf_low_days: float | None
    ttf_high_days: float | None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    data_quality: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat() if self.as_of else None
        return d


def unknown_assessment(
    turbine_id: str,
    as_of: datetime | None,
    indicator: str,
    text: str,
    data_quality: dict[str, Any],
    model_version: str = "",
) -> RiskAssessment:
    """An ``unknown`` assessment with one reason saying why (no model, no calibration, no sensors...)."""
    return RiskAssessment(
        turbine_id=turbine_id,
        as_of=as_of,
        score=0.0,
        tier="unknown",
        probability=None,
        ttf_days=None,
        ttf_low_days=None,
        ttf_high_days=None,
        reasons=[{"indicator": indicator, "text": text, "value": None, "normal_range": None}],
        data_quality=data_quality,
        model_version=model_version,
    )


@dataclass
class FeatureRow:
    """A precomputed feature vector (e.g. from an offline sweep) with its as-of time and data quality."""

    features: np.ndarray
    as_of: datetime | None = None
    data_quality: dict[str, Any] = field(default_factory=dict)


def _opt(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _opts(a: np.ndarray) -> list[float | None]:
    """:func:`_opt` of every value of a float array (one check over the array when all are finite)."""
    values: list[float] = a.tolist()
    if np.isfinite(a).all():
        return values  # type: ignore[return-value]
    return [v if math.isfinite(v) else None for v in values]


class BatchScorer:
    """Scores ``(turbine_id, FeatureWindow | FeatureRow)`` items with a bundle and a policy."""

    def __init__(self, bundle: ModelBundle, policy: RiskPolicy | None = None) -> None:
        self.bundle = bundle
        self.policy = policy or RiskPolicy()
        self._reasons = ReasonTable(FEATURE_NAMES, bundle.normal_ranges)
        for model in bundle.models.values():  # every tree of a model in one compiled call, same values
            accelerate(model)

    def features(
        self,
        items: Sequence[tuple[str, FeatureWindow | FeatureRow]],
        snapshots: Mapping[int, WindowSnapshot] | None = None,
    ) -> np.ndarray:
        """Feature matrix of the items: every window's row gathered from its store in one pass
        (``window_features``); ``snapshots`` is accepted for older callers and not needed."""
        x = np.empty((len(items), N_FEATURES))
        win_idx = []
        windows: list[FeatureWindow] = []
        for i, (_, it) in enumerate(items):
            if isinstance(it, FeatureRow):
                x[i] = np.asarray(it.features, dtype=float)
            else:
                win_idx.append(i)
                windows.append(it)
        if win_idx:
            x[win_idx] = window_features(windows, self.bundle.normal_model)
        return x

    def score(
        self,
        items: Sequence[tuple[str, FeatureWindow | FeatureRow]],
        now: datetime | None = None,
    ) -> list[RiskAssessment]:
        """Assess every item; ``now`` enables the staleness check (defaults to wall-clock time)."""
        out: list[RiskAssessment] = []
        now = now or datetime.now(UTC)
        for start in range(0, len(items), MAX_BATCH):
            out.extend(self._score_chunk(items[start : start + MAX_BATCH], now))
        return out

    def _score_chunk(
        self, items: Sequence[tuple[str, FeatureWindow | FeatureRow]], now: datetime
    ) -> list[RiskAssessment]:
        if not items:
            return []
        snaps = {i: it.snapshot() for i, (_, it) in enumerate(items) if isinstance(it, FeatureWindow)}
        x = self.features(items, snaps)
        dqs: list[dict[str, Any]] = []
        as_ofs: list[datetime | None] = []
        for i, (_, it) in enumerate(items):
            if isinstance(it, FeatureWindow):
                dqs.append(it.data_quality(now=now, snapshot=snaps[i]))
            else:
                dqs.append(dict(it.data_quality))
            as_ofs.append(it.as_of)
        return self.score_features([tid for tid, _ in items], x, as_ofs, dqs)

    def score_features(
        self,
        turbine_ids: Sequence[str],
        x: np.ndarray,
        as_ofs: Sequence[datetime | None],
        data_quality: Sequence[dict[str, Any]],
    ) -> list[RiskAssessment]:
        """Assess precomputed feature rows (``x`` in ``FEATURE_NAMES`` order): one predict per model,
        policy over arrays. The ``data_quality`` dicts become part of the assessments (not copied)."""
        if not len(turbine_ids):
            return []
        return self.assess(turbine_ids, x, self.bundle.predict(x), as_ofs, data_quality)

    def assess(
        self,
        turbine_ids: Sequence[str],
        x: np.ndarray,
        pred: Mapping[str, np.ndarray],
        as_ofs: Sequence[datetime | None],
        data_quality: Sequence[dict[str, Any]],
    ) -> list[RiskAssessment]:
        """:meth:`score_features` once the bundle's prediction ``pred`` of ``x`` is known (the sweep
        predicts the next rows in another thread while this runs)."""
        if not len(turbine_ids):
            return []
        prob = np.asarray(pred["probability"], dtype=np.float64)
        q10, q50, q90 = (np.asarray(pred[k], dtype=np.float64) for k in ("ttf_q10", "ttf_q50", "ttf_q90"))
        decisions = self.policy.assess_batch(
            probability=prob,
            ttf_days=q50,
            ttf_low_days=q10,
            ttf_high_days=q90,
            data_quality=data_quality,
            features=x,
            reasons=self._reasons,
        )
        version = self.bundle.version
        results = []
        for tid, as_of, dq, d, p, lo, mid, hi in zip(
            turbine_ids,
            as_ofs,
            data_quality,
            decisions,
            _opts(prob),
            _opts(q10),
            _opts(q50),
            _opts(q90),
            strict=True,
        ):
            results.append(
                RiskAssessment(
                    turbine_id=tid,
                    as_of=as_of,
                    score=d.score,
                    tier=d.tier,
                    probability=p,
                    ttf_days=mid,
                    ttf_low_days=lo,
                    ttf_high_days=hi,
                    reasons=d.reasons,
                    data_quality=dq,
                    model_version=version,
                )
            )
        return results
