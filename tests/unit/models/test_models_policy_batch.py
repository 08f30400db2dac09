"""The policy's only path (``RiskPolicy.assess_batch`` / ``ReasonTable`` / ``BatchScorer``): a turbine gets
the same assessment whatever batch it is in (a single turbine is a batch of one), windows and precomputed
rows agree, trends need history, and hostile inputs (NaN/inf features, an empty batch, data-quality dicts
with missing keys or wrong types) give a clear outcome, never an exception. The exact scores, tiers and
reasons are pinned by the golden files (``test_models_policy_golden.py``)."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import timedelta
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
    load_policy,
)
from models.registry import load_version
from models.scoring import BatchScorer, FeatureRow
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


def _batch(
    policy: RiskPolicy, table: ReasonTable, rows: Any, *arrays: np.ndarray, dqs: list[Any]
) -> list[Any]:
    prob, q50, q10, q90, x = arrays
    return policy.assess_batch(
        probability=prob[rows],
        ttf_days=q50[rows],
        ttf_low_days=q10[rows],
        ttf_high_days=q90[rows],
        data_quality=[dqs[i] for i in np.arange(len(dqs))[rows]],
        features=x[rows],
        reasons=table,
    )


@pytest.mark.parametrize("seed", range(3))
def test_a_turbine_gets_the_same_assessment_in_any_batch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    ranges = _ranges(rng)
    x = _matrix(rng, n)
    prob = rng.choice([0.0, 0.05, 0.2, 0.5, 0.8, 1.0, 0.123456, math.nan], size=n)
    q50 = rng.choice([0.0, 2.0, 5.5, 30.0, 45.0, math.nan, math.inf], size=n)
    arrays = (prob, q50, q50 - 1.0, q50 + 1.0, x)
    dqs = [_dq(rng) for _ in range(n)]
    for policy in _policies():
        table = ReasonTable(FEATURE_NAMES, ranges)
        whole = [asdict(d) for d in _batch(policy, table, slice(None), *arrays, dqs=dqs)]
        perm = rng.permutation(n)
        shuffled = [asdict(d) for d in _batch(policy, table, perm, *arrays, dqs=dqs)]
        assert [whole[i] for i in perm] == shuffled
        for i in range(0, n, 7):
            (one,) = _batch(policy, table, slice(i, i + 1), *arrays, dqs=dqs)
            assert asdict(one) == whole[i], i


def test_reason_table_without_ranges_or_rows() -> None:
    assert ReasonTable(FEATURE_NAMES, None).top(np.zeros((2, len(FEATURE_NAMES))), 3) == [[], []]
    assert ReasonTable(FEATURE_NAMES, {}).top(np.zeros((0, len(FEATURE_NAMES))), 3) == []


def test_batch_scorer_windows_rows_and_batches_agree(registry: Path) -> None:
    """``BatchScorer.score`` of windows == ``score_features`` of their features and data quality,
    whole or one turbine at a time."""
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
    x = scorer.features(items)
    dqs = [
        it.data_quality(now=now) if isinstance(it, FeatureWindow) else dict(it.data_quality)
        for _, it in items
    ]
    ids = [tid for tid, _ in items]
    as_ofs = [it.as_of for _, it in items]
    assert [a.to_dict() for a in scorer.score_features(ids, x, as_ofs, dqs)] == got
    for i in range(len(items)):
        (one,) = scorer.score_features(ids[i : i + 1], x[i : i + 1], as_ofs[i : i + 1], dqs[i : i + 1])
        assert one.to_dict() == got[i], ids[i]
    assert any(len(a["reasons"]) > 2 for a in got)
    assert got[ids.index("WT-EMPTY")]["tier"] == "unknown"


def test_trends_are_not_reasons_on_a_young_window() -> None:
    """A 3-day slope fitted on a day of data is the daily load cycle, not a degradation."""
    ranges = {n: [0.0, 1.0] for n in REASON_COLS}
    x = np.zeros((5, len(FEATURE_NAMES)))
    x[:, [FEATURE_NAMES.index(n) for n in REASON_COLS]] = 3.0  # everything far above its range
    history = [24.0, SLOPE_MIN_HISTORY_HOURS, None, math.nan, -math.inf]
    got = ReasonTable(FEATURE_NAMES, ranges).top(x, 50, history)
    young, mature = got[0], got[1]
    assert young and not any("/day" in r["text"] for r in young)
    assert {r["indicator"] for r in young} == {n for n in REASON_COLS if not n.endswith("slope_72h")}
    assert any("over 3 days" in r["text"] for r in mature)
    assert any(", rising 3.0 °C/day" in r["text"] for r in mature)
    assert got[2] == got[1] and got[3] == got[1]  # unknown history: trends kept, as before
    assert got[4] == got[1]  # not a finite number of hours: unknown
    assert ReasonTable(FEATURE_NAMES, ranges).top(x, 50, np.array(history, dtype=float)) == got


# ------------------------------------------------------------------------------------------ hostile input
def _one(dq: Any, policy: RiskPolicy | None = None, x: np.ndarray | None = None, p: float = 0.9) -> Any:
    pol = policy or load_policy()
    (d,) = pol.assess_batch(
        probability=np.array([p]),
        ttf_days=np.array([10.0]),
        ttf_low_days=np.array([9.0]),
        ttf_high_days=np.array([11.0]),
        data_quality=[dq],
        features=np.zeros((1, len(FEATURE_NAMES))) if x is None else x,
        reasons=ReasonTable(FEATURE_NAMES, {n: [0.0, 1.0] for n in REASON_COLS}),
    )
    return d


GOOD: dict[str, Any] = {
    "events_in_window": 10,
    "last_event_time": "2026-01-01T00:00:00+00:00",
    "seconds_since_last_event": 5.0,
    "missing_share_24h": 0.0,
    "coverage_hours_24h": 24,
    "history_hours": 100.0,
}


def test_empty_batch_gives_nothing() -> None:
    pol = load_policy()
    out = pol.assess_batch(
        probability=np.array([]),
        ttf_days=np.array([]),
        ttf_low_days=np.array([]),
        ttf_high_days=np.array([]),
        data_quality=[],
        features=np.zeros((0, len(FEATURE_NAMES))),
        reasons=ReasonTable(FEATURE_NAMES, {}),
    )
    assert out == []
    assert pol.data_quality_batch([]).reasons == []


def test_non_finite_and_huge_features_never_raise() -> None:
    x = np.zeros((4, len(FEATURE_NAMES)))
    x[0] = np.nan
    x[1] = np.inf
    x[2] = -np.inf
    x[3] = 1e308
    for row in x:
        d = _one(GOOD, x=row[None, :])
        assert d.tier in ("low", "moderate", "high", "critical")
        assert d.reasons[-1]["indicator"] == "failure_probability_7d"
        assert all(math.isfinite(r["value"]) for r in d.reasons)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seconds_since_last_event": "soon"}, "seconds_since_last_event"),
        ({"missing_share_24h": [0.9]}, "missing_share_24h"),
        ({"coverage_hours_24h": {"h": 3}}, "coverage_hours_24h"),
        ({"history_hours": "long"}, "history_hours"),
        ({"silent_key_signals_24h": 7}, "silent_key_signals_24h"),
        ({"silent_key_signals_24h": "vibration_mm_s"}, "silent_key_signals_24h"),
        ({"frozen_signals": ["vibration_mm_s"]}, "frozen_signals"),
        ({"frozen_signals": {"vibration_mm_s": "long"}}, "frozen_signals.vibration_mm_s"),
        ({"frozen_signals": {"vibration_mm_s": None}}, "frozen_signals.vibration_mm_s"),
    ],
)
def test_a_data_quality_field_of_the_wrong_type_is_named_and_unknown(
    change: dict[str, Any], field: str
) -> None:
    d = _one({**GOOD, **change})
    assert d.tier == "unknown"
    assert d.score <= load_policy().config.data_quality.cap_score
    bad = [r for r in d.reasons if r["indicator"].startswith("invalid_data_quality")]
    assert [r["indicator"] for r in bad] == [f"invalid_data_quality:{field}"]
    assert field in bad[0]["text"] and "not usable" in bad[0]["text"]


@pytest.mark.parametrize("dq", [["events_in_window", 3], "a string", 42, b"\x00\xff", (1, 2)])
def test_data_quality_that_is_not_a_mapping_is_unknown(dq: Any) -> None:
    d = _one(dq)
    assert d.tier == "unknown"
    assert d.reasons[0]["indicator"] == "invalid_data_quality"
    assert type(dq).__name__ in d.reasons[0]["text"]


@pytest.mark.parametrize("dq", [None, {}, {"events_in_window": 5}, {"last_event_time": "x"}])
def test_missing_keys_mean_no_data(dq: Any) -> None:
    d = _one(dq)
    assert d.tier == "unknown"
    assert d.reasons[0]["indicator"] == "no_data"


def test_only_the_required_keys_is_fine_and_odd_numbers_are_numbers() -> None:
    plain = _one({"events_in_window": 3, "last_event_time": "x"}, p=0.1)
    assert plain.tier == "high"  # from the TTF of 10 days, no data-quality reason
    assert [r["indicator"] for r in plain.reasons] == ["failure_probability_7d"]
    odd = {**GOOD, "seconds_since_last_event": np.float32(9000.0), "coverage_hours_24h": np.int64(2)}
    d = _one(odd)
    assert [r["indicator"] for r in d.reasons[:2]] == ["stale_data", "low_coverage"]
    huge = _one({**GOOD, "seconds_since_last_event": 10**400})
    assert huge.reasons[0]["indicator"] == "stale_data" and huge.reasons[0]["value"] == math.inf


def test_a_batch_with_hostile_rows_scores_its_good_rows() -> None:
    """One bad data-quality dict never takes its neighbours down."""
    pol = load_policy()
    dqs: list[Any] = [GOOD, "junk", {**GOOD, "frozen_signals": 3}, None, GOOD]
    out = pol.assess_batch(
        probability=np.array([0.9, 0.9, 0.9, 0.9, math.nan]),
        ttf_days=np.full(5, 10.0),
        ttf_low_days=np.full(5, 9.0),
        ttf_high_days=np.full(5, 11.0),
        data_quality=dqs,
        features=np.zeros((5, len(FEATURE_NAMES))),
        reasons=ReasonTable(FEATURE_NAMES, {}),
    )
    assert [d.tier for d in out] == ["critical", "unknown", "unknown", "unknown", "unknown"]
    assert out[4].reasons == [
        {
            "indicator": "no_model_output",
            "text": "model output unavailable",
            "value": None,
            "normal_range": None,
        }
    ]
