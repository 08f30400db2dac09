"""scorer/drift.py sampling: the feature rows of due turbines are computed in chunks of MAX_BATCH
(bounded transient memory) and kept exactly as one computation would keep them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

import scorer.drift as drift
from models.drift import WARM_COLUMN, WARM_COVERAGE_HOURS
from models.features import FEATURE_NAMES
from scorer.settings import ScorerSettings

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WARM = list(FEATURE_NAMES).index(WARM_COLUMN)


@dataclass
class _Window:
    i: int
    as_of: datetime | None


@dataclass
class _State:
    turbine_id: str
    site_id: str
    window: _Window


@dataclass
class _Assessment:
    data_quality: dict[str, Any] = field(default_factory=dict)


def _features(chunks: list[int]) -> Any:
    def fake(windows: list[_Window], normal_model: Any) -> np.ndarray:
        chunks.append(len(windows))
        x = np.zeros((len(windows), len(FEATURE_NAMES)))
        x[:, 0] = [w.i for w in windows]
        x[:, WARM] = [WARM_COVERAGE_HOURS if w.i % 3 else 0.0 for w in windows]  # every 3rd is cold
        return x

    return fake


def _scored(n: int) -> list[tuple[_State, _Assessment]]:
    return [
        (_State(f"T{i:03d}", f"S{i % 2}", _Window(i, T0 + timedelta(hours=i))), _Assessment())
        for i in range(n)
    ]


def _kept(mon: drift.DriftMonitor) -> dict[str, list[tuple[float, str, float]]]:
    return {site: [(ts, tid, float(r[0])) for ts, tid, r in rows] for site, rows in mon._rows.items()}


def test_observe_computes_features_in_chunks_and_keeps_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    scored = _scored(11)
    chunks: list[int] = []
    monkeypatch.setattr(drift, "window_features", _features(chunks))
    whole = drift.DriftMonitor(ScorerSettings())
    kept_whole = whole.observe(scored, None)  # type: ignore[arg-type]
    assert chunks == [11]
    chunks.clear()
    monkeypatch.setattr(drift, "MAX_BATCH", 4)
    chunked = drift.DriftMonitor(ScorerSettings())
    assert chunked.observe(scored, None) == kept_whole == 7  # type: ignore[arg-type]
    assert chunks == [4, 4, 3]
    assert _kept(chunked) == _kept(whole)
    assert chunked._last_sample == whole._last_sample and len(chunked._last_sample) == 11
    for rows in chunked._rows.values():
        assert all(r.dtype == np.float32 for _, _, r in rows)
