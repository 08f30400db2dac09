"""Operational scoring: underperformance against the turbine's OWN calibration, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.calibration import Calibration, fit_calibration
from models.features import FeatureWindow
from models.operational import OperationalScorer
from models.policy import PolicyConfig, RiskPolicy, load_policy
from tests.unit.models.test_calibration import RATED, make_rows

pytestmark = pytest.mark.unit

CAL_DAYS = 40.0


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    frame = pd.concat(
        [make_rows("T-1", days=CAL_DAYS, seed=1, yaw_offset=3.0), make_rows("T-2", days=CAL_DAYS, seed=2)],
        ignore_index=True,
    )
    return fit_calibration(frame, version="c-test")


def window_of(
    turbine_id: str,
    seed: int,
    days: float = 4.0,
    fault: Callable[[pd.DataFrame], None] | None = None,
    yaw_offset: float = 3.0,
) -> FeatureWindow:
    """A window fed with ``days`` of rows after the calibration period (optionally with a fault)."""
    start = pd.Timestamp(make_rows(turbine_id, days=1).event_time.iloc[0]) + timedelta(days=CAL_DAYS + 5)
    rows = make_rows(turbine_id, days=days, seed=seed, start=start.to_pydatetime(), yaw_offset=yaw_offset)
    if fault is not None:
        fault(rows)
    win = FeatureWindow(turbine_id)
    for rec in rows.to_dict("records"):
        win.update(rec)
    return win


def derate(rows: pd.DataFrame) -> None:
    rows["power_kw"] = np.minimum(rows["power_kw"], 0.6 * RATED)


def pitch_fault(rows: pd.DataFrame) -> None:
    rows["pitch_angle_deg"] += 4.0
    rows["power_kw"] *= 0.93


def yaw_fault(rows: pd.DataFrame) -> None:
    rows["nacelle_direction_deg"] = (rows["nacelle_direction_deg"] + 15.0) % 360
    rows["power_kw"] *= np.cos(np.radians(15.0)) ** 2


@pytest.fixture(scope="module")
def scorer(calibration: Calibration) -> OperationalScorer:
    return OperationalScorer(load_policy(), calibration)


def test_healthy_window_stays_low(scorer: OperationalScorer) -> None:
    for seed in (11, 12, 13):
        (a,) = scorer.score([("T-1", window_of("T-1", seed))])
        assert a.tier == "low", a.reasons
        assert a.probability is None and a.ttf_days is None
        assert a.reasons[0]["indicator"] == "operational_summary"
        assert "behaves as calibrated" in a.reasons[0]["text"]
        assert a.model_version == "operational/c-test"
        dq = a.data_quality
        assert dq["sensor_set"] == "operational" and dq["calibration_version"] == "c-test"
        assert "cannot predict" in dq["predictions"]
        assert dq["missing_share_24h"] == 0.0  # temperatures are not fitted: not missing


def test_derated_turbine_is_flagged_with_its_own_curve(scorer: OperationalScorer) -> None:
    (a,) = scorer.score([("T-1", window_of("T-1", 21, fault=derate))])
    assert a.tier in ("moderate", "high"), a.reasons
    top = a.reasons[0]
    assert top["indicator"] == "power_curve_deviation"
    assert top["text"].startswith("produces ") and "% below its own power curve between" in top["text"]
    assert "over the last 48 h (normal" in top["text"]
    assert top["value"] < -5


def test_pitch_fault_is_flagged(scorer: OperationalScorer) -> None:
    (a,) = scorer.score([("T-2", window_of("T-2", 22, fault=pitch_fault, yaw_offset=0.0))])
    assert a.tier in ("moderate", "high"), a.reasons
    texts = [r["text"] for r in a.reasons]
    pitch = next(r for r in a.reasons if r["indicator"] == "pitch_deviation")
    assert "above its usual angle at the same wind" in pitch["text"], texts
    assert pitch["value"] == pytest.approx(4.0, abs=0.5)


def test_yaw_misalignment_is_flagged(scorer: OperationalScorer) -> None:
    (a,) = scorer.score([("T-1", window_of("T-1", 23, fault=yaw_fault))])
    assert a.tier in ("moderate", "high"), a.reasons
    yaw = next(r for r in a.reasons if r["indicator"] == "yaw_misalignment")
    assert (
        yaw["text"].startswith("nacelle 18° off the wind on average")
        or "off the wind on average" in yaw["text"]
    )
    assert yaw["value"] == pytest.approx(18.0, abs=2.5)  # its own 3° offset + 15°
    assert "usually +3°" in yaw["text"]


def test_stopped_turbine_in_wind_is_flagged_as_unavailable(scorer: OperationalScorer) -> None:
    def stop(rows: pd.DataFrame) -> None:
        rows.loc[rows.index[-6 * 30 :], "power_kw"] = -8.0

    (a,) = scorer.score([("T-1", window_of("T-1", 24, fault=stop))])
    assert a.tier in ("moderate", "high"), a.reasons
    assert any(r["indicator"] == "availability" and "produced in only" in r["text"] for r in a.reasons)


def test_missing_calibration_is_unknown_with_the_command(calibration: Calibration) -> None:
    win = window_of("T-1", 31)
    (a,) = OperationalScorer(load_policy(), None).score([("T-1", win)])
    assert a.tier == "unknown" and a.probability is None
    assert a.reasons[0]["indicator"] == "no_calibration"
    assert "python -m models calibrate" in a.reasons[0]["text"]
    (b,) = OperationalScorer(load_policy(), calibration).score([("T-9", win)])
    assert b.tier == "unknown" and "no calibration for T-9 in calibration c-test" in b.reasons[0]["text"]
    calibration.refused["T-8"] = "T-8: only 3.0 days of history"
    try:
        (c,) = OperationalScorer(load_policy(), calibration).score([("T-8", win)])
    finally:
        del calibration.refused["T-8"]
    assert c.tier == "unknown" and "refused this turbine (T-8: only 3.0 days" in c.reasons[0]["text"]


def test_stale_window_is_unknown_when_now_is_given(scorer: OperationalScorer) -> None:
    win = window_of("T-1", 32)
    assert win.as_of is not None
    (a,) = scorer.score([("T-1", win)], now=win.as_of + timedelta(hours=6))
    assert a.tier == "unknown" and a.reasons[0]["indicator"] == "stale_data"


def test_calm_window_is_not_judged_and_says_so(scorer: OperationalScorer) -> None:
    def calm(rows: pd.DataFrame) -> None:
        rows["wind_speed_ms"] = 2.0
        rows["power_kw"] = -10.0

    (a,) = scorer.score([("T-1", window_of("T-1", 33, fault=calm))])
    assert a.tier == "low"
    assert "not judged" in a.reasons[0]["text"] and "power curve" in a.reasons[0]["text"]
    assert "power" in a.data_quality["not_judged"]


def test_thresholds_come_from_the_policy(scorer: OperationalScorer, calibration: Calibration) -> None:
    win = window_of("T-1", 21, fault=derate)
    (a,) = scorer.score([("T-1", win)])
    cfg = PolicyConfig.model_validate({"operational": {"z_moderate": 50.0, "z_high": 100.0}})
    (b,) = OperationalScorer(RiskPolicy(cfg), calibration).score([("T-1", win)])
    assert b.score < a.score and b.tier == "low"


def test_policy_rejects_bad_operational_section(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from models.policy import PolicyConfigError

    p = tmp_path / "policy.yaml"
    p.write_text("operational:\n  z_moderate: 5\n  z_high: 4\n  bogus: 1\n")
    with pytest.raises(PolicyConfigError) as exc:
        load_policy(p)
    assert "operational.bogus: unknown key" in str(exc.value)
    p.write_text("operational:\n  window_hours: 36\n")
    with pytest.raises(PolicyConfigError, match=r"operational\.window_hours"):
        load_policy(p)


def test_window_state_keeps_the_operational_signals() -> None:
    """Pitch and yaw survive a checkpoint; an old state without them reads with empty bins."""
    win = window_of("T-1", 41, days=1)
    clone = FeatureWindow.from_bytes(win.to_bytes())
    for sig in ("pitch_angle_deg", "yaw_error_sin", "yaw_error_cos"):
        np.testing.assert_array_equal(clone.hourly().means[sig], win.hourly().means[sig])
    assert np.isfinite(win.hourly().means["yaw_error_deg"][-1])
    # a format-2 checkpoint (tests/unit/models/golden) with its auxiliary-section flag cleared: a state
    # written before the section existed
    v2 = (Path(__file__).parent / "golden" / "window_v2_0_WT-G01.bin").read_bytes()
    blob = bytearray(v2)
    blob[5] &= ~2
    old = FeatureWindow.from_bytes(bytes(blob))
    assert np.isnan(old.hourly().means["pitch_angle_deg"]).all()
    assert np.isfinite(FeatureWindow.from_bytes(v2).hourly().means["pitch_angle_deg"]).any()
    np.testing.assert_array_equal(old.features(), FeatureWindow.from_bytes(v2).features())


def test_hostile_window_values_do_not_break_scoring(scorer: OperationalScorer) -> None:
    def garbage(rows: pd.DataFrame) -> None:
        n = len(rows)
        rows.loc[rows.index[: n // 4], "power_kw"] = np.inf
        rows.loc[rows.index[n // 4 : n // 2], "pitch_angle_deg"] = -np.inf
        rows.loc[rows.index[n // 2 : n // 2 + 50], "wind_direction_deg"] = np.nan
        rows.loc[rows.index[-30:], "power_kw"] = -1e9
        rows.loc[rows.index[-60:-30], "wind_speed_ms"] = 1e9

    win = window_of("T-1", 51, fault=garbage)
    (a,) = scorer.score([("T-1", win)])
    assert a.tier in ("low", "moderate", "high", "unknown")
    assert all(isinstance(r["text"], str) and "nan" not in r["text"].lower() for r in a.reasons)
    (b,) = scorer.score([("T-1", FeatureWindow("T-1"))])  # an empty window
    assert b.tier == "unknown" and b.reasons[0]["indicator"] == "no_data"


def test_a_few_hours_of_unsignalled_curtailment_are_not_a_derating(scorer: OperationalScorer) -> None:
    """Power capped without a status code: 6 hours look like curtailment, 30 hours like a derating."""

    def cap(hours: int) -> Callable[[pd.DataFrame], None]:
        def apply(rows: pd.DataFrame) -> None:
            # the strongest wind of the last 48 h, so every capped hour is judged
            last = rows.index[-6 * 48 :]
            start = int(np.nanargmax(rows.loc[last, "wind_speed_ms"].rolling(6 * hours).mean().to_numpy()))
            sel = last[max(0, start - 6 * hours + 1) : start + 1]
            rows.loc[sel, "power_kw"] = np.minimum(rows.loc[sel, "power_kw"], 0.1 * RATED)

        return apply

    (short,) = scorer.score([("T-1", window_of("T-1", 61, fault=cap(6)))])
    assert short.tier == "low", short.reasons
    assert "brief power curve deviation not counted" in short.reasons[0]["text"]
    assert "not persistent" in short.reasons[0]["text"]
    (long_,) = scorer.score([("T-1", window_of("T-1", 61, fault=cap(30)))])
    assert long_.tier in ("moderate", "high") and long_.reasons[0]["indicator"] == "power_curve_deviation"
