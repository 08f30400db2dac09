"""BatchScorer: one predict call per model per batch, complete assessments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from common.contracts import TIERS
from models.features import FEATURE_NAMES, FeatureWindow
from models.policy import load_policy
from models.registry import load_version
from models.scoring import BatchScorer, FeatureRow
from tests.unit.models._synth import events_of, synth_fleet

pytestmark = pytest.mark.unit


class _Counting:
    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.inner.predict(x)  # type: ignore[attr-defined]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.inner.predict_proba(x)  # type: ignore[attr-defined]


def test_batch_scoring_one_call_per_model(registry: Path) -> None:
    bundle = load_version(registry, "v1")
    counters = {k: _Counting(v) for k, v in bundle.models.items() if k != "normal_model"}
    bundle.models.update(counters)
    frame, _ = synth_fleet(n_turbines=3, days=3, failures_per_turbine=0)
    items = []
    for tid, group in frame.groupby("turbine_id"):
        w = FeatureWindow(str(tid))
        for rec in events_of(group):
            w.update(rec)
        items.append((str(tid), w))
    items.append(("WT-EMPTY", FeatureWindow("WT-EMPTY")))
    items.append(("WT-ROW", FeatureRow(features=np.zeros(len(FEATURE_NAMES)))))
    now = items[0][1].as_of + timedelta(minutes=5)  # type: ignore[union-attr,operator]
    out = BatchScorer(bundle, load_policy()).score(items, now=now)
    assert [c.calls for c in counters.values()] == [1, 1, 1, 1]
    assert [a.turbine_id for a in out] == ["WT-001", "WT-002", "WT-003", "WT-EMPTY", "WT-ROW"]
    for a in out:
        assert a.tier in TIERS
        assert 0 <= a.score <= 100
        assert a.model_version == "v1"
        assert a.reasons, a
        assert all(set(r) == {"indicator", "text", "value", "normal_range"} for r in a.reasons)
    assert out[0].as_of == items[0][1].as_of  # type: ignore[union-attr]
    assert out[0].tier != "unknown"
    assert out[3].tier == "unknown" and out[4].tier == "unknown"
    assert out[0].ttf_low_days <= out[0].ttf_days <= out[0].ttf_high_days  # type: ignore[operator]
    d = out[0].to_dict()
    assert isinstance(d["as_of"], str) and d["data_quality"]["events_in_window"] > 0


def test_stale_window_is_unknown(registry: Path) -> None:
    bundle = load_version(registry, "v1")
    w = FeatureWindow("WT-1")
    frame, _ = synth_fleet(n_turbines=1, days=2, failures_per_turbine=0)
    for rec in events_of(frame):
        w.update(rec)
    (a,) = BatchScorer(bundle).score([("WT-1", w)], now=w.as_of + timedelta(days=1))  # type: ignore[operator]
    assert a.tier == "unknown"
    assert a.reasons[0]["indicator"] == "stale_data"
