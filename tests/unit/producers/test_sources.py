"""Simulator-backed sources: window arithmetic and the scenario time shift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.contracts import make_event_id
from producers.sources import expected_count, fleet_config, floor_time, shifted
from simulator.fleet import Fleet

pytestmark = pytest.mark.unit


def test_floor_time_aligns_to_the_period() -> None:
    assert floor_time(datetime(2024, 1, 1, 12, 17, 59, tzinfo=UTC), 600) == datetime(
        2024, 1, 1, 12, 10, tzinfo=UTC
    )


def test_fleet_config_overrides_and_expected_count() -> None:
    start = datetime(2024, 2, 1, tzinfo=UTC)
    config = fleet_config(turbines=3, seed=5, start=start, duration_days=1)
    assert (config.n_turbines, config.seed, config.start) == (3, 5, start)
    assert expected_count(config) == 3 * 144 == sum(1 for _ in Fleet(config).iter_records())


def test_shift_moves_times_and_recomputes_ids() -> None:
    config = fleet_config(turbines=2, start=datetime(2024, 1, 1, tzinfo=UTC), duration_days=0.1)
    delta = timedelta(days=400)
    original = list(Fleet(config).iter_records())
    moved = list(shifted(Fleet(config).iter_records(), delta))
    assert len(moved) == len(original)
    for before, after in zip(original, moved, strict=True):
        assert after["event_time"] == before["event_time"] + delta
        assert after["event_id"] == make_event_id(after["turbine_id"], after["event_time"])
        assert after["power_kw"] == before["power_kw"]
