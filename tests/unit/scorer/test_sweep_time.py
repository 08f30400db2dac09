"""The sweep's as-of times: each turbine as of min(wall now, its site's data clock) (docs/time.md, rule 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scorer.sweep import plan_sweep

WALL = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


def ts(dt: datetime) -> float:
    return dt.timestamp()


def test_historical_site_is_swept_as_of_its_last_data() -> None:
    last = WALL - timedelta(days=365)
    plan = plan_sweep([("A1", "old", ts(last)), ("A2", "old", ts(last - timedelta(minutes=10)))], WALL)
    assert plan.site_as_of == {"old": last}
    assert plan.groups == {last: ["A1", "A2"]}


def test_live_site_clock_is_its_newest_turbine_and_silent_turbines_share_it() -> None:
    newest = WALL - timedelta(minutes=3)
    plan = plan_sweep([("L1", "live", ts(newest)), ("L2", "live", ts(newest - timedelta(hours=6)))], WALL)
    assert plan.site_as_of["live"] == newest
    assert plan.groups[newest] == ["L1", "L2"]  # L2 is judged 6 h stale against its site's clock


def test_sites_are_independent_and_the_wall_clock_caps_a_clock_ahead() -> None:
    ahead = WALL + timedelta(minutes=5)  # a sensor clock slightly ahead (accepted within the skew)
    old = WALL - timedelta(days=30)
    plan = plan_sweep([("X", "ahead", ts(ahead)), ("Y", "old", ts(old))], WALL)
    assert plan.site_as_of == {"ahead": WALL, "old": old}
    assert plan.groups == {WALL: ["X"], old: ["Y"]}


def test_same_data_gives_the_same_plan_whatever_the_wall_clock() -> None:
    last = WALL - timedelta(days=2)
    rows = [("A", "s", ts(last))]
    assert plan_sweep(rows, WALL) == plan_sweep(rows, WALL + timedelta(hours=5))


def test_empty_fleet() -> None:
    plan = plan_sweep([], WALL)
    assert plan.site_as_of == {} and plan.groups == {}
