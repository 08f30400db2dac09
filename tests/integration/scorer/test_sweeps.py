"""Fleet sweeps: catch-up of a missed sweep at start, on-demand via the command topic (exactly once),
sweeps in data time (a historical fleet gets real tiers as of its last data, a turbine silent beside live
neighbours is unknown, a sweep without new data writes no new history), correct counts; plus hot model
reload and two workers sharing."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from common.contracts import SweepCommand
from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    encode,
    new_group,
    publish,
    query,
    recent_fleet_records,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration


def send_sweep(bootstrap: str, topic: str, run_id: uuid.UUID, times: int = 1) -> None:
    cmd = SweepCommand(run_id=run_id, requested_at=datetime.now(UTC), requested_by="test").to_json()
    publish(bootstrap, topic, [(None, cmd)] * times)


def run(db: str, run_id: str) -> tuple | None:
    rows = query(
        db,
        "SELECT status, trigger, turbines_scored, tier_counts, model_version, error "
        "FROM sweep_runs WHERE run_id = %s",
        (run_id,),
    )
    return rows[0] if rows else None


def test_catch_up_on_demand_and_hot_reload(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
    tiny_registry: Path,
    tmp_path: Path,
) -> None:
    db = fresh_database("scorer_sweep")
    registry = tmp_path / "registry"
    shutil.copytree(tiny_registry, registry)
    records = recent_fleet_records(6, 2.0, seed=404)
    stale_tid = "WT-006"
    cutoff = max(r["event_time"] for r in records) - timedelta(hours=5)
    records = [r for r in records if r["turbine_id"] != stale_tid or r["event_time"] < cutoff]
    n = len({r["turbine_id"] for r in records})
    group = new_group()

    w1 = start_worker(db, topics, group, registry=registry)
    w1.wait_ready()
    publish(kafka_bootstrap, topics.telemetry, encode(records))
    # Every event consumed (not only every turbine seen): the final checkpoint then holds the site clock
    # the catch-up sweep below is checked against.
    wait_for(lambda: w1.metric("scorer_events_consumed_total") >= len(records), 90, "all events consumed")
    wait_for(lambda: query(db, "SELECT count(*) FROM scorer_windows")[0][0] == n, 60, "windows checkpointed")
    w1.stop()
    # w1 may have run the fleet's first sweep (a fleet never swept is swept as soon as its turbines are
    # checkpointed, checked every 5 s here), racing the wait above. The scenario below starts from a
    # fleet whose last sweep succeeded two days ago: the 02:00 run was missed; the next start catches up.
    first = query(db, "SELECT trigger FROM sweep_runs")
    assert all(t == "catch_up" for (t,) in first), first
    query(db, "DELETE FROM sweep_runs")
    # Its rows and log line would stand for the catch-up's (same as-of time, same key): forget them too.
    query(db, "DELETE FROM score_history WHERE trigger = 'sweep'")
    query(db, "DELETE FROM scoring_log WHERE operation = 'sweep'")
    query(
        db,
        "INSERT INTO sweep_runs (run_id, trigger, requested_at, started_at, finished_at, status, "
        "turbines_scored) VALUES (%s, 'schedule', %s, %s, %s, 'succeeded', 6)",
        (
            str(uuid.uuid4()),
            datetime.now(UTC) - timedelta(days=2),
            datetime.now(UTC) - timedelta(days=2),
            datetime.now(UTC) - timedelta(days=2),
        ),
    )
    w2 = start_worker(db, topics, group, registry=registry)
    w2.wait_ready()
    try:
        catch = wait_for(
            lambda: query(
                db,
                "SELECT run_id, status, turbines_scored, tier_counts FROM sweep_runs "
                "WHERE trigger = 'catch_up' AND status IN ('succeeded', 'failed')",
            ),
            60,
            "catch-up sweep",
        )
    except AssertionError:
        print(show(w2))
        raise
    assert len(catch) == 1
    catch_id, status, scored, counts = catch[0]
    assert status == "succeeded" and scored == n and sum(counts.values()) == n
    # Live site, one turbine silent for 5 hours: stale (unknown) against its site's data clock, the
    # others scored; every row is dated by the site's data clock (its newest event), not the wall clock.
    site_clock = max(r["event_time"] for r in records)
    hist = query(db, "SELECT turbine_id, tier, time FROM score_history WHERE run_id = %s", (str(catch_id),))
    assert len(hist) == n
    tiers = {tid: tier for tid, tier, _ in hist}
    assert tiers[stale_tid] == "unknown"
    assert all(tier != "unknown" for tid, tier in tiers.items() if tid != stale_tid), tiers
    assert counts["unknown"] == 1
    assert {t for _, _, t in hist} == {site_clock}
    state = {r[0]: r[1:] for r in query(db, "SELECT turbine_id, tier, as_of, trigger FROM turbine_state")}
    assert state[stale_tid] == ("unknown", site_clock, "sweep")

    # On demand, sent twice with the same run id: runs exactly once. No new data since the catch-up:
    # same as-of time, same assessments, so no second (possibly contradicting) history row is written.
    run_id = uuid.uuid4()
    send_sweep(kafka_bootstrap, topics.commands, run_id, times=2)
    done = wait_for(
        lambda: (r := run(db, str(run_id))) and r[0] in ("succeeded", "failed") and r, 60, "on-demand sweep"
    )
    status, trigger, scored, counts, version, error = done
    assert (status, trigger, scored, error) == ("succeeded", "on_demand", n, None)
    assert sum(counts.values()) == n and version and counts["unknown"] == 1
    assert query(db, "SELECT count(*) FROM score_history WHERE run_id = %s", (str(run_id),))[0][0] == 0
    sweep_rows = query(
        db, "SELECT turbine_id, count(*) FROM score_history WHERE trigger = 'sweep' GROUP BY turbine_id"
    )
    assert dict(sweep_rows) == dict.fromkeys(tiers, 1)
    state = dict(query(db, "SELECT turbine_id, tier FROM turbine_state"))
    assert state[stale_tid] == "unknown"
    wait_for(lambda: '"sweep already claimed; skipping"' in w2.log(), 20, "second command skipped")
    assert query(db, "SELECT count(*) FROM sweep_runs WHERE run_id = %s", (str(run_id),))[0][0] == 1
    sweeps_logged = query(db, "SELECT count(*) FROM scoring_log WHERE operation = 'sweep' AND status = 'ok'")
    assert sweeps_logged[0][0] == 2
    wait_for(
        lambda: (
            query(db, "SELECT count(*) FROM scorer_heartbeats WHERE model_version = %s", (version,))[0][0]
            >= 1
        ),
        20,
        "heartbeat",
    )

    # Hot reload: a new production version is picked up without restart.
    new_version = f"{version}-hot"
    shutil.copytree(registry / version, registry / new_version)
    (registry / "PRODUCTION").write_text(new_version + "\n")
    wait_for(lambda: w2.get("/readyz").json()["model_version"] == new_version, 30, "model hot reload")
    metrics = w2.get("/metrics").text
    assert f'version="{new_version}"' in metrics
    assert "scorer_sweep_last_success_timestamp_seconds" in metrics

    # A broken promotion keeps the current model and says why.
    (registry / "PRODUCTION").write_text("does-not-exist\n")
    wait_for(lambda: "does-not-exist" in w2.log(), 30, "broken promotion reported")
    assert w2.get("/readyz").json()["model_version"] == new_version


def test_two_workers_share_partitions_and_sweep_once(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_scale")
    records = recent_fleet_records(9, 1.0, seed=505)
    n = len({r["turbine_id"] for r in records})
    group = new_group()
    a = start_worker(db, topics, group)
    b = start_worker(db, topics, group)
    a.wait_ready()
    b.wait_ready()

    def split() -> bool:
        pa, pb = (w.get("/readyz").json()["partitions"] for w in (a, b))
        return bool(pa) and bool(pb) and sorted(pa + pb) == [0, 1, 2]

    wait_for(split, 60, "partitions shared by both workers")
    publish(kafka_bootstrap, topics.telemetry, encode(records))
    last = max(r["event_time"] for r in records)
    wait_for(
        lambda: (
            query(db, "SELECT count(*) FROM scorer_windows WHERE last_event_time = %s", (last,))[0][0] == n
        ),
        60,
        "all windows checkpointed",
    )
    run_id = uuid.uuid4()
    send_sweep(kafka_bootstrap, topics.commands, run_id)
    done = wait_for(lambda: (r := run(db, str(run_id))) and r[0] == "succeeded" and r, 60, "sweep")
    assert done[2] == n  # the sweeping worker saw the other worker's turbines through the checkpoints
    owners = query(db, "SELECT count(DISTINCT worker_id) FROM scoring_log WHERE operation = 'stream_batch'")
    assert owners[0][0] == 2
    # The on-demand run was executed once, by one worker (a first-deployment catch-up sweep may also have
    # started on its own schedule: it is another run, not a duplicate of this one).
    assert query(db, "SELECT count(*) FROM sweep_runs WHERE trigger <> 'catch_up'")[0][0] == 1
    counts = orjson.loads(orjson.dumps(done[3]))
    assert sum(counts.values()) == n


def test_historical_fleet_is_swept_as_of_its_last_data(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    """Imported history a year old: scored in event time, swept as of the site's last data (real tiers,
    not unknown everywhere); a second sweep without new data adds nothing to the history."""
    db = fresh_database("scorer_sweep_hist")
    end = datetime.now(UTC) - timedelta(days=365)
    records = recent_fleet_records(4, 3.0, end=end, seed=909)
    n = len({r["turbine_id"] for r in records})
    last = max(r["event_time"] for r in records)
    worker = start_worker(db, topics, new_group())
    worker.wait_ready()
    publish(kafka_bootstrap, topics.telemetry, encode(records))
    try:
        wait_for(
            lambda: (
                query(db, "SELECT count(*) FROM scorer_windows WHERE last_event_time = %s", (last,))[0][0]
                == n
            ),
            90,
            "history imported",
        )
    except AssertionError:
        print(show(worker))
        raise

    def sweep() -> tuple:
        run_id = uuid.uuid4()
        send_sweep(kafka_bootstrap, topics.commands, run_id)
        done = wait_for(
            lambda: (r := run(db, str(run_id))) and r[0] in ("succeeded", "failed") and r, 60, "sweep"
        )
        return (str(run_id), *done)

    # A catch-up sweep (fleet never swept) may run first, possibly on part of the data; the rows
    # checked below are those dated by the site's data clock, whichever run wrote them.
    _first, status, _trigger, scored, counts, _version, error = sweep()
    assert (status, scored, error) == ("succeeded", n, None)
    assert counts["unknown"] == 0, counts  # not stale: judged against the site's own data clock
    rows = query(
        db, "SELECT turbine_id, tier FROM score_history WHERE trigger = 'sweep' AND time = %s", (last,)
    )
    assert len(rows) == n and "unknown" not in {t for _, t in rows}
    newest = query(db, "SELECT max(time) FROM score_history WHERE trigger = 'sweep'")[0][0]
    assert newest == last  # never the wall clock
    state = query(db, "SELECT as_of, trigger, tier FROM turbine_state")
    assert len(state) == n and {a for a, _, _ in state} == {last}
    assert {tr for _, tr, _ in state} == {"sweep"} and "unknown" not in {t for _, _, t in state}

    before = query(db, "SELECT count(*) FROM score_history WHERE trigger = 'sweep'")[0][0]
    second, status, _trigger, scored, counts2, _version, error = sweep()
    assert (status, scored, error) == ("succeeded", n, None) and counts2 == counts
    assert query(db, "SELECT count(*) FROM score_history WHERE trigger = 'sweep'")[0][0] == before
    assert query(db, "SELECT count(*) FROM score_history WHERE run_id = %s", (second,))[0][0] == 0
