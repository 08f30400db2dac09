"""A repaired turbine is judged on its condition since the repair (issue 12, point 6), with a real worker.

The gearbox-bearing scenario's failing turbine degrades until it is high/critical; the maintenance team
records the repair through the API (the real app, the real command topic); the worker forgets the window
before ``done_at``, rescores at once and says why; post-repair data then scores as a healthy turbine. The
repair command replayed (a retry, and again after a restart from the checkpoint) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from common.settings import load_settings
from models.features import FeatureWindow
from models.scoring import RiskAssessment
from scorer.repairs import annotate_from_window
from simulator.scenarios import load_scenario
from tests.integration.api.conftest import reader_url_for
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
KEY = "repair-test-key-0123456789"


def _state(db: str, tid: str) -> tuple[str, float, datetime, list[dict[str, str]], str] | None:
    rows = query(
        db,
        "SELECT tier, score, last_event_time, reasons, trigger FROM turbine_state WHERE turbine_id = %s",
        (tid,),
    )
    return rows[0] if rows else None  # type: ignore[return-value]


def test_repair_resets_the_window_and_says_why(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_repairs")
    fleet = load_scenario("gearbox_bearing_failure").fleet()
    failure = fleet.ground_truth().failures.iloc[0]
    tid = str(failure.turbine_id)
    failure_time = failure.failure_time.to_pydatetime()
    repair_time = failure.repair_time.to_pydatetime()
    records = [r for r in fleet.iter_records() if r["turbine_id"] == tid]
    before = [r for r in records if r["event_time"] < failure_time]
    after = [r for r in records if r["event_time"] >= repair_time][: 3 * 144]  # 3 days after the repair
    group = new_group()
    worker = start_worker(db, topics, group, batch_max_size=500)
    worker.wait_ready()
    publish(kafka_bootstrap, topics.telemetry, encode(before))
    last = before[-1]["event_time"]
    try:
        wait_for(lambda: (s := _state(db, tid)) is not None and s[2] == last, 90, "degraded turbine scored")
    except AssertionError:
        print(show(worker))
        raise
    tier, score_before, *_ = _state(db, tid)  # type: ignore[misc]
    assert tier in ("high", "critical"), (tier, score_before)

    api_settings = load_settings(
        ApiSettings,
        reader_database_url=reader_url_for(db),
        kafka_bootstrap_servers=kafka_bootstrap,
        command_topic=topics.commands,
        ensure_topics_on_start=False,
        api_key=KEY,
        log_format="console",
        log_level="WARNING",
        cors_origins=[],
    )
    body = {
        "kind": "done",
        "component": "gearbox",
        "finding": "failure_confirmed",
        "done_at": repair_time.isoformat(),
        "notes": "bearing replaced",
    }
    with TestClient(create_app(api_settings)) as api:
        res = api.post(f"/v1/turbines/{tid}/interventions", json=body, headers={"X-API-Key": KEY})
        assert res.status_code == 201 and res.json()["repair_command"] == "published", res.text
        body["id"] = res.json()["id"]

        def repaired() -> bool:
            # The repair's own assessment (trigger 'manual') is in the history; the current state is it
            # or a later assessment (a catch-up sweep may follow at once), which also names the repair.
            manual = query(
                db, "SELECT count(*) FROM score_history WHERE turbine_id = %s AND trigger = 'manual'", (tid,)
            )[0][0]
            s = _state(db, tid)
            return bool(manual) and s is not None and bool(s[3]) and s[3][0].get("indicator") == "repair"

        try:
            wait_for(repaired, 30, "the repair assessment")
        except AssertionError:
            print(show(worker))
            raise
        tier_after, score_after, last_after, reasons, _ = _state(db, tid)  # type: ignore[misc]
        assert last_after == last  # the turbine was last seen then; only its past was forgotten
        assert tier_after not in ("high", "critical") and score_after < score_before, (
            tier_after,
            score_after,
        )
        assert reasons[0]["indicator"] == "repair"
        # The current state may be a later sweep's, which knows the repair time from the window but not the
        # component; the repair's own assessment names both.
        assert reasons[0]["text"].startswith(f"repaired on {repair_time:%Y-%m-%d %H:%M} UTC")
        assert "history before the repair ignored" in reasons[0]["text"]
        hist = query(
            db, "SELECT tier, reasons FROM score_history WHERE turbine_id = %s AND trigger = 'manual'", (tid,)
        )
        assert len(hist) == 1 and hist[0][1][0]["indicator"] == "repair"
        assert hist[0][1][0]["text"] == (
            f"repaired on {repair_time:%Y-%m-%d %H:%M} UTC (gearbox): history before the repair ignored"
        )

        # Post-repair data: a healthy turbine again (the degraded week no longer drives the score).
        publish(kafka_bootstrap, topics.telemetry, encode(after))
        last_post = after[-1]["event_time"]
        wait_for(
            lambda: (s := _state(db, tid)) is not None and s[2] == last_post, 60, "post-repair data scored"
        )
        post = query(
            db,
            "SELECT max(score), count(*) FILTER (WHERE tier IN ('high', 'critical')) FROM score_history "
            "WHERE turbine_id = %s AND trigger = 'stream' AND time >= %s",
            (tid, repair_time),
        )[0]
        assert post[1] == 0, f"high/critical after the repair (max score {post[0]})"

        # The same command again (a retry of the request with its id): already applied, nothing cleared.
        again = api.post(f"/v1/turbines/{tid}/interventions", json=body, headers={"X-API-Key": KEY})
        assert again.status_code == 200 and again.json()["repair_command"] == "published"
        wait_for(lambda: worker.log().count('"repair already applied"') >= 1, 30, "replay seen by the worker")
        assert _state(db, tid)[2] == last_post  # type: ignore[index]
        assert (
            query(
                db, "SELECT count(*) FROM score_history WHERE turbine_id = %s AND trigger = 'manual'", (tid,)
            )[0][0]
            == 1
        )

        # Restart: the checkpoint keeps the repair; a replay after the restore does not apply it twice.
        worker.stop()
        stored = query(
            db, "SELECT state FROM scorer_windows WHERE consumer_group = %s AND turbine_id = %s", (group, tid)
        )
        window = FeatureWindow.from_bytes(bytes(stored[0][0]))
        assert window.repaired_before == repair_time.timestamp()
        assert window.data_quality()["history_hours"] < 3 * 24  # nothing from before the repair
        # the stream path's annotation (scorer/processing.py hook): while the window reaches the repair
        probe = RiskAssessment(
            tid, window.as_of, 1.0, "low", None, None, None, None, reasons=[{"indicator": "x"}]
        )
        assert (
            annotate_from_window(probe, window)
            .reasons[0]["text"]
            .startswith(f"repaired on {repair_time:%Y-%m-%d}")
        )
        assert probe.reasons[1] == {"indicator": "x"} and probe.data_quality["repaired_at"]
        second = start_worker(db, topics, group, batch_max_size=500)
        second.wait_ready()
        retry = api.post(f"/v1/turbines/{tid}/interventions", json=body, headers={"X-API-Key": KEY})
        assert retry.status_code == 200
        wait_for(lambda: '"repair already applied"' in second.log(), 40, "replay after restart seen")
        assert (
            query(
                db, "SELECT count(*) FROM score_history WHERE turbine_id = %s AND trigger = 'manual'", (tid,)
            )[0][0]
            == 1
        )
    print(
        f"{tid}: {tier} {score_before:.1f} before the repair -> {tier_after} {score_after:.1f} after; "
        f"post-repair stream max score {post[0]:.1f}"
    )
