"""Degradation modes: each one's signature, downtime and repair, schedule statistics.

Why compare against a baseline run: with the same seed and no failure, weather, load and noise are
identical, so any difference is exactly the failure's signature (and nothing else may change).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common.contracts import SIGNALS, STATUS_FAULT, STATUS_MAINTENANCE, STATUS_OK
from simulator.config import FAILURE_MODES, FleetConfig
from simulator.fleet import Fleet
from simulator.schedule import FailureEvent

from .conftest import FAILURE, MODE_OF, ONSET, failure_config

pytestmark = pytest.mark.unit

DAY = pd.Timedelta(days=1)
SIGNATURES = {
    "gearbox_bearing": {"gearbox_bearing_temp_c", "gearbox_oil_temp_c", "vibration_mm_s"},
    "generator_winding": {"generator_winding_temp_c"},
    "main_bearing": {"main_bearing_temp_c", "vibration_mm_s"},
    "pitch_hydraulic": {"pitch_hydraulic_pressure_bar", "pitch_angle_deg", "vibration_mm_s"},
    "converter_cooling": {"converter_temp_c"},
}


def _one(frame: pd.DataFrame, turbine: str) -> pd.DataFrame:
    return frame[frame["turbine_id"] == turbine].set_index("event_time")


def _excess(
    frame: pd.DataFrame,
    base: pd.DataFrame,
    turbine: str,
    signal: str,
    t0: pd.Timestamp,
    t1: pd.Timestamp,
    min_load: float = 0.3,
) -> float:
    """Mean difference to the failure-free run over [t0, t1) at readings above ``min_load``."""
    a = _one(frame, turbine).loc[t0 : t1 - pd.Timedelta(seconds=1)]
    b = _one(base, turbine).loc[t0 : t1 - pd.Timedelta(seconds=1)]
    mask = b["power_kw"] >= min_load * 2250
    return float((a.loc[mask, signal] - b.loc[mask, signal]).mean())


def test_ground_truth_lists_the_forced_failures(failure_fleet: Fleet) -> None:
    truth = failure_fleet.ground_truth().failures
    assert list(truth.columns[:3]) == ["turbine_id", "site_id", "mode"]
    assert {"onset_time", "failure_time", "repair_time"} <= set(truth.columns)
    assert dict(zip(truth["turbine_id"], truth["mode"], strict=True)) == MODE_OF
    assert (truth["onset_time"] == ONSET).all()
    assert (truth["failure_time"] == FAILURE).all()
    assert (truth["repair_time"] == FAILURE + pd.Timedelta(hours=48)).all()
    assert truth["forced"].all()


@pytest.mark.parametrize("turbine", sorted(MODE_OF))
def test_each_mode_touches_only_its_signature(
    failure_frame: pd.DataFrame, baseline_frame: pd.DataFrame, turbine: str
) -> None:
    a = _one(failure_frame, turbine).loc[: FAILURE - pd.Timedelta(seconds=1)]
    b = _one(baseline_frame, turbine).loc[: FAILURE - pd.Timedelta(seconds=1)]
    changed = {s for s in SIGNALS if not np.array_equal(a[s].to_numpy(), b[s].to_numpy())}
    assert changed == SIGNATURES[MODE_OF[turbine]]
    before = a.loc[: ONSET - pd.Timedelta(seconds=1)]
    assert before.equals(b.loc[: ONSET - pd.Timedelta(seconds=1)])  # nothing before the onset


def test_gearbox_bearing_signature(failure_frame: pd.DataFrame, baseline_frame: pd.DataFrame) -> None:
    late = (FAILURE - 2 * DAY, FAILURE)
    assert _excess(failure_frame, baseline_frame, "WT-001", "gearbox_bearing_temp_c", *late) > 15
    assert _excess(failure_frame, baseline_frame, "WT-001", "vibration_mm_s", *late) > 2.5
    # the bearing's excess heat grows with load
    low = _excess(failure_frame, baseline_frame, "WT-001", "gearbox_bearing_temp_c", *late, min_load=0.0)
    high = _excess(failure_frame, baseline_frame, "WT-001", "gearbox_bearing_temp_c", *late, min_load=0.7)
    assert high > low + 3


def test_generator_winding_signature(failure_frame: pd.DataFrame, baseline_frame: pd.DataFrame) -> None:
    late = (FAILURE - 2 * DAY, FAILURE)
    assert _excess(failure_frame, baseline_frame, "WT-002", "generator_winding_temp_c", *late) > 20


def test_main_bearing_signature(failure_frame: pd.DataFrame, baseline_frame: pd.DataFrame) -> None:
    late = (FAILURE - 2 * DAY, FAILURE)
    assert _excess(failure_frame, baseline_frame, "WT-003", "main_bearing_temp_c", *late) > 10
    assert _excess(failure_frame, baseline_frame, "WT-003", "vibration_mm_s", *late) > 2.0


def test_pitch_hydraulic_signature(failure_frame: pd.DataFrame, baseline_frame: pd.DataFrame) -> None:
    late = (FAILURE - 2 * DAY, FAILURE)
    assert _excess(failure_frame, baseline_frame, "WT-004", "pitch_hydraulic_pressure_bar", *late, 0.0) < -30
    one = _one(failure_frame, "WT-004")
    running = one[one["status_code"] == STATUS_OK]
    before = running.loc[:ONSET, "pitch_angle_deg"]
    after = running.loc[FAILURE - 2 * DAY : FAILURE, "pitch_angle_deg"]
    assert after.std() > before.std()  # irregular pitching
    down = one.loc[FAILURE : FAILURE + pd.Timedelta(hours=11)]
    assert (down["pitch_hydraulic_pressure_bar"] < 60).all()


def test_converter_cooling_signature_is_worse_in_heat(
    failure_frame: pd.DataFrame, baseline_frame: pd.DataFrame
) -> None:
    late = (FAILURE - 2 * DAY, FAILURE)
    mild = _excess(failure_frame, baseline_frame, "WT-005", "converter_temp_c", *late)
    assert mild > 8
    heat = [{"start": (ONSET + 5 * DAY).isoformat(), "end": FAILURE.isoformat(), "delta_c": 15}]
    window = {"start": FAILURE - 3 * DAY, "end": FAILURE}
    hot = Fleet(failure_config(heatwaves=heat)).to_frame(**window)
    hot_base = Fleet(failure_config(heatwaves=heat, forced_failures=[])).to_frame(**window)
    assert _excess(hot, hot_base, "WT-005", "converter_temp_c", *late) > mild + 5


def test_downtime_then_repair(failure_frame: pd.DataFrame, baseline_frame: pd.DataFrame) -> None:
    for tid in MODE_OF:
        one = _one(failure_frame, tid)
        fault = one.loc[FAILURE : FAILURE + pd.Timedelta(hours=11, minutes=50)]
        maint = one.loc[FAILURE + pd.Timedelta(hours=12) : FAILURE + pd.Timedelta(hours=47, minutes=50)]
        assert (fault["status_code"] == STATUS_FAULT).all(), tid
        assert (maint["status_code"] == STATUS_MAINTENANCE).all(), tid
        assert (fault["power_kw"] == 0).all() and (maint["power_kw"] == 0).all()
        after = one.loc[FAILURE + pd.Timedelta(hours=48) :]
        assert not after["status_code"].isin([STATUS_FAULT, STATUS_MAINTENANCE]).any()
        # repaired: a day after the repair the turbine is indistinguishable from the failure-free run
        settled = after.loc[FAILURE + pd.Timedelta(hours=72) :]
        base = _one(baseline_frame, tid).loc[settled.index]
        for signal in SIGNALS:
            assert np.allclose(settled[signal], base[signal], atol=0.01), (tid, signal)


def test_vibration_rises_before_bearing_failures(failure_frame: pd.DataFrame) -> None:
    for tid in ("WT-001", "WT-003"):
        one = _one(failure_frame, tid)
        run = one[one["power_kw"] > 500]["vibration_mm_s"]
        daily = run.loc[ONSET : FAILURE - pd.Timedelta(seconds=1)].resample("2D").mean()
        assert daily.iloc[-1] > daily.iloc[0] + 1.5
        assert np.corrcoef(np.arange(len(daily)), daily.to_numpy())[0, 1] > 0.7


def test_alarms_only_on_failing_turbines_before_failure(failure_frame: pd.DataFrame) -> None:
    alarms = failure_frame[failure_frame["status_code"].isin([60, 70, 80])]
    assert len(alarms) > 0
    assert set(alarms["turbine_id"]) <= set(MODE_OF)
    assert (alarms["event_time"] < FAILURE).all()
    assert (alarms["event_time"] > ONSET + 3 * DAY).all()


def test_health_index_is_monotone_and_hits_the_threshold() -> None:
    event = FailureEvent(0, FAILURE_MODES[0], 0.0, 1000.0, 1100.0, 1200.0, 1.7, (0.3, -0.3, 0.29), False)
    t = np.linspace(-100, 1100, 5001)
    h = event.health(t)
    assert h[0] == 0 and h[-1] == 1.0
    assert np.all(np.diff(h) >= 0)
    assert event.health(np.array([1000.0]))[0] == pytest.approx(1.0)


def test_random_failure_rates_match_the_presets() -> None:
    training = Fleet(FleetConfig(seed=8, n_turbines=20, duration_days=365, preset="training"))
    truth = training.ground_truth().failures
    per_turbine_year = len(truth) / 20
    assert 2.5 <= per_turbine_year <= 6.0
    assert set(truth["mode"]) == {m.value for m in FAILURE_MODES}
    days = (truth["failure_time"] - truth["onset_time"]).dt.total_seconds() / 86400
    assert days.between(5, 30).all()
    assert (truth["repair_time"] > truth["failure_time"]).all()
    for _, group in truth.groupby("turbine_id"):  # one incident at a time per turbine
        assert (group["onset_time"].iloc[1:].to_numpy() >= group["repair_time"].iloc[:-1].to_numpy()).all()
    realistic = Fleet(FleetConfig(seed=8, n_turbines=100, duration_days=3652))
    per_decade = len(realistic.ground_truth().failures) / 100
    assert 1.0 <= per_decade <= 8.0


def test_random_failures_disabled() -> None:
    fleet = Fleet(
        FleetConfig(n_turbines=50, duration_days=365, preset="training", failures={"random_enabled": False})
    )  # type: ignore[arg-type]
    assert fleet.ground_truth().failures.empty
