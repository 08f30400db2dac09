"""Record sources for the simulator-backed modes (live, accelerated, backfill, scenario).

Why thin: the simulator already yields time-ordered contract dicts with stable event ids; we only choose
the window and, for ``scenario``, rename the scenario's turbines (so an incident replay never collides
with the live fleet) and, with ``--shift-to-now``, move it so that its failure lies just ahead of now.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common.contracts import IDENTIFIER_PATTERN, make_event_id
from simulator.config import FleetConfig, load_fleet_config

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

#: Default ``scenario --id-prefix``: replayed turbines are ``R-WT-003`` on site ``R-SITE-A``; when the topic
#: already holds a previous replay under ``R-`` that the new one would overlap in time, ``R2-``, ``R3-``...
DEFAULT_ID_PREFIX = "R-"
PREFIX_CANDIDATES: tuple[str, ...] = (DEFAULT_ID_PREFIX, *(f"R{n}-" for n in range(2, 10)))


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


def shifted(
    records: Iterator[dict[str, Any]], delta: timedelta, *, id_prefix: str = ""
) -> Iterator[dict[str, Any]]:
    """Move every event by ``delta`` and prefix its turbine and site ids with ``id_prefix``.

    Event ids are recomputed so they stay a function of (turbine, time).
    """
    last: datetime | None = None
    moved: datetime | None = None
    for record in records:
        when = record["event_time"]
        if when is not last:
            last, moved = when, when + delta
        if id_prefix:
            record["turbine_id"] = id_prefix + record["turbine_id"]
            record["site_id"] = id_prefix + record["site_id"]
        record["event_time"] = moved
        record["event_id"] = make_event_id(record["turbine_id"], moved)  # type: ignore[arg-type]
        yield record


def check_id_prefix(prefix: str, ids: list[str]) -> None:
    """Raise ``ValueError`` naming the first id that the contract would refuse once prefixed."""
    for original in ids:
        renamed = prefix + original
        if not _IDENTIFIER.fullmatch(renamed):
            raise ValueError(
                f"--id-prefix {prefix!r} makes {renamed!r}, which the telemetry contract refuses "
                f"(identifiers: {IDENTIFIER_PATTERN}: a letter or digit, then up to 63 of "
                "letters, digits and . _ : / -)"
            )


@dataclass(frozen=True)
class IncidentPlan:
    """Where a scenario lands in time and under which ids (what ``scenario`` prints at start)."""

    delta: timedelta
    start: datetime  # first event time after the shift
    end: datetime  # end (exclusive) after the shift
    failures: tuple[tuple[str, str, datetime], ...]  # (turbine id, mode, failure time) after shift+rename
    caught_up_at: datetime | None  # wall clock at which the accelerated past reaches now (None: never)

    @property
    def incident_turbines(self) -> list[str]:
        return list(dict.fromkeys(tid for tid, _, _ in self.failures))


def plan_scenario(
    config: FleetConfig,
    *,
    now: datetime,
    shift_to_now: bool,
    lead: timedelta,
    speed: float,
    id_prefix: str = "",
) -> IncidentPlan:
    """Place a scenario in time (pure; ``now`` injected).

    With ``shift_to_now`` the scenario's first forced failure is moved to ``now + lead`` (aligned down
    to the period), so the degradation is published accelerated and the failure is still ahead: the
    incident turbine climbs the ranking in front of the user. A scenario without a forced failure is
    moved so that it ends now. Without ``shift_to_now`` the scenario keeps its own (historical) dates.
    """
    failures = sorted(config.forced_failures, key=lambda f: f.failure_time)
    delta = timedelta(0)
    if shift_to_now:
        anchor = failures[0].failure_time if failures else config.end
        target = now + lead if failures else now
        new_start = floor_time(target - (anchor - config.start), config.period_s)
        delta = new_start - config.start
    start, end = config.start + delta, config.end + delta
    caught_up: datetime | None = None
    if shift_to_now:
        if speed > 0:
            # accelerated time reaches the present when (t - start) / speed == t - now_wall
            behind = (now - start).total_seconds()
            caught_up = now + timedelta(seconds=behind / (speed - 1)) if speed > 1 else None
        else:
            caught_up = now
        if caught_up is not None and caught_up > end:
            caught_up = None
    return IncidentPlan(
        delta=delta,
        start=start,
        end=end,
        failures=tuple((id_prefix + f.turbine_id, f.mode.value, f.failure_time + delta) for f in failures),
        caught_up_at=caught_up,
    )


def free_prefix(
    candidates: Sequence[str], newest_of: Callable[[str], datetime | None], start: datetime
) -> tuple[str, str | None]:
    """First prefix whose turbines have no event at or after ``start`` in the topic (pure; lookup injected).

    Why: the scorer keeps each turbine's state in event time; a second replay under the same ids would
    be older than the first one's events and rejected as ``late``. Returns (prefix, why others were
    skipped); when every candidate is taken, the last one with a note.
    """
    skipped: list[str] = []
    for prefix in candidates:
        newest = newest_of(prefix)
        if newest is None or newest < start:
            return prefix, (f"{', '.join(skipped)} already used in the topic" if skipped else None)
        skipped.append(f"{prefix} (events up to {newest:%Y-%m-%d %H:%M} UTC)")
    return candidates[-1], "every replay prefix is already used; events may be rejected as late"
