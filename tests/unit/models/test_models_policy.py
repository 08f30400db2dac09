"""Risk policy: tier boundaries, unknown on bad data, frozen sensors, reasons, strict YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.policy import DEFAULT_POLICY_PATH, PolicyConfigError, PolicyDecision, RiskPolicy, load_policy
from tests.unit.models.policy_helpers import assess_one

pytestmark = pytest.mark.unit

POLICY = load_policy()
GOOD_DQ: dict[str, Any] = {
    "events_in_window": 1000,
    "last_event_time": "2024-01-01T00:00:00+00:00",
    "seconds_since_last_event": 60.0,
    "missing_share_24h": 0.01,
    "coverage_hours_24h": 24,
    "frozen_signals": {},
    "silent_key_signals_24h": [],
}


def _assess(p: float, dq: dict[str, Any] | None = None, ttf: float = 30.0, **kw: Any) -> PolicyDecision:
    return assess_one(
        POLICY,
        probability=p,
        ttf_days=ttf,
        ttf_low_days=ttf,
        ttf_high_days=ttf,
        data_quality=dq or GOOD_DQ,
        **kw,
    )


def test_packaged_policy_loads() -> None:
    assert DEFAULT_POLICY_PATH.is_file()
    assert POLICY.config.tiers.critical == 80


@pytest.mark.parametrize(
    ("p", "tier"),
    [
        (0.0, "low"),
        (0.1999, "low"),
        (0.20, "moderate"),
        (0.4999, "moderate"),
        (0.50, "high"),
        (0.7999, "high"),
        (0.80, "critical"),
        (1.0, "critical"),
    ],
)
def test_tier_boundaries(p: float, tier: str) -> None:
    d = _assess(p)
    assert d.tier == tier
    assert d.score == pytest.approx(100 * p, abs=0.01)


def test_short_ttf_raises_score_even_with_low_probability() -> None:
    d = _assess(0.05, ttf=2.0)
    assert d.score == pytest.approx(70.0)
    assert d.tier == "high"
    assert _assess(0.05, ttf=30.0).tier == "low"


@pytest.mark.parametrize(
    ("change", "indicator"),
    [
        ({"events_in_window": 0}, "no_data"),
        ({"last_event_time": None}, "no_data"),
        ({"seconds_since_last_event": 3 * 3600.0}, "stale_data"),
        ({"missing_share_24h": 0.8}, "missing_values"),
        ({"coverage_hours_24h": 2}, "low_coverage"),
        ({"silent_key_signals_24h": ["vibration_mm_s"]}, "silent_sensor:vibration_mm_s"),
        ({"frozen_signals": {"gearbox_bearing_temp_c": 6.0}}, "frozen_sensor:gearbox_bearing_temp_c"),
    ],
)
def test_unknown_on_bad_data(change: dict[str, Any], indicator: str) -> None:
    d = _assess(0.95, {**GOOD_DQ, **change})
    assert d.tier == "unknown"
    assert d.score <= POLICY.config.data_quality.cap_score
    assert d.reasons[0]["indicator"] == indicator
    assert d.reasons[0]["text"]


def test_frozen_non_key_signal_is_ignored() -> None:
    assert _assess(0.95, {**GOOD_DQ, "frozen_signals": {"power_kw": 5.0}}).tier == "critical"


def test_unknown_when_model_output_missing() -> None:
    d = assess_one(POLICY, probability=float("nan"), data_quality=GOOD_DQ)
    assert d.tier == "unknown"
    assert d.score == 0.0


def test_cap_mode_keeps_tier_but_never_critical(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_PATH.read_text().replace("frozen_key_signal: unknown", "frozen_key_signal: cap")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    pol = load_policy(path)
    d = assess_one(
        pol,
        probability=0.99,
        ttf_days=1.0,
        data_quality={**GOOD_DQ, "frozen_signals": {"vibration_mm_s": 4.0}},
    )
    assert d.tier == "moderate"
    assert d.score == pol.config.data_quality.cap_score
    assert d.reasons[0]["indicator"] == "frozen_sensor:vibration_mm_s"


def test_reasons_in_plain_words_with_value_and_range() -> None:
    indicators = {
        "gearbox_bearing_temp_c__resid_24h": 12.0,
        "gearbox_bearing_temp_c__resid_slope_72h": 2.0,
        "vibration_mm_s__max_24h": 3.0,
    }
    ranges = {
        "gearbox_bearing_temp_c__resid_24h": [-2.0, 2.0],
        "gearbox_bearing_temp_c__resid_slope_72h": [-0.5, 0.5],
        "vibration_mm_s__max_24h": [0.5, 4.0],
    }
    d = _assess(0.9, indicators=indicators, normal_ranges=ranges)
    first = d.reasons[0]
    assert set(first) == {"indicator", "text", "value", "normal_range"}
    assert first["indicator"] == "gearbox_bearing_temp_c__resid_24h"
    assert (
        first["text"] == "gearbox bearing temperature 12.0 °C above expected for this load, rising 2.0 °C/day"
    )
    assert first["value"] == 12.0
    assert first["normal_range"] == [-2.0, 2.0]
    assert all(r["indicator"] != "vibration_mm_s__max_24h" for r in d.reasons)  # in range: not a reason
    assert d.reasons[-1]["indicator"] == "failure_probability_7d"
    assert "90%" in d.reasons[-1]["text"]


def test_unknown_key_rejected_with_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("schema_version: 1\ntiers:\n  critical: 80\n  urgent: 90\n")
    with pytest.raises(
        PolicyConfigError, match=r"bad.yaml: invalid policy configuration: tiers.urgent: unknown key"
    ):
        load_policy(path)


def test_inconsistent_thresholds_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tiers:\n  critical: 40\n  high: 50\n  moderate: 20\n")
    with pytest.raises(PolicyConfigError, match="critical > high > moderate"):
        load_policy(path)
    with pytest.raises(PolicyConfigError, match="policy file not found"):
        load_policy(tmp_path / "missing.yaml")


probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
ttfs = st.one_of(st.none(), st.floats(min_value=0.0, max_value=60.0, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(p1=probabilities, p2=probabilities, ttf=ttfs)
def test_score_monotonic_in_probability(p1: float, p2: float, ttf: float | None) -> None:
    lo, hi = sorted((p1, p2))
    a = assess_one(POLICY, probability=lo, ttf_days=ttf, data_quality=GOOD_DQ)
    b = assess_one(POLICY, probability=hi, ttf_days=ttf, data_quality=GOOD_DQ)
    order = ("low", "moderate", "high", "critical")
    assert a.score <= b.score
    assert order.index(a.tier) <= order.index(b.tier)
    assert 0.0 <= a.score <= 100.0


@settings(max_examples=200, deadline=None)
@given(
    p=probabilities,
    ttf=ttfs,
    signal=st.sampled_from(POLICY.config.data_quality.key_signals),
    hours=st.floats(min_value=0.1, max_value=200.0),
    mode=st.sampled_from(["unknown", "cap"]),
)
def test_never_critical_on_frozen_key_sensor(
    p: float, ttf: float | None, signal: str, hours: float, mode: str
) -> None:
    cfg = POLICY.config.model_copy(
        update={"data_quality": POLICY.config.data_quality.model_copy(update={"frozen_key_signal": mode})}
    )
    d = assess_one(
        RiskPolicy(cfg),
        probability=p,
        ttf_days=ttf,
        data_quality={**GOOD_DQ, "frozen_signals": {signal: hours}},
    )
    assert d.tier != "critical"
    assert d.score < POLICY.config.tiers.critical
    assert any(r["indicator"] == f"frozen_sensor:{signal}" for r in d.reasons)


def test_cooler_than_expected_is_not_a_reason() -> None:
    d = _assess(
        0.3,
        indicators={"main_bearing_temp_c__resid_24h": -9.0},
        normal_ranges={"main_bearing_temp_c__resid_24h": [-2.0, 2.0]},
    )
    assert [r["indicator"] for r in d.reasons] == ["failure_probability_7d"]
