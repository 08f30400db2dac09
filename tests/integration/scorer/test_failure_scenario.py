"""A simulated gearbox-bearing failure: the failing turbine reaches high/critical before it fails."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simulator.scenarios import load_scenario
from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    encode,
    new_group,
    publish,
    query,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_failing_turbine_flagged_before_failure_healthy_stay_low(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_failure")
    fleet = load_scenario("gearbox_bearing_failure").fleet()
    failures = fleet.ground_truth().failures
    failing = str(failures.turbine_id.iloc[0])
    failure_time = failures.failure_time.iloc[0].to_pydatetime()
    # Stop a few hours before the failure: everything the cockpit shows must come before it.
    records = [r for r in fleet.iter_records() if r["event_time"] < failure_time]
    # Small batches: a replay at full speed would otherwise fold days of data into one rescoring.
    worker = start_worker(db, topics, new_group(), batch_max_size=2000)  # 2024 events: no age limit
    worker.wait_ready()
    publish(kafka_bootstrap, topics.telemetry, encode(records))
    last = max(r["event_time"] for r in records)
    n = len({r["turbine_id"] for r in records})
    try:
        wait_for(
            lambda: (
                query(db, "SELECT count(*) FROM turbine_state WHERE last_event_time = %s", (last,))[0][0] == n
            ),
            150,
            "all turbines scored up to the last event",
        )
    except AssertionError:
        print(show(worker))
        raise
    flagged = query(
        db,
        "SELECT min(time) FROM score_history WHERE turbine_id = %s AND tier IN ('high', 'critical') "
        "AND time < %s",
        (failing, failure_time),
    )[0][0]
    assert flagged is not None, "the failing turbine never reached high/critical before its failure"
    lead_days = (failure_time - flagged).total_seconds() / 86400
    assert lead_days > 0.5
    state = dict(query(db, "SELECT turbine_id, tier FROM turbine_state"))
    assert state[failing] in ("high", "critical")
    healthy = {t: tier for t, tier in state.items() if t != failing}
    # Healthy turbines: never high/critical at any time, and currently low (a few moderate tolerated:
    # the tiny test model is trained in seconds).
    alarms = query(
        db,
        "SELECT count(*) FROM score_history WHERE turbine_id <> %s AND tier IN ('high', 'critical')",
        (failing,),
    )[0][0]
    assert alarms == 0
    low = sum(1 for tier in healthy.values() if tier == "low")
    assert low >= 0.8 * len(healthy), healthy
    assert worker.metric("scorer_events_accepted_total") == len(records)
    print(
        f"failing turbine flagged {lead_days:.1f} days before failure; healthy tiers: "
        f"{sorted(set(healthy.values()))}"
    )
