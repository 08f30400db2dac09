"""Reproducibility: same seed -> same bytes; windows, streaming and fleet size do not change values."""

from __future__ import annotations

import hashlib
import io
from itertools import islice

import numpy as np
import pandas as pd
import pytest

from common.contracts import SIGNALS, TelemetryEvent, make_event_id
from simulator.config import FleetConfig
from simulator.fleet import Fleet

pytestmark = pytest.mark.unit


def _config(**kw: object) -> FleetConfig:
    data: dict[str, object] = {"seed": 21, "n_turbines": 6, "duration_days": 4, "preset": "training"}
    data.update(kw)
    return FleetConfig.model_validate(data)


def _digest(frame: pd.DataFrame) -> str:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_same_seed_same_bytes() -> None:
    a = Fleet(_config()).to_frame()
    b = Fleet(_config()).to_frame()
    assert a.equals(b)
    assert _digest(a) == _digest(b)
    ga, gb = Fleet(_config()).ground_truth(), Fleet(_config()).ground_truth()
    assert ga.failures.equals(gb.failures) and ga.sensor_faults.equals(gb.sensor_faults)


def test_other_seed_other_data() -> None:
    a = Fleet(_config()).to_frame()
    b = Fleet(_config(seed=22)).to_frame()
    assert not np.allclose(a["wind_speed_ms"], b["wind_speed_ms"])


def test_windows_concatenate_to_the_whole() -> None:
    fleet = Fleet(_config())
    whole = fleet.to_frame()
    mid = pd.Timestamp("2024-01-03T00:00:00Z")
    first = fleet.to_frame(end=mid)
    second = fleet.to_frame(start=mid)
    joined = pd.concat([first, second], ignore_index=True)
    assert joined.equals(whole)
    assert (first["event_time"] < mid).all() and (second["event_time"] >= mid).all()


def test_longer_run_starts_with_the_shorter_one() -> None:
    """Generating 2 days then 2 more equals generating 4: incidents and noise do not depend on horizon."""
    short = Fleet(_config(duration_days=2))
    long = Fleet(_config(duration_days=4))
    assert short.to_frame().equals(long.to_frame(end="2024-01-03T00:00:00Z"))
    gt_short = short.ground_truth().failures
    gt_long = long.ground_truth().failures
    assert gt_short.equals(gt_long.iloc[: len(gt_short)])


def test_turbine_values_do_not_depend_on_fleet_size() -> None:
    small = Fleet(_config(n_turbines=3)).to_frame()
    big = Fleet(_config(n_turbines=9)).to_frame()
    big3 = big[big["turbine_id"].isin(["WT-001", "WT-002", "WT-003"])].reset_index(drop=True)
    assert small.equals(big3)


def test_iter_records_equals_to_frame() -> None:
    fleet = Fleet(_config(sensor_faults={"rates_per_turbine_year": {"dropout": 200, "frozen": 50}}))
    frame = fleet.to_frame()
    records = list(fleet.iter_records())
    assert len(records) == len(frame)
    as_frame = pd.DataFrame.from_records(records)
    assert list(as_frame.columns) == list(frame.columns)
    for col in ("event_id", "turbine_id", "site_id", "status_code"):
        assert as_frame[col].tolist() == frame[col].tolist(), col
    assert [r["event_time"] for r in records] == frame["event_time"].dt.to_pydatetime().tolist()
    values = as_frame[list(SIGNALS)].astype(float).to_numpy()
    assert np.array_equal(values, frame[list(SIGNALS)].to_numpy(), equal_nan=True)
    missing = [r for r in records if any(r[s] is None for s in SIGNALS)]
    assert missing, "dropouts expected"
    assert all(isinstance(r[s], float) or r[s] is None for r in records[:500] for s in SIGNALS)
    TelemetryEvent(**missing[0])


def test_iter_records_streams_a_window() -> None:
    fleet = Fleet(_config())
    start = pd.Timestamp("2024-01-02T12:00:00Z")
    records = list(islice(fleet.iter_records(start=start), 12))
    assert records[0]["event_time"] == start.to_pydatetime()
    assert [r["turbine_id"] for r in records[:6]] == [f"WT-00{i}" for i in range(1, 7)]
    assert records[6]["event_time"] == (start + pd.Timedelta(minutes=10)).to_pydatetime()


def test_event_ids_match_the_contract() -> None:
    frame = Fleet(_config(period_s=1, duration_days=0.001)).to_frame()
    assert frame["event_id"].is_unique
    for row in frame.sample(50, random_state=0).itertuples():
        assert row.event_id == make_event_id(row.turbine_id, row.event_time.to_pydatetime())


def test_large_fleet_streams_in_bounded_chunks() -> None:
    fleet = Fleet(FleetConfig(n_turbines=10_000, duration_days=1))
    assert fleet.turbines[-1].turbine_id == "WT-10000"
    assert fleet._sim.chunk_steps * 10_000 <= 1 << 18
    first = list(islice(fleet.iter_records(), 10_001))
    assert first[0]["turbine_id"] == "WT-00001" and first[9_999]["turbine_id"] == "WT-10000"
    assert first[10_000]["event_time"] > first[0]["event_time"]
    TelemetryEvent(**first[-1])
