"""Event-level backtest figures on tiny hand-made series: episodes, lead times, missed failures, the
oracle's tiers, the rule baseline's tiers, the goals and the card section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.backtest_metrics import (
    GoalsConfig,
    OracleConfig,
    backtest_report,
    card_section,
    check_goals,
    episodes,
    load_goals,
    oracle_tiers,
    plot_lead_times,
    rule_assessments,
)
from models.features import FEATURE_NAMES
from models.policy import RiskPolicy

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def _series(
    tid: str, tiers: list[str], scores: list[float] | None = None, every_h: float = 24.0
) -> pd.DataFrame:
    """One assessment per ``every_h`` hours from T0, for source ``model``."""
    n = len(tiers)
    return pd.DataFrame(
        {
            "turbine_id": [tid] * n,
            "time": [T0 + pd.Timedelta(hours=every_h * i) for i in range(n)],
            "model_tier": tiers,
            "model_score": scores
            if scores is not None
            else [90.0 if t == "critical" else 60.0 if t == "high" else 5.0 for t in tiers],
        }
    )


def _failure(tid: str, day: float, repair_days: float = 2.0, component: str = "gearbox") -> dict:
    f = T0 + pd.Timedelta(days=day)
    return {
        "turbine_id": tid,
        "failure_time": f,
        "repair_time": f + pd.Timedelta(days=repair_days),
        "component": component,
    }


def test_episodes_are_runs_of_flags() -> None:
    assert episodes([]) == []
    assert episodes([False, False]) == []
    assert episodes([True]) == [(0, 0)]
    assert episodes([True, True, False, True, False, False, True, True]) == [(0, 1), (3, 3), (6, 7)]


def test_lead_time_of_first_warning_within_horizon_and_missed_failure() -> None:
    # 100 daily assessments; failure at day 50 (down until day 52). High from day 40, critical from day 46.
    tiers = ["low"] * 100
    for d in range(40, 50):
        tiers[d] = "critical" if d >= 46 else "high"
    # A second turbine fails at day 60 with no warning at all: missed on both tiers.
    a = pd.concat([_series("A", tiers), _series("B", ["low"] * 100)], ignore_index=True)
    fails = pd.DataFrame([_failure("A", 50.0), _failure("B", 60.0)])
    r = backtest_report(a, fails, GoalsConfig())
    m = r["sources"]["model"]["tiers"]
    assert r["failures"] == 2
    assert m["high"]["detected"] == 1 and m["high"]["missed"] == 1
    assert m["high"]["median_lead_days"] == pytest.approx(10.0)
    assert m["critical"]["median_lead_days"] == pytest.approx(4.0)
    assert m["high"]["false_episodes"] == 0 and m["high"]["episodes"] == 1
    detail = {f["turbine_id"]: f["lead_days"]["model"] for f in r["failures_detail"]}
    assert detail["A"] == {"high": 10.0, "critical": 4.0}
    assert detail["B"] == {"high": None, "critical": None}


def test_warning_older_than_the_horizon_does_not_count_and_is_a_false_episode() -> None:
    tiers = ["low"] * 100
    tiers[5] = tiers[6] = "high"  # 45 days before the failure at day 50: outside the 30-day horizon
    a = _series("A", tiers)
    r = backtest_report(a, pd.DataFrame([_failure("A", 50.0)]), GoalsConfig(horizon_days=30.0))
    m = r["sources"]["model"]["tiers"]["high"]
    assert m["detected"] == 0 and m["missed"] == 1
    assert m["episodes"] == 1 and m["false_episodes"] == 1
    # ~99 days assessed = 0.271 turbine-years
    assert r["turbine_years"] == pytest.approx(99 / 365.25, rel=1e-3)
    assert m["false_episodes_per_turbine_year"] == pytest.approx(1 / (99 / 365.25), rel=1e-3)


def test_down_time_is_excluded_and_splits_episodes() -> None:
    # critical from day 45 through the down time (50-52) and after the repair until day 56: the part
    # after the repair is its own episode, and false (no later failure).
    tiers = ["low"] * 100
    for d in range(45, 57):
        tiers[d] = "critical"
    r = backtest_report(_series("A", tiers), pd.DataFrame([_failure("A", 50.0)]), GoalsConfig())
    c = r["sources"]["model"]["tiers"]["critical"]
    assert c["episodes"] == 2
    assert c["false_episodes"] == 1
    assert c["median_lead_days"] == pytest.approx(5.0)


def test_no_failure_means_every_episode_is_false_and_no_lead_time() -> None:
    tiers = ["low", "high", "high", "low", "critical", "unknown", "moderate", "high"]
    r = backtest_report(_series("A", tiers), pd.DataFrame(), GoalsConfig())
    m = r["sources"]["model"]["tiers"]
    assert r["failures"] == 0
    assert m["high"]["false_episodes"] == 3  # (1-2), (4), (7): "unknown" breaks a run
    assert m["critical"]["false_episodes"] == 1
    assert m["high"]["median_lead_days"] is None
    assert r["sources"]["model"]["pr_auc"] is None  # no positive label


def test_failure_outside_the_assessed_span_is_not_counted() -> None:
    a = _series("A", ["low"] * 10)
    r = backtest_report(a, pd.DataFrame([_failure("A", 30.0), _failure("A", -5.0)]), GoalsConfig())
    assert r["failures"] == 0


def test_oracle_tiers_from_true_health_and_oracle_beats_a_late_model() -> None:
    oc = OracleConfig(high_health=0.01, critical_health=0.25)
    assert oracle_tiers([0.0, 0.005, 0.01, 0.2, 0.25, 1.0, float("nan")], oc) == [
        "low",
        "low",
        "high",
        "high",
        "critical",
        "critical",
        "low",
    ]
    # Degradation from day 30 to the failure at day 50 (linear health); the model warns at day 45 only.
    days = np.arange(100)
    health = np.clip((days - 30) / 20.0, 0, 1) * (days < 50)
    a = _series("A", ["high" if 45 <= d < 50 else "low" for d in days])
    a["oracle_score"] = health
    a["oracle_tier"] = oracle_tiers(health, oc)
    r = backtest_report(a, pd.DataFrame([_failure("A", 50.0)]), GoalsConfig(oracle=oc))
    o, m = r["sources"]["oracle"], r["sources"]["model"]
    assert o["tiers"]["high"]["median_lead_days"] == pytest.approx(19.0)  # day 31: health 0.05
    assert o["tiers"]["critical"]["median_lead_days"] == pytest.approx(15.0)  # day 35: health 0.25
    assert o["tiers"]["high"]["false_episodes"] == 0
    assert o["tiers"]["high"]["median_lead_days"] >= m["tiers"]["high"]["median_lead_days"]
    assert o["pr_auc"] == pytest.approx(1.0)
    goals = {g["goal"]: g for g in r["goals"]}
    assert goals["median first high warning before failure (days)"]["met"] is True
    assert goals["median first critical warning before failure (days)"]["met"] is False
    assert goals["median high lead time within 10% of the oracle"]["met"] is False


def test_rules_tiers_come_from_the_stored_baseline_through_the_policy() -> None:
    base = {
        "thresholds": {"gearbox_oil_temp_c": 60.0, "pitch_hydraulic_pressure_bar": 170.0},
        "p_fired": 0.4,
        "p_quiet": 0.01,
        "ttf_fired_days": 6.0,
        "ttf_quiet_days": 30.0,
    }
    x = pd.DataFrame(np.zeros((3, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    x["gearbox_oil_temp_c__max_24h"] = [50.0, 66.0, 50.0]
    x["pitch_hydraulic_pressure_bar__mean_24h"] = [180.0, 180.0, 180.0]
    x.loc[2, "alarms_24h"] = 3
    score, tiers = rule_assessments(base, x, RiskPolicy())
    assert score[0] < 1.0 and score[1] == pytest.approx(1.1) and score[2] >= 1.0
    # fired: P 0.4 and TTF 6 d -> score 100 * max(0.4, 0.7 * 24/28) = 60 -> high; quiet -> low
    assert tiers == ["low", "high", "high"]


def test_model_better_than_rules_goal_names_the_worse_figures() -> None:
    tiers_m = ["low"] * 60
    tiers_r = ["low"] * 60
    for d in range(44, 50):
        tiers_m[d] = "critical"
    for d in range(35, 50):
        tiers_r[d] = "high"  # the rules warn earlier on the high tier
    a = _series("A", tiers_m)
    a["rules_tier"] = tiers_r
    a["rules_score"] = [1.2 if t == "high" else 0.5 for t in tiers_r]
    r = backtest_report(a, pd.DataFrame([_failure("A", 50.0)]), GoalsConfig())
    [g] = [g for g in r["goals"] if g["goal"].startswith("better than the rules")]
    assert g["met"] is False and "median high lead time" in g["value"]
    # the rules never say "critical": the model's critical episodes are not compared with their silence
    assert "critical" not in g["value"]


def test_goals_file_loads_and_a_bad_one_names_the_field(tmp_path: Path) -> None:
    g = load_goals()
    assert g.goals.min_median_lead_days == 5.0 and g.goals.max_false_critical_per_turbine_year == 1.0
    assert g.goals.max_relative_gap_to_oracle == pytest.approx(0.1)
    bad = tmp_path / "goals.yaml"
    bad.write_text("horizon_days: 30\nsurprise: 1\n")
    with pytest.raises(ValueError, match="surprise"):
        load_goals(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_goals(tmp_path / "missing.yaml")


def test_card_section_and_plot(tmp_path: Path) -> None:
    tiers = ["low"] * 60
    for d in range(40, 50):
        tiers[d] = "high"
    r = backtest_report(_series("A", tiers), pd.DataFrame([_failure("A", 50.0)]), GoalsConfig())
    r["source"] = "hand-made"
    text = card_section(r, "backtest_lead_times.png")
    assert "## Event-level backtest" in text and "| model | high | 1/1 | 10.0 |" in text
    assert "| median first critical warning before failure (days) | n/a | >= 5 | NO |" in text
    assert check_goals(r)[0]["met"] is True
    plot_lead_times(r, tmp_path / "lead.png")
    assert (tmp_path / "lead.png").stat().st_size > 1000
