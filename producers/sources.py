"""Record sources for the simulator-backed modes (live, accelerated, backfill, scenario).

Why thin: the simulator already yields time-ordered contract dicts with stable event ids; we only choose
the window and, for ``scenario --shift-to-now``, move a historical scenario to the present.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common.contracts import make_event_id
from simulator.config import FleetConfig, load_fleet_config


def floor_time(value: datetime, period_s: int) -> datetime:
    """Round down to a multiple of ``period_s`` since the epoch (simulator steps are aligned)."""
    stamp = int(value.timestamp())
    return datetime.fromtimestamp(stamp - stamp % period_s, UTC)


def fleet_config(
    base: Path | None = None,
    *,
    turbines: int | None = None,
    seed: int | None = None,
    start: datetime | None = None,
    duration_days: float | None = None,
) -> FleetConfig:
    """The default (or a YAML) fleet config with CLI overrides, validated again as a whole.

    Scripted incidents of a YAML config are pinned to dates: moving ``start`` drops them (use the
    ``scenario`` mode to replay an incident as written).
    """
    data: dict[str, Any] = load_fleet_config(base).model_dump() if base else {}
    if turbines is not None:
        data["n_turbines"] = turbines
    if seed is not None:
        data["seed"] = seed
    if start is not None:
        data["start"] = start
    if duration_days is not None:
        data["duration_days"] = duration_days
    moved = start is not None and base is not None and load_fleet_config(base).start != start
    if moved:
        data["forced_failures"], data["forced_sensor_faults"] = [], []
    return FleetConfig.model_validate(data)


def expected_count(config: FleetConfig) -> int:
    return config.n_turbines * config.n_steps


def shifted(records: Iterator[dict[str, Any]], delta: timedelta) -> Iterator[dict[str, Any]]:
    """Move every event by ``delta``; event ids are recomputed so they stay a function of (turbine, time)."""
    last: datetime | None = None
    moved: datetime | None = None
    for record in records:
        when = record["event_time"]
        if when is not last:
            last, moved = when, when + delta
        record["event_time"] = moved
        record["event_id"] = make_event_id(record["turbine_id"], moved)  # type: ignore[arg-type]
        yield record
