"""The API's time model (api.clock): site data clocks, staleness against them, live/historical, sentences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.clock import (
    HISTORICAL_AFTER,
    default_history_end,
    feed_problems,
    fleet_clock,
    format_duration,
    is_stale,
    site_clocks,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LIMIT = timedelta(minutes=30)


def test_live_site_staleness_follows_its_own_data_clock() -> None:
    (site,) = site_clocks([("A", NOW - timedelta(minutes=2), 3)], now=NOW, stale_after=LIMIT)
    assert site.mode == "live" and site.silent_seconds == 120
    assert not is_stale(NOW - timedelta(minutes=31), site)  # 29 min behind the site's newest event
    assert is_stale(NOW - timedelta(minutes=33), site)
    assert is_stale(None, site)


def test_historical_site_ranks_as_of_its_last_data() -> None:
    clock = datetime(2024, 3, 2, 14, 9, tzinfo=UTC)
    sites = site_clocks([("B", clock, 2), ("A", clock, 5)], now=NOW, stale_after=LIMIT)
    assert [s.site_id for s in sites] == ["A", "B"] and all(s.mode == "historical" for s in sites)
    assert not is_stale(clock - timedelta(minutes=10), sites[0])  # years old, yet not stale
    fleet = fleet_clock(sites)
    assert fleet.mode == "historical" and fleet.data_as_of == clock
    assert fleet.message == "historical data: ranking as of 2024-03-02 14:09 UTC"
    assert feed_problems(sites, stale_after=LIMIT) == [
        "A: no data since 2024-03-02 14:09 UTC (historical)",
        "B: no data since 2024-03-02 14:09 UTC (historical)",
    ]


def test_mixed_empty_and_silent_live_sites() -> None:
    rows = [
        ("A", NOW - timedelta(minutes=45), 1),  # live but silent: supervision, not historical yet
        ("B", NOW - HISTORICAL_AFTER - timedelta(minutes=1), 1),
        ("C", None, 4),
    ]
    a, b, c = site_clocks(rows, now=NOW, stale_after=LIMIT)
    assert (a.mode, b.mode, c.mode) == ("live", "historical", "empty")
    assert is_stale(NOW, c)  # no clock: nothing can be judged fresh
    fleet = fleet_clock([a, b, c])
    assert (
        fleet.mode == "mixed"
        and fleet.message is not None
        and fleet.message.startswith("historical data for B")
    )
    assert feed_problems([a, b, c], stale_after=LIMIT)[0] == "A: no data for 45 min"
    assert fleet_clock([c]).mode == "empty" and fleet_clock([]).data_as_of is None


def test_clock_ahead_of_the_wall_clock_is_live() -> None:
    (site,) = site_clocks([("A", NOW + timedelta(minutes=5), 1)], now=NOW, stale_after=LIMIT)
    assert site.mode == "live" and site.silent_seconds == 0


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
)
def test_the_newest_turbine_of_a_site_is_never_stale(clock: datetime, behind: timedelta) -> None:
    (site,) = site_clocks([("S", clock, 1)], now=clock + behind, stale_after=LIMIT)
    assert not is_stale(clock, site)
    assert site.mode == ("historical" if behind > HISTORICAL_AFTER else "live")


def test_history_window_and_durations() -> None:
    last = datetime(2024, 3, 2, 14, 9, tzinfo=UTC)
    assert default_history_end(last, NOW) == last + timedelta(seconds=1)
    assert default_history_end(None, NOW) == NOW
    assert [format_duration(s) for s in (30, 2700, 12600, 864000)] == ["0 min", "45 min", "3.5 h", "10 d"]
