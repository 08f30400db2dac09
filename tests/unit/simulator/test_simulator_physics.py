"""Physical invariants of the healthy-turbine model and the contract bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.contracts import (
    SIGNALS,
    STATUS_CURTAILED,
    STATUS_FAULT,
    STATUS_LOW_WIND,
    STATUS_MAINTENANCE,
    TelemetryEvent,
)
from simulator.config import FleetConfig
from simulator.engine import TAU_S, TEMPS, Simulation, _State
from simulator.fleet import Fleet

pytestmark = pytest.mark.unit

RATED = 2250.0


def test_columns_dtypes_and_order(physics_frame: pd.DataFrame) -> None:
    assert list(physics_frame.columns) == [
        "event_id",
        "turbine_id",
        "site_id",
        "event_time",
        *SIGNALS,
        "status_code",
    ]
    assert str(physics_frame["event_time"].dtype) == "datetime64[us, UTC]"
    assert all(physics_frame[s].dtype == np.float64 for s in SIGNALS)
    assert physics_frame["status_code"].dtype == np.int64
    assert len(physics_frame) == 10 * 30 * 144
    keys = list(zip(physics_frame["event_time"], physics_frame["turbine_id"], strict=True))
    assert keys == sorted(keys)


def test_power_curve_limits(physics_frame: pd.DataFrame) -> None:
    df = physics_frame
    assert df["power_kw"].max() <= RATED * 1.02
    below = df[df["wind_speed_ms"] < 3.0]
    assert len(below) > 50
    assert (below["power_kw"] <= 0).all()  # idle turbines draw a little self-consumption
    assert (below["power_kw"] > -50).all()
    rated_wind = df[(df["wind_speed_ms"].between(13, 24)) & (df["status_code"] == 0)]
    assert len(rated_wind) > 20
    assert rated_wind["power_kw"].min() > 0.95 * RATED
    mid = df[(df["wind_speed_ms"].between(7, 8)) & (df["status_code"] == 0)]
    assert 0.2 * RATED < mid["power_kw"].median() < 0.45 * RATED
    assert 0.2 < df["power_kw"].clip(lower=0).mean() / RATED < 0.5  # plausible capacity factor


def test_curtailment_and_low_wind_status(physics_frame: pd.DataFrame) -> None:
    df = physics_frame
    curtailed = df[df["status_code"] == STATUS_CURTAILED]
    assert len(curtailed) > 0
    assert (curtailed["power_kw"] < 0.8 * RATED + 1).all()
    assert (df.loc[df["status_code"] == STATUS_LOW_WIND, "wind_speed_ms"] < 3.0).all()


def test_downtime_stops_the_turbine(physics_fleet: Fleet, physics_frame: pd.DataFrame) -> None:
    down = physics_frame[physics_frame["status_code"].isin([STATUS_FAULT, STATUS_MAINTENANCE])]
    assert len(down) > 0, "training preset should produce at least one failure in 10 turbine-months"
    assert (down["power_kw"] == 0.0).all()
    assert (down["rotor_rpm"] < 0.5).all()
    assert (down["pitch_angle_deg"] > 80).all()
    truth = physics_fleet.ground_truth().failures
    for row in truth.itertuples():
        rows = physics_frame[
            (physics_frame["turbine_id"] == row.turbine_id)
            & (physics_frame["event_time"] >= row.failure_time)
            & (physics_frame["event_time"] < row.repair_time)
        ]
        assert rows["status_code"].isin([STATUS_FAULT, STATUS_MAINTENANCE]).all()
        assert (rows["power_kw"] == 0).all()


def test_rotor_generator_and_speeds(physics_frame: pd.DataFrame) -> None:
    run = physics_frame[physics_frame["power_kw"] > 100]
    ratio = run["generator_rpm"] / run["rotor_rpm"]
    assert ratio.between(105, 109).all()
    assert run["rotor_rpm"].between(8.5, 17.5).all()


def test_components_warmer_than_ambient_under_load(physics_frame: pd.DataFrame) -> None:
    loaded = physics_frame[physics_frame["power_kw"] > 0.5 * RATED]
    assert len(loaded) > 100
    for name in TEMPS:
        assert (loaded[name] > loaded["ambient_temp_c"]).all(), name
    hot = physics_frame.groupby(pd.cut(physics_frame["power_kw"], [-100, 200, 1500, 2400]), observed=True)
    winding = hot["generator_winding_temp_c"].mean().to_numpy()
    assert winding[0] < winding[1] < winding[2]  # temperatures follow load


def test_thermal_lag_smooths_temperatures(physics_frame: pd.DataFrame) -> None:
    """A lagged temperature moves far less from one reading to the next than its load-driven target."""
    one = physics_frame[physics_frame["turbine_id"] == "WT-002"]
    load = one["power_kw"].clip(lower=0) / RATED
    oil = one["gearbox_oil_temp_c"]
    # and it integrates past load: it matches the last hours' mean load better than the current load
    excess = oil - one["ambient_temp_c"]
    assert excess.corr(load.rolling(12).mean()) > excess.corr(load) + 0.02


def test_lag_filter_step_response() -> None:
    """A load step reaches 1 - 1/e of its effect after one time constant, never instantly."""
    sim = Simulation(FleetConfig(n_turbines=1, duration_days=1))
    targets = np.zeros((200, 1, len(TEMPS)))
    targets[1:] = 10.0
    out = sim._lag(targets, _State(gens=[]))
    tau_steps = TAU_S / 600.0
    for j, tau in enumerate(tau_steps):
        k = round(tau)
        assert out[1, 0, j] < 10.0 * (1 - np.exp(-1 / tau)) + 1e-9
        assert abs(out[k, 0, j] - 10 * (1 - np.exp(-k / tau))) < 1e-9
    assert np.all(np.diff(out[:, 0, :], axis=0) >= 0)


def test_wind_climate(physics_frame: pd.DataFrame) -> None:
    wind = physics_frame["wind_speed_ms"]
    assert 4.5 < wind.mean() < 10.0
    assert wind.min() >= 0
    assert physics_frame["wind_direction_deg"].between(0, 360, inclusive="left").all()
    per_turbine = physics_frame.groupby("turbine_id")["wind_speed_ms"].mean()
    assert per_turbine.std() > 0  # per-turbine variation
    # turbines on one site share the weather
    pivot = physics_frame.pivot(index="event_time", columns="turbine_id", values="wind_speed_ms")
    assert pivot.corr().to_numpy()[np.triu_indices(10, 1)].min() > 0.5


def test_every_record_satisfies_the_contract() -> None:
    """Training preset incl. random sensor faults (spikes, drifts) must stay within contract bounds."""
    fleet = Fleet(FleetConfig(seed=11, n_turbines=6, duration_days=20, preset="training"))
    truth = fleet.ground_truth().sensor_faults
    assert len(truth) > 0
    count = 0
    for record in fleet.iter_records():
        TelemetryEvent(**record)
        count += 1
    assert count == 6 * 20 * 144


def test_seasons_and_day_cycle() -> None:
    fleet = Fleet(FleetConfig(seed=5, n_turbines=2, duration_days=365, period_s=3600))
    df = fleet.to_frame()
    month = df.groupby(df["event_time"].dt.month)["ambient_temp_c"].mean()
    assert month[7] > month[1] + 10
    wind_month = df.groupby(df["event_time"].dt.month)["wind_speed_ms"].mean()
    assert wind_month[[12, 1, 2]].mean() > wind_month[[6, 7, 8]].mean()
    hour = df.groupby(df["event_time"].dt.hour)["ambient_temp_c"].mean()
    assert hour[15] > hour[3] + 3


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    n_turbines=st.integers(1, 4),
    period_s=st.sampled_from([60, 600, 3600]),
    days=st.floats(0.5, 3.0),
    start=st.datetimes(
        min_value=pd.Timestamp("2000-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2040-01-01").to_pydatetime(),
    ),
)
def test_any_config_yields_valid_events(
    seed: int, n_turbines: int, period_s: int, days: float, start: object
) -> None:
    """Whatever the seed, size, period or date, every record satisfies the contract."""
    config = FleetConfig.model_validate(
        {
            "seed": seed,
            "n_turbines": n_turbines,
            "period_s": period_s,
            "duration_days": days,
            "start": start,
            "preset": "training",
            "sensor_faults": {"rates_per_turbine_year": {"spike": 500, "drift": 100, "frozen": 50}},
        }
    )
    fleet = Fleet(config)
    n = 0
    for record in fleet.iter_records():
        TelemetryEvent(**record)
        n += 1
    assert n == n_turbines * config.n_steps
