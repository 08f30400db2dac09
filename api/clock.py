"""The time model as the API applies it (pure, unit-tested): site data clocks, staleness, live vs historical.

Why per site: each site has a data clock, the newest event time of any of its turbines. A turbine is stale
when its last event is older than its site's data clock minus the staleness limit, so a fleet replayed from
last year ranks with its real tiers instead of "stale" everywhere. A site whose data clock is far behind the
wall clock is *historical* (imported history, or a feed that stopped): it is shown as of its last data and
said so. A live feed that stops is supervision's business (``feed_problems``), not a per-turbine tier.
See docs/time.md and docs/api.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

#: Until ``api/settings.py`` has a setting for it: a site whose newest event is older than this (wall
#: clock) is historical.
HISTORICAL_AFTER = timedelta(hours=2)

SiteMode = Literal["live", "historical", "empty"]
FleetMode = Literal["live", "historical", "mixed", "empty"]


def format_time(value: datetime) -> str:
    """'2024-03-02 14:10 UTC': what people read in banners and sentences."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_duration(seconds: float) -> str:
    """'45 min', '3.5 h', '12 d': rough and readable."""
    if seconds < 5400:
        return f"{max(0, round(seconds / 60))} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


@dataclass(frozen=True)
class SiteClock:
    site_id: str
    data_as_of: datetime | None  # newest event time of the site's turbines; None = no event yet
    turbines: int
    mode: SiteMode
    silent_seconds: float | None  # wall clock minus data clock (0 when the clock is ahead)
    stale_before: datetime | None  # a turbine whose last event is older than this is stale

    def as_dict(self) -> dict[str, object]:
        return {
            "site_id": self.site_id,
            "data_as_of": self.data_as_of,
            "turbines": self.turbines,
            "mode": self.mode,
            "silent_seconds": self.silent_seconds,
        }


def site_clocks(
    rows: Iterable[tuple[str, datetime | None, int]],
    *,
    now: datetime,
    stale_after: timedelta,
    historical_after: timedelta = HISTORICAL_AFTER,
) -> list[SiteClock]:
    """``rows``: (site_id, newest last_event_time or None, turbine count), one per site."""
    out: list[SiteClock] = []
    for site_id, newest, count in rows:
        if newest is None:
            out.append(SiteClock(str(site_id), None, int(count), "empty", None, None))
            continue
        silent = max(0.0, (now - newest).total_seconds())
        mode: SiteMode = "historical" if silent > historical_after.total_seconds() else "live"
        out.append(SiteClock(str(site_id), newest, int(count), mode, silent, newest - stale_after))
    return sorted(out, key=lambda c: c.site_id)


def is_stale(last_event: datetime | None, clock: SiteClock | None) -> bool:
    """Stale = no event, or older than the site's data clock minus the limit (never the wall clock)."""
    if last_event is None or clock is None or clock.stale_before is None:
        return True
    return last_event < clock.stale_before


@dataclass(frozen=True)
class FleetClock:
    mode: FleetMode
    data_as_of: datetime | None  # newest data of the fleet
    message: str | None  # the sentence to show; None when everything is live
    sites: list[SiteClock]

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "data_as_of": self.data_as_of,
            "message": self.message,
            "sites": [s.as_dict() for s in self.sites],
        }


def fleet_clock(sites: Sequence[SiteClock]) -> FleetClock:
    """Fleet-level mode and the human sentence the ranking and the page show."""
    times = [s.data_as_of for s in sites if s.data_as_of is not None]
    if not times:
        return FleetClock("empty", None, "no telemetry received yet", list(sites))
    newest = max(times)
    historical = [s for s in sites if s.mode == "historical" and s.data_as_of is not None]
    if not historical:
        return FleetClock("live", newest, None, list(sites))
    if len(historical) == len(times):
        oldest = min(times)
        when = format_time(newest) if newest == oldest else f"{format_time(oldest)} to {format_time(newest)}"
        return FleetClock("historical", newest, f"historical data: ranking as of {when}", list(sites))
    parts = ", ".join(f"{s.site_id} as of {format_time(s.data_as_of)}" for s in historical if s.data_as_of)
    return FleetClock("mixed", newest, f"historical data for {parts}; other sites live", list(sites))


def feed_problems(sites: Sequence[SiteClock], *, stale_after: timedelta) -> list[str]:
    """Supervision sentences: live sites silent longer than the staleness limit, historical sites."""
    problems: list[str] = []
    for s in sites:
        if s.data_as_of is None or s.silent_seconds is None:
            continue
        if s.mode == "historical":
            problems.append(f"{s.site_id}: no data since {format_time(s.data_as_of)} (historical)")
        elif s.silent_seconds > stale_after.total_seconds():
            problems.append(f"{s.site_id}: no data for {format_duration(s.silent_seconds)}")
    return problems


def default_history_end(last_data: datetime | None, now: datetime) -> datetime:
    """The history window ends just after the turbine's last data (exclusive end), never at the wall clock
    of a historical turbine; the wall clock only when the turbine has no data at all."""
    if last_data is None:
        return now
    return last_data + timedelta(seconds=1)
