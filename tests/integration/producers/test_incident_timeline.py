"""How long the README's incident replay takes to show its turbine high and critical, with the real model.

Why offline: the scorer assesses a turbine as of its newest event with a 7-day ``FeatureWindow``; feeding
the incident turbine's events, shifted and renamed exactly as ``scenario --shift-to-now`` publishes them,
through the same window and the production model gives the tier at every step, and the accelerated clock
gives the wall-clock second at which each step is published. No broker and no timing involved: the result
is deterministic for a model version.

Run it as a script to print the figures:
``.venv/bin/python tests/integration/producers/test_incident_timeline.py [SPEED [LEAD]]``
(model from ``COCKPIT_REGISTRY_DIR``, default ``./registry`` as built by ``make run``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ALARMING = ("high", "critical")


@dataclass
class Timeline:
    model_version: str
    speed: float
    lead: timedelta
    caught_up_s: float | None
    first_high_s: float | None
    steady_high_s: float | None
    first_critical_s: float | None
    steady_critical_s: float | None
    tier_at_catch_up: str
    ttf_days_at_catch_up: float | None


def _registry() -> Path | None:
    from models.registry import production_version

    path = Path(os.environ.get("COCKPIT_REGISTRY_DIR") or ROOT / "registry")
    return path if path.is_dir() and production_version(path, required=False) else None


def incident_timeline(registry: Path, speed: float | None = None, lead: str | None = None) -> Timeline:
    """Tier of the incident turbine at each published step, as wall-clock seconds after the start."""
    from models.features import FeatureWindow
    from models.policy import load_policy
    from models.registry import load_production
    from models.scoring import BatchScorer
    from producers.cli import SCENARIO_LEAD, SCENARIO_SPEED, _parse_duration
    from producers.pacing import AcceleratedClock
    from producers.sources import DEFAULT_ID_PREFIX, plan_scenario, shifted
    from simulator.scenarios import load_scenario

    speed = SCENARIO_SPEED if speed is None else speed
    lead_delta = _parse_duration(lead or SCENARIO_LEAD, "--lead")
    scn = load_scenario("gearbox_bearing_failure")
    now = datetime.now(UTC)
    plan = plan_scenario(
        scn.config, now=now, shift_to_now=True, lead=lead_delta, speed=speed, id_prefix=DEFAULT_ID_PREFIX
    )
    [incident] = plan.incident_turbines
    clock = AcceleratedClock(speed, plan.start, now.timestamp(), not_before_event_time=True)
    bundle = load_production(registry)
    scorer = BatchScorer(bundle, load_policy())
    window = FeatureWindow(incident)
    steps: list[tuple[float, str, float | None]] = []
    for record in shifted(scn.fleet().iter_records(), plan.delta, id_prefix=DEFAULT_ID_PREFIX):
        if record["turbine_id"] != incident:
            continue
        when = record["event_time"]
        if when > now:  # from here on the replay runs in real time: the climb happened before
            break
        window.update(record)
        [assessment] = scorer.score([(incident, window)], now=when)  # stream: as of its newest event
        steps.append((clock.due_at(when) - now.timestamp(), assessment.tier, assessment.ttf_days))

    def first(tiers: tuple[str, ...]) -> float | None:
        return next((t for t, tier, _ in steps if tier in tiers), None)

    def steady(tiers: tuple[str, ...]) -> float | None:
        since = None
        for t, tier, _ in steps:
            since = (t if since is None else since) if tier in tiers else None
        return since

    return Timeline(
        model_version=bundle.version,
        speed=speed,
        lead=lead_delta,
        caught_up_s=None if plan.caught_up_at is None else (plan.caught_up_at - now).total_seconds(),
        first_high_s=first(ALARMING),
        steady_high_s=steady(ALARMING),
        first_critical_s=first(("critical",)),
        steady_critical_s=steady(("critical",)),
        tier_at_catch_up=steps[-1][1],
        ttf_days_at_catch_up=steps[-1][2],
    )


@pytest.mark.integration
def test_default_replay_shows_the_incident_high_then_critical_within_five_minutes() -> None:
    registry = _registry()
    if registry is None:
        pytest.skip("no production model in COCKPIT_REGISTRY_DIR or ./registry (built by `make run`)")
    timeline = incident_timeline(registry)
    print(timeline)
    assert timeline.steady_high_s is not None and timeline.steady_critical_s is not None
    assert timeline.steady_high_s <= timeline.steady_critical_s <= 5 * 60
    assert timeline.tier_at_catch_up == "critical"
    assert timeline.caught_up_s is not None and timeline.steady_critical_s < timeline.caught_up_s


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    found = _registry()
    if found is None:
        sys.exit("no production model: run `make run` once (or set COCKPIT_REGISTRY_DIR)")
    args = sys.argv[1:]
    result = incident_timeline(found, float(args[0]) if args else None, args[1] if len(args) > 1 else None)
    for name, value in vars(result).items():
        if isinstance(value, float) and name.endswith("_s"):
            value = f"{value:.0f} s ({value / 60:.1f} min)"
        print(f"{name:22} {value}")
