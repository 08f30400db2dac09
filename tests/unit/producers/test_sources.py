"""Simulator-backed sources: window arithmetic and the scenario time shift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.contracts import make_event_id
from producers.sources import (
    check_id_prefix,
    expected_count,
    fleet_config,
    floor_time,
    plan_scenario,
    shifted,
)
from simulator.config import FleetConfig
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


def test_shift_with_prefix_renames_turbines_and_sites_and_keeps_the_contract() -> None:
    from common.contracts import parse_telemetry
    from producers.serialize import encode_record

    config = fleet_config(turbines=3, start=datetime(2024, 1, 1, tzinfo=UTC), duration_days=0.05)
    original = list(Fleet(config).iter_records())
    moved = list(shifted(Fleet(config).iter_records(), timedelta(0), id_prefix="R-"))
    for before, after in zip(original, moved, strict=True):
        assert after["turbine_id"] == "R-" + before["turbine_id"]
        assert after["site_id"] == "R-" + before["site_id"]
        assert after["event_id"] == make_event_id(after["turbine_id"], after["event_time"])
        assert after["event_id"] != before["event_id"]
        key, value = encode_record(after)
        assert key == after["turbine_id"].encode()
        assert parse_telemetry(value, now=after["event_time"]).turbine_id == after["turbine_id"]


@pytest.mark.parametrize("prefix", ["R-", "", "replay.2:", "X"])
def test_valid_prefixes_pass(prefix: str) -> None:
    check_id_prefix(prefix, ["WT-001", "SITE-A"])


@pytest.mark.parametrize("prefix", ["-R", " R", "R ", "R\x00", "é-", "R" * 60])
def test_prefixes_the_contract_refuses_are_named(prefix: str) -> None:
    with pytest.raises(ValueError, match="telemetry contract refuses"):
        check_id_prefix(prefix, ["WT-001"])


def _gearbox() -> FleetConfig:
    from simulator.scenarios import load_scenario

    return load_scenario("gearbox_bearing_failure").config


NOW = datetime(2026, 11, 29, 4, 3, 17, tzinfo=UTC)


def test_shift_to_now_puts_the_failure_lead_ahead_of_now() -> None:
    config = _gearbox()
    plan = plan_scenario(
        config, now=NOW, shift_to_now=True, lead=timedelta(hours=24), speed=3600, id_prefix="R-"
    )
    [(tid, mode, failure)] = plan.failures
    assert (tid, mode) == ("R-WT-003", "gearbox_bearing")
    ahead = NOW + timedelta(hours=24)
    assert ahead - timedelta(seconds=config.period_s) < failure <= ahead
    assert plan.start == config.start + plan.delta and plan.end == config.end + plan.delta
    assert plan.start.timestamp() % config.period_s == 0  # shifted on the simulator's grid
    assert plan.incident_turbines == ["R-WT-003"]
    # the past (294 h - 24 h) at x3600 takes ~270 s; then real time
    assert plan.caught_up_at is not None
    assert 265 < (plan.caught_up_at - NOW).total_seconds() < 275


def test_caught_up_time_is_where_accelerated_time_meets_the_wall_clock() -> None:
    from producers.pacing import AcceleratedClock

    plan = plan_scenario(_gearbox(), now=NOW, shift_to_now=True, lead=timedelta(hours=6), speed=600)
    assert plan.caught_up_at is not None
    clock = AcceleratedClock(600, plan.start, NOW.timestamp())
    sim_then = clock.sim_time_at(plan.caught_up_at.timestamp())
    assert abs(sim_then - plan.caught_up_at.timestamp()) < 1e-3


def test_speed_zero_catches_up_at_once_and_unshifted_keeps_its_dates() -> None:
    config = _gearbox()
    fast = plan_scenario(config, now=NOW, shift_to_now=True, lead=timedelta(hours=1), speed=0)
    assert fast.caught_up_at == NOW
    kept = plan_scenario(config, now=NOW, shift_to_now=False, lead=timedelta(hours=1), speed=3600)
    assert kept.delta == timedelta(0) and kept.caught_up_at is None
    assert kept.failures[0][0] == "WT-003"
    assert kept.failures[0][2] == config.forced_failures[0].failure_time


def test_scenario_without_failure_is_shifted_to_end_now() -> None:
    from simulator.scenarios import load_scenario

    config = load_scenario("healthy_fleet").config
    plan = plan_scenario(config, now=NOW, shift_to_now=True, lead=timedelta(hours=24), speed=3600)
    assert plan.failures == ()
    assert NOW - timedelta(seconds=config.period_s) < plan.end <= NOW
    assert plan.caught_up_at is None  # ends before the present: never real time


def test_free_prefix_takes_r_when_unused_or_older_than_the_new_replay() -> None:
    from producers.sources import PREFIX_CANDIDATES, free_prefix

    start = datetime(2026, 11, 17, tzinfo=UTC)
    assert free_prefix(PREFIX_CANDIDATES, lambda _p: None, start) == ("R-", None)
    older = {"R-": start - timedelta(days=1)}
    assert free_prefix(PREFIX_CANDIDATES, older.get, start) == ("R-", None)


def test_free_prefix_skips_prefixes_whose_replay_overlaps() -> None:
    from producers.sources import PREFIX_CANDIDATES, free_prefix

    start = datetime(2026, 11, 17, tzinfo=UTC)
    used = {"R-": start + timedelta(days=12), "R2-": start}
    prefix, note = free_prefix(PREFIX_CANDIDATES, used.get, start)
    assert prefix == "R3-" and note is not None and "R- (events up to 2026-11-29" in note
    every = dict.fromkeys(PREFIX_CANDIDATES, start)
    prefix, note = free_prefix(PREFIX_CANDIDATES, every.get, start)
    assert prefix == PREFIX_CANDIDATES[-1] and note is not None and "late" in note
