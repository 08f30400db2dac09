"""Pure sweep-scheduling decisions: cron expression, run ids, whether a catch-up is due.

Why deterministic run ids: with several workers (or a leader change in the middle of a sweep) two
processes may decide to run the same sweep; ``sweep_runs.run_id`` is the primary key, so the first
claim wins and the sweep runs once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SWEEP_NAMESPACE = uuid.UUID("1d3f5a2c-8b4e-4f61-9c07-5e2a7b9d0c13")


def cron_expression(hour: int, minute: int) -> str:
    """Daily cron line for faust's ``app.crontab`` (minute hour dom month dow)."""
    return f"{minute} {hour} * * *"


def previous_slot(now: datetime, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """The most recent scheduled sweep time at or before ``now`` (returned in UTC)."""
    local = now.astimezone(zone)
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot > local:
        slot = (local - timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    # Re-attach the zone so a DST change between the two days yields the right UTC offset.
    slot = slot.replace(tzinfo=zone)
    return slot.astimezone(UTC)


def schedule_run_id(slot: datetime) -> str:
    return str(uuid.uuid5(SWEEP_NAMESPACE, f"schedule|{slot.astimezone(UTC).isoformat()}"))


def catch_up_run_id(last_success: datetime | None) -> str:
    stamp = "never" if last_success is None else last_success.astimezone(UTC).isoformat()
    return str(uuid.uuid5(SWEEP_NAMESPACE, f"catch_up|{stamp}"))


def catch_up_due(last_success: datetime | None, now: datetime, max_age: timedelta, fleet_size: int) -> bool:
    """True when a sweep is owed: the last successful one is older than ``max_age``, or there was none.

    A fleet that was never swept gets its first sweep as soon as turbines are known (maintenance
    planning reads the daily sweep; waiting for the next 02:00 would leave a new deployment without
    one for up to a day). An empty fleet has nothing to sweep.
    """
    if fleet_size <= 0:
        return False
    return last_success is None or now - last_success > max_age
