"""Named scenarios: listing, loading, errors, and that each tells the story it claims."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simulator.config import ConfigError
from simulator.scenarios import (
    Scenario,
    UnknownScenarioError,
    list_scenarios,
    load_scenario,
    load_scenario_file,
)

pytestmark = pytest.mark.unit

REQUIRED = {
    "gearbox_bearing_failure",
    "converter_cooling_heatwave",
    "frozen_sensor_no_alarm",
    "two_failures_one_site",
    "healthy_fleet",
}


def test_required_scenarios_are_listed() -> None:
    names = list_scenarios()
    assert set(names) >= REQUIRED
    assert names == sorted(names)


@pytest.mark.parametrize("name", sorted(REQUIRED | {"sensor_faults_showcase"}))
def test_every_scenario_loads_and_runs(name: str) -> None:
    scenario = load_scenario(name)
    assert isinstance(scenario, Scenario)
    assert scenario.name == name and scenario.description.strip()
    assert not scenario.config.failures.random_enabled
    fleet = scenario.fleet()
    truth = fleet.ground_truth()
    assert len(truth.failures) == len(scenario.config.forced_failures)
    assert len(truth.sensor_faults) == len(scenario.config.forced_sensor_faults)
    first = next(iter(fleet.iter_records()))
    assert first["event_time"] == scenario.config.start


def test_unknown_scenario_lists_the_available_ones() -> None:
    with pytest.raises(UnknownScenarioError) as err:
        load_scenario("gearbox_failure")
    message = str(err.value)
    assert "gearbox_failure" in message
    for name in REQUIRED:
        assert name in message
    with pytest.raises(UnknownScenarioError):
        load_scenario("../config")


def test_scenario_file_with_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndescription: x\nconfig:\n  n_turbines: 2\n  wind: 3\n")
    with pytest.raises(ConfigError, match=r"config\.wind: unknown key"):
        load_scenario_file(path)
    path.write_text("name: mine\ndescription: x\nconfig:\n  n_turbines: 2\n  duration_days: 1\n")
    assert load_scenario(str(path)).config.n_turbines == 2


def test_gearbox_bearing_failure_story() -> None:
    scenario = load_scenario("gearbox_bearing_failure")
    truth = scenario.fleet().ground_truth().failures
    assert len(truth) == 1
    row = truth.iloc[0]
    assert row["mode"] == "gearbox_bearing"
    assert pd.Timedelta(days=8) <= row["failure_time"] - row["onset_time"] <= pd.Timedelta(days=12)
    assert row["repair_time"] < pd.Timestamp(scenario.config.end)
    frame = scenario.fleet().to_frame()
    one = frame[frame["turbine_id"] == row["turbine_id"]].set_index("event_time")
    assert (
        one.loc[row["failure_time"] : row["repair_time"] - pd.Timedelta(seconds=1), "power_kw"] == 0
    ).all()
    loaded = one[one["power_kw"] > 1000]
    before = loaded.loc[: row["onset_time"], "vibration_mm_s"].mean()
    late = loaded.loc[
        row["failure_time"] - pd.Timedelta(days=2) : row["failure_time"], "vibration_mm_s"
    ].mean()
    assert late > before + 2


def test_two_failures_one_site_story() -> None:
    scenario = load_scenario("two_failures_one_site")
    truth = scenario.fleet().ground_truth().failures
    assert len(truth) == 2
    assert truth["site_id"].nunique() == 1
    assert truth["turbine_id"].nunique() == 2


def test_converter_heatwave_story() -> None:
    scenario = load_scenario("converter_cooling_heatwave")
    frame = scenario.fleet().to_frame()
    daily = frame.groupby(frame["event_time"].dt.floor("D"))["ambient_temp_c"].mean()
    assert daily.loc["2024-07-08"] > daily.loc["2024-07-02"] + 5
    truth = scenario.fleet().ground_truth().failures
    assert truth.iloc[0]["mode"] == "converter_cooling"


def test_healthy_fleet_has_no_alarm() -> None:
    frame = load_scenario("healthy_fleet").fleet().to_frame()
    assert not frame["status_code"].isin([40, 50, 60, 70, 80]).any()
    assert frame[frame.columns[4:-1]].notna().all().all()
