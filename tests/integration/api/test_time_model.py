"""The time model through the API (docs/time.md): site data clocks, historical fleets, one assessment, gaps.

Two seeded databases: the live fleet of ``api_db`` (one silent turbine) and a fleet imported from history
(``hist_db``: data clock 2024-03-02 14:09 UTC, a 4-day gap, a wall-clock sweep row, a not-ready scorer).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.schemas import FleetSummary, History, Supervision, TurbineDetail, TurbinePage
from tests.integration.api.conftest import ApiDb, HistDb
from tests.integration.api.seed import HISTORICAL_NOW, NOT_READY_PROBLEM

pytestmark = pytest.mark.integration

CLOCK = HISTORICAL_NOW - timedelta(minutes=1)  # newest event of each historical site


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------ historical fleet
def test_historical_fleet_ranks_with_real_tiers_and_says_so(hist_client: TestClient, hist_db: HistDb) -> None:
    res = hist_client.get("/v1/turbines?limit=500")
    assert res.status_code == 200, res.text
    page = TurbinePage.model_validate(res.json())
    seeded = hist_db.fleet.seeded
    assert page.mode == "historical"
    assert page.message == "historical data: ranking as of 2024-03-02 14:09 UTC"
    assert page.data_as_of == CLOCK
    assert {s.site_id: (s.mode, s.data_as_of) for s in page.sites} == {
        "SITE-A": ("historical", CLOCK),
        "SITE-B": ("historical", CLOCK),
    }
    tiers = {r.turbine_id: r.tier for r in page.items}
    assert {t: tiers[t] for t in seeded.scored} == seeded.tiers  # real tiers, not "unknown"
    assert {r.turbine_id for r in page.items if r.stale} == set(seeded.stale)  # only the silent one


def test_historical_fleet_summary(hist_client: TestClient, hist_db: HistDb) -> None:
    summary = FleetSummary.model_validate(hist_client.get("/v1/fleet/summary").json())
    seeded = hist_db.fleet.seeded
    assert summary.mode == "historical" and summary.data_as_of == CLOCK
    assert summary.message and "2024-03-02 14:09 UTC" in summary.message
    assert summary.stale == len(seeded.stale)
    assert summary.tiers["unknown"] == len(seeded.unknown)
    # per-day counts end on the day of the newest data, not on an empty wall-clock fortnight
    assert len(summary.daily) == 14 and summary.daily[-1].day == datetime(2024, 3, 2, tzinfo=UTC)
    counts = [sum(d.counts.values()) for d in summary.daily]
    assert set(counts) == {len(seeded.scored), len(seeded.scored) - 1}  # the gap turbine is absent 3 days


def test_detail_has_one_assessment_with_its_source(hist_client: TestClient, hist_db: HistDb) -> None:
    fleet = hist_db.fleet
    body = hist_client.get(f"/v1/turbines/{fleet.sweep_turbine}").json()
    detail = TurbineDetail.model_validate(body)
    assert detail.assessment is not None
    assert detail.assessment.source == "sweep" and detail.assessment.as_of == CLOCK
    assert detail.assessment.score == fleet.seeded.scored[fleet.sweep_turbine]
    assert detail.site_mode == "historical" and detail.data_as_of == CLOCK and detail.stale is False
    assert detail.last_sweep_run is not None and detail.last_sweep_run.run_id == fleet.seeded.runs[0]
    assert set(body["last_sweep_run"]) & {"score", "tier", "probability"} == set()  # no second score
    assert "prediction" not in body and "last_sweep" not in body

    # the turbine with a wall-clock sweep row: its current assessment stays the turbine_state row
    other = hist_client.get(f"/v1/turbines/{fleet.wall_clock_turbine}").json()
    assert other["assessment"]["source"] == "stream"
    assert other["assessment"]["score"] == fleet.seeded.scored[fleet.wall_clock_turbine]


def test_history_default_window_ends_at_the_last_data(hist_client: TestClient, hist_db: HistDb) -> None:
    tid = hist_db.fleet.seeded.turbines[0]
    res = hist_client.get(f"/v1/turbines/{tid}/history")
    assert res.status_code == 200, res.text
    hist = History.model_validate(res.json())
    assert hist.last_data == CLOCK
    assert hist.end == CLOCK + timedelta(seconds=1) and hist.end - hist.start == timedelta(days=30)
    assert len(hist.scores) > 100  # 30 days of 3 h buckets, not the empty wall-clock month
    assert hist.scores[-1].bucket <= CLOCK

    days = hist_client.get(f"/v1/turbines/{tid}/history", params={"days": 7, "bucket": "1d"}).json()
    assert _ts(days["end"]) - _ts(days["start"]) == timedelta(days=7) and len(days["scores"]) in (7, 8)


def test_history_never_mixes_wall_clock_points(hist_client: TestClient, hist_db: HistDb) -> None:
    tid = hist_db.fleet.wall_clock_turbine
    default = hist_client.get(f"/v1/turbines/{tid}/history").json()
    assert all(_ts(p["bucket"]) <= CLOCK for p in default["scores"])
    now = datetime.now(UTC)
    around_now = hist_client.get(
        f"/v1/turbines/{tid}/history",
        params={"start": (now - timedelta(days=1)).isoformat(), "end": (now + timedelta(days=1)).isoformat()},
    ).json()
    assert around_now["scores"] == []  # the wall-clock sweep row is not a point of this turbine's history


def test_history_gap_is_visible_as_missing_buckets(hist_client: TestClient, hist_db: HistDb) -> None:
    fleet = hist_db.fleet
    hist = hist_client.get(f"/v1/turbines/{fleet.gap_turbine}/history", params={"bucket": "6h"}).json()
    step = timedelta(seconds=hist["bucket_seconds"])
    for series in ("scores", "telemetry"):
        times = [_ts(p["bucket"]) for p in hist[series]]
        gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a > step]
        assert len(gaps) == 1, (series, gaps)
        (a, b) = gaps[0]
        assert a < fleet.gap_start and b >= fleet.gap_end - step and b - a >= timedelta(days=4)


def test_history_start_only_and_bad_ranges(hist_client: TestClient, hist_db: HistDb) -> None:
    tid = hist_db.fleet.seeded.turbines[0]
    start = (CLOCK - timedelta(days=2)).isoformat()
    body = hist_client.get(f"/v1/turbines/{tid}/history", params={"start": start}).json()
    assert _ts(body["end"]) == CLOCK + timedelta(seconds=1) and body["scores"]
    after = hist_client.get(f"/v1/turbines/{tid}/history", params={"start": "2025-01-01T00:00:00Z"})
    assert after.status_code == 200 and after.json()["scores"] == []
    for params in ({"days": 0}, {"days": "x"}, {"start": "9999-12-31T23:00:00Z"}):
        res = hist_client.get(f"/v1/turbines/{tid}/history", params=params)
        assert res.status_code == 422, (params, res.text)


# ------------------------------------------------------------------------------------ supervision
def test_not_ready_scorer_is_reported_with_its_first_problem(hist_client: TestClient) -> None:
    sup = Supervision.model_validate(hist_client.get("/v1/supervision").json())
    assert sup.scorer_ready is False and sup.scorer_status == f"not ready: {NOT_READY_PROBLEM}"
    assert sup.heartbeats[0].ready is False and sup.heartbeats[0].problems == [NOT_READY_PROBLEM]
    assert sup.problems[0] == f"scorer: not ready: {NOT_READY_PROBLEM}"
    assert "SITE-A: no data since 2024-03-02 14:09 UTC (historical)" in sup.problems
    assert sup.data.mode == "historical"
    assert sup.high_critical_daily and sup.high_critical_daily[-1].day == datetime(2024, 3, 2, tzinfo=UTC)
    ready = hist_client.get("/readyz")  # a scorer incident is supervision business, not the API's probe
    assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
    body = hist_client.get("/v1/turbines").json()
    assert body["scorer_stale"] is True


# ------------------------------------------------------------------------------------ live fleet
def test_live_fleet_only_the_silent_turbine_is_stale(client: TestClient, api_db: ApiDb) -> None:
    body = client.get("/v1/turbines?limit=500").json()
    assert body["mode"] == "live" and body["message"] is None
    assert {r["turbine_id"] for r in body["items"] if r["stale"]} == set(api_db.seeded.stale)
    sup = client.get("/v1/supervision").json()
    assert sup["scorer_ready"] is True and sup["problems"] == []


def test_live_feed_that_stops_is_supervision_business(make_settings: Any, api_db: ApiDb) -> None:
    """Every site silent for longer than the limit: supervision says so; rows are not all stale."""
    from api.app import create_app

    with TestClient(create_app(make_settings(stale_after_minutes=0.25))) as c:
        body = c.get("/v1/turbines?limit=500").json()
        assert body["mode"] == "live"
        assert {r["turbine_id"] for r in body["items"] if r["stale"]} == set(api_db.seeded.stale)
        problems = c.get("/v1/supervision").json()["problems"]
        assert any(p.startswith("SITE-A: no data for ") and p.endswith(" min") for p in problems), problems
