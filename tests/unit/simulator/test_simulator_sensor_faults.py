"""Instrument faults: each kind's shape, confined to one signal, never an alarm or a failure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from common.contracts import SIGNALS
from simulator.config import SENSOR_FAULT_KINDS, FleetConfig
from simulator.fleet import Fleet
from simulator.scenarios import load_scenario

pytestmark = pytest.mark.unit

FAULTS: list[dict[str, Any]] = [
    {
        "turbine_id": "WT-001",
        "signal": "vibration_mm_s",
        "kind": "frozen",
        "start": "2024-05-02T00:00:00Z",
        "end": "2024-05-03T12:00:00Z",
    },
    {
        "turbine_id": "WT-002",
        "signal": "generator_winding_temp_c",
        "kind": "dropout",
        "start": "2024-05-03T00:00:00Z",
        "end": "2024-05-03T18:00:00Z",
    },
    {
        "turbine_id": "WT-003",
        "signal": "gearbox_bearing_temp_c",
        "kind": "spike",
        "start": "2024-05-04T10:00:00Z",
        "end": "2024-05-04T10:20:00Z",
    },
    {
        "turbine_id": "WT-004",
        "signal": "converter_temp_c",
        "kind": "drift",
        "start": "2024-05-02T00:00:00Z",
        "end": "2024-05-05T00:00:00Z",
        "magnitude": 2.0,
    },
]


def _config(faults: list[dict[str, Any]]) -> FleetConfig:
    return FleetConfig.model_validate(
        {
            "seed": 77,
            "n_turbines": 5,
            "start": "2024-05-01T00:00:00Z",
            "duration_days": 6,
            "failures": {"random_enabled": False},
            "sensor_faults": {"random_enabled": False},
            "forced_sensor_faults": faults,
        }
    )


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return Fleet(_config(FAULTS)).to_frame(), Fleet(_config([])).to_frame()


def _cells(frame: pd.DataFrame, fault: dict[str, Any]) -> pd.Series:
    one = frame[frame["turbine_id"] == fault["turbine_id"]].set_index("event_time")
    start, end = pd.Timestamp(fault["start"]), pd.Timestamp(fault["end"])
    return one.loc[start : end - pd.Timedelta(seconds=1), fault["signal"]]


def test_faults_touch_only_their_signal_and_window(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    faulty, clean = frames
    assert faulty["status_code"].equals(clean["status_code"])  # no alarm, no stop
    diff = faulty[list(SIGNALS)].ne(clean[list(SIGNALS)]) & ~(
        faulty[list(SIGNALS)].isna() & clean[list(SIGNALS)].isna()
    )
    expected = pd.DataFrame(False, index=faulty.index, columns=list(SIGNALS))
    for fault in FAULTS:
        rows = (
            (faulty["turbine_id"] == fault["turbine_id"])
            & (faulty["event_time"] >= pd.Timestamp(fault["start"]))
            & (faulty["event_time"] < pd.Timestamp(fault["end"]))
        )
        expected.loc[rows, fault["signal"]] = True
    # a frozen or drifting reading can coincide with the true one (first cell, rounding): ">= - 5"
    assert not (diff & ~expected).any().any()
    assert diff.sum().sum() >= expected.sum().sum() - 5


def test_frozen_reads_exactly_constant(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    faulty, clean = frames
    frozen = _cells(faulty, FAULTS[0])
    assert len(frozen) == 36 * 6
    assert frozen.nunique() == 1
    assert _cells(clean, FAULTS[0]).nunique() > 50


def test_dropout_is_missing(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    faulty, _ = frames
    assert _cells(faulty, FAULTS[1]).isna().all()
    assert faulty[list(SIGNALS)].isna().sum().sum() == 18 * 6  # only that signal, only that window


def test_spike_is_short_and_large(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    faulty, clean = frames
    spike = _cells(faulty, FAULTS[2]) - _cells(clean, FAULTS[2])
    assert len(spike) == 2
    assert (spike.abs() > 30).all()


def test_drift_grows_linearly(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    faulty, clean = frames
    drift = (_cells(faulty, FAULTS[3]) - _cells(clean, FAULTS[3])).to_numpy()
    days = np.arange(len(drift)) * 600 / 86400
    assert np.allclose(drift, 2.0 * days, atol=0.002)


def test_scenario_frozen_sensor_raises_no_alarm() -> None:
    scenario = load_scenario("frozen_sensor_no_alarm")
    fleet = scenario.fleet()
    frame = fleet.to_frame()
    assert not frame["status_code"].isin([50, 40, 60, 70, 80]).any()
    truth = fleet.ground_truth()
    assert truth.failures.empty
    frozen = truth.sensor_faults[truth.sensor_faults["kind"] == "frozen"].iloc[0]
    one = frame[frame["turbine_id"] == frozen["turbine_id"]].set_index("event_time")
    values = one.loc[frozen["start"] : frozen["end"] - pd.Timedelta(seconds=1), frozen["signal"]]
    assert values.nunique() == 1 and len(values) == 3 * 144


def test_random_sensor_faults_cover_every_kind() -> None:
    fleet = Fleet(FleetConfig(seed=4, n_turbines=10, duration_days=365, preset="training"))
    faults = fleet.ground_truth().sensor_faults
    assert list(faults.columns[:5]) == ["turbine_id", "signal", "kind", "start", "end"]
    assert set(faults["kind"]) == {k.value for k in SENSOR_FAULT_KINDS}
    assert set(faults["signal"]) <= set(SIGNALS)
    assert (faults["end"] > faults["start"]).all()
    drift = faults[faults["kind"] == "drift"]
    assert not drift["signal"].str.contains("direction").any()


def test_random_sensor_faults_in_data() -> None:
    config = FleetConfig(
        seed=12,
        n_turbines=4,
        duration_days=30,
        sensor_faults={"rates_per_turbine_year": {"frozen": 30, "dropout": 30}},  # type: ignore[arg-type]
        failures={"random_enabled": False},  # type: ignore[arg-type]
    )
    fleet = Fleet(config)
    frame = fleet.to_frame()
    faults = fleet.ground_truth().sensor_faults
    assert len(faults) > 2
    for fault in faults.itertuples():
        one = frame[frame["turbine_id"] == fault.turbine_id].set_index("event_time")
        values = one.loc[fault.start : fault.end - pd.Timedelta(seconds=1), fault.signal]
        if fault.kind == "dropout":
            assert values.isna().all()
        elif len(values) and not values.isna().any():
            assert values.nunique() == 1
