"""The vectorised policy path (``RiskPolicy.assess_batch`` / ``ReasonTable`` / ``BatchScorer``) gives
exactly what the per-turbine reference (``RiskPolicy.assess`` + ``build_reasons``) gives: same scores,
tiers, reasons (texts, values, ranges, order) and data-quality contents, on seeded random inputs that
hit ties, NaN/inf values and ranges, missing ranges, zero-width ranges and every data-quality rule."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.features import FEATURE_NAMES, KEY_SIGNALS, FeatureWindow
from models.policy import (
    SLOPE_MIN_HISTORY_HOURS,
    PolicyConfig,
    ReasonTable,
    RiskPolicy,
    build_reasons,
    load_policy,
)
from models.registry import load_version
from models.scoring import BatchScorer, FeatureRow, RiskAssessment, _opt
from tests.unit.models._synth import events_of, synth_fleet

pytestmark = pytest.mark.unit

REASON_COLS = [
    n
    for n in FEATURE_NAMES
    if n.endswith(("__resid_24h", "__slope_72h", "__resid_slope_72h"))
    or n
    in (
        "vibration_mm_s__max_24h",
        "pitch_hydraulic_pressure_bar__mean_24h",
        "power_curve_resid_24h",
        "alarms_24h",
    )
]


def _ranges(rng: np.random.Generator) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name in REASON_COLS:
        r = rng.random()
        if r < 0.1:
            continue  # no range: never a reason
        lo = float(rng.choice([-2.0, -1.0, 0.0, 0.5]))
        hi = lo + float(rng.choice([0.0, 1e-9, 1.0, 2.0, 4.0]))  # zero / tiny widths -> 1e-6
        if r < 0.13:
            lo = math.nan
        elif r < 0.16:
            hi = math.inf
        out[name] = [lo, hi]
    out["unrelated_feature"] = [0.0, 1.0]
    return out


def _matrix(rng: np.random.Generator, n: int) -> np.ndarray:
    # values on a coarse grid so that equal exceedances (ties) are common
    x = rng.choice(np.arange(-6.0, 8.0, 0.5), size=(n, len(FEATURE_NAMES)))
    special = rng.random(x.shape)
    x[special < 0.05] = np.nan
    x[(special >= 0.05) & (special < 0.06)] = np.inf
    x[(special >= 0.06) & (special < 0.07)] = -np.inf
    x[(special >= 0.07) & (special < 0.09)] = rng.normal(
        0, 5, size=int(((special >= 0.07) & (special < 0.09)).sum())
    )
    return x


def _dq(rng: np.random.Generator) -> dict[str, Any]:
    r = rng.random()
    if r < 0.05:
        return {}
    if r < 0.1:
        return {"events_in_window": 0, "last_event_time": None}
    dq: dict[str, Any] = {
        "events_in_window": int(rng.integers(1, 1000)),
        "last_event_time": "2026-01-01T00:00:00+00:00",
        "seconds_since_last_event": float(rng.choice([0.0, 600.0, 7200.0, 7201.0, 90000.0])),
        "missing_share_24h": float(rng.choice([0.0, 0.2, 0.5, 0.51, 1.0])),
        "coverage_hours_24h": int(rng.choice([0, 5, 6, 24])),
        "frozen_signals": {},
        "silent_key_signals_24h": [],
    }
    if rng.random() < 0.2:
        dq["frozen_signals"] = {str(rng.choice([*KEY_SIGNALS, "wind_speed_ms"])): 7.25}
    if rng.random() < 0.2:
        dq["silent_key_signals_24h"] = [str(rng.choice([*KEY_SIGNALS, "ambient_temp_c"]))]
    return dq


def _policies() -> list[RiskPolicy]:
    base = PolicyConfig()
    return [
        RiskPolicy(),
        load_policy(),
        RiskPolicy(
            PolicyConfig.model_validate(
                {
                    "reasons": {"max_reasons": 5},
                    "data_quality": {"frozen_key_signal": "cap", "silent_key_signal": "cap"},
                    "score": {"ttf_weight": 1.0},
                }
            )
        ),
        RiskPolicy(base.model_copy(update={"reasons": base.reasons.model_copy(update={"max_reasons": 1})})),
    ]


@pytest.mark.parametrize("seed", range(6))
def test_assess_batch_matches_per_turbine_assess(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    ranges = _ranges(rng)
    x = _matrix(rng, n)
    prob = rng.choice([0.0, 0.05, 0.2, 0.5, 0.8, 1.0, 0.123456, math.nan], size=n)
    prob = np.where(rng.random(n) < 0.3, rng.random(n), prob)
    q50 = rng.choice([0.0, 1.0, 2.0, 5.5, 29.999999999, 30.0, 45.0, math.nan, math.inf], size=n)
    q10 = q50 - rng.random(n)
    q90 = q50 + rng.random(n)
    dqs = [_dq(rng) for _ in range(n)]
    for policy in _policies():
        table = ReasonTable(FEATURE_NAMES, ranges)
        got = policy.assess_batch(
            probability=prob,
            ttf_days=q50,
            ttf_low_days=q10,
            ttf_high_days=q90,
            data_quality=dqs,
            features=x,
            reasons=table,
        )
        for i in range(n):
            ref = policy.assess(
                probability=float(prob[i]),
                ttf_days=float(q50[i]),
                ttf_low_days=float(q10[i]),
                ttf_high_days=float(q90[i]),
                data_quality=dqs[i],
                indicators=dict(zip(FEATURE_NAMES, x[i].tolist(), strict=True)),
                normal_ranges=ranges,
            )
            assert got[i].score == ref.score, i
            assert got[i].tier == ref.tier, i
            assert got[i].reasons == ref.reasons, i


def test_reason_table_matches_build_reasons_including_ties() -> None:
    rng = np.random.default_rng(42)
    ranges = {n: [0.0, 1.0] for n in REASON_COLS}  # identical ranges: equal values tie exactly
    x = np.zeros((200, len(FEATURE_NAMES)))
    x[:, [FEATURE_NAMES.index(n) for n in REASON_COLS]] = rng.choice(
        [0.5, 2.0, 3.0, -2.0], size=(200, len(REASON_COLS))
    )
    table = ReasonTable(FEATURE_NAMES, ranges)
    for k in (1, 3, 10):
        got = table.top(x, k)
        for i in range(len(x)):
            ref = build_reasons(dict(zip(FEATURE_NAMES, x[i].tolist(), strict=True)), ranges, k)
            assert got[i] == ref
    assert any(len(r) == 10 for r in table.top(x, 10))


def test_reason_table_without_ranges_or_rows() -> None:
    assert ReasonTable(FEATURE_NAMES, None).top(np.zeros((2, len(FEATURE_NAMES))), 3) == [[], []]
    assert ReasonTable(FEATURE_NAMES, {}).top(np.zeros((0, len(FEATURE_NAMES))), 3) == []


def _reference_score(scorer: BatchScorer, items: list[Any], now: datetime) -> list[RiskAssessment]:
    """The per-turbine implementation of ``BatchScorer.score`` before vectorisation (reference)."""
    out = []
    x = scorer.features(items)
    pred = scorer.bundle.predict(x)
    ranges = scorer.bundle.normal_ranges
    for i, (tid, it) in enumerate(items):
        dq = it.data_quality(now=now) if isinstance(it, FeatureWindow) else dict(it.data_quality)
        p = float(pred["probability"][i])
        q10, q50, q90 = (float(pred[k][i]) for k in ("ttf_q10", "ttf_q50", "ttf_q90"))
        d = scorer.policy.assess(
            probability=p,
            ttf_days=q50,
            ttf_low_days=q10,
            ttf_high_days=q90,
            data_quality=dq,
            indicators=dict(zip(FEATURE_NAMES, x[i].tolist(), strict=True)),
            normal_ranges=ranges,
        )
        out.append(
            RiskAssessment(
                tid,
                it.as_of,
                d.score,
                d.tier,
                _opt(p),
                _opt(q50),
                _opt(q10),
                _opt(q90),
                d.reasons,
                dq,
                scorer.bundle.version,
            )
        )
    return out


def test_batch_scorer_matches_per_turbine_reference(registry: Path) -> None:
    bundle = load_version(registry, "v1")
    frame, _ = synth_fleet(n_turbines=4, days=20, failures_per_turbine=1, seed=3)
    items: list[Any] = []
    for tid, group in frame.groupby("turbine_id"):
        w = FeatureWindow(str(tid))
        for rec in events_of(group):
            w.update(rec)
        items.append((str(tid), w))
        items.append((f"{tid}-copy", FeatureWindow.from_bytes(w.to_bytes())))
    items.append(("WT-EMPTY", FeatureWindow("WT-EMPTY")))
    rng = np.random.default_rng(1)
    for k in range(5):
        items.append(
            (f"WT-ROW-{k}", FeatureRow(features=rng.normal(0, 3, len(FEATURE_NAMES)), data_quality=_dq(rng)))
        )
    now = max(it.as_of for _, it in items if it.as_of is not None) + timedelta(minutes=5)
    # normal ranges tight enough that many indicators are reasons
    bundle.metadata["normal_ranges"] = {n: [-0.1, 0.1] for n in FEATURE_NAMES}
    scorer = BatchScorer(bundle, load_policy())
    got = [a.to_dict() for a in scorer.score(items, now=now)]
    ref = [a.to_dict() for a in _reference_score(scorer, items, now)]
    assert got == ref
    assert any(len(a["reasons"]) > 2 for a in got)


def test_trends_are_not_reasons_on_a_young_window() -> None:
    """A 3-day slope fitted on a day of data is the daily load cycle, not a degradation."""
    ranges = {n: [0.0, 1.0] for n in REASON_COLS}
    x = np.zeros((3, len(FEATURE_NAMES)))
    x[:, [FEATURE_NAMES.index(n) for n in REASON_COLS]] = 3.0  # everything far above its range
    history = [24.0, SLOPE_MIN_HISTORY_HOURS, None]
    got = ReasonTable(FEATURE_NAMES, ranges).top(x, 50, history)
    for i, hours in enumerate(history):
        ref = build_reasons(dict(zip(FEATURE_NAMES, x[i].tolist(), strict=True)), ranges, 50, hours)
        assert got[i] == ref
    young, mature = got[0], got[1]
    assert young and not any("/day" in r["text"] for r in young)
    assert any("over 3 days" in r["text"] for r in mature)
    assert got[2] == got[1]  # unknown history: trends kept, as before
