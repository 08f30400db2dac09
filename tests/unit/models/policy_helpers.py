"""Test helper: one turbine through the policy's only path, ``RiskPolicy.assess_batch`` (a batch of one)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES
from models.policy import PolicyDecision, ReasonTable, RiskPolicy


def assess_one(
    policy: RiskPolicy,
    *,
    probability: float | None,
    ttf_days: float | None = None,
    ttf_low_days: float | None = None,
    ttf_high_days: float | None = None,
    data_quality: Any = None,
    indicators: Mapping[str, float] | None = None,
    normal_ranges: Mapping[str, Sequence[float]] | None = None,
) -> PolicyDecision:
    """Score, tier and reasons of one turbine (features not in ``indicators`` are NaN; None: NaN)."""
    x = np.full((1, len(FEATURE_NAMES)), np.nan)
    for name, v in (indicators or {}).items():
        x[0, FEATURE_NAMES.index(name)] = v

    def arr(v: float | None) -> np.ndarray:
        return np.array([math.nan if v is None else v], dtype=np.float64)

    (d,) = policy.assess_batch(
        probability=arr(probability),
        ttf_days=arr(ttf_days),
        ttf_low_days=arr(ttf_low_days),
        ttf_high_days=arr(ttf_high_days),
        data_quality=[data_quality],
        features=x,
        reasons=ReasonTable(FEATURE_NAMES, normal_ranges),
    )
    return d
