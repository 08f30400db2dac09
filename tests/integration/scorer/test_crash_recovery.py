"""SIGKILLs mid-stream, restarts: nothing lost, nothing double-counted, windows as if never interrupted,
and no history row the policy forbids (rows written by different incarnations of the worker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from models.features import FeatureWindow
from scorer.state import AGG_SIGNALS
from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    assert_history_policy,
    encode,
    new_group,
    offline_replay,
    producer,
    publish,
    query,
    recent_fleet_records,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration

KILLS = 3


def test_sigkills_mid_stream_then_restart(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_crash")
    records = recent_fleet_records(8, 7.0, seed=303)
    messages = list(encode(records))
    group = new_group()
    worker = start_worker(db, topics, group, batch_max_size=400)
    worker.wait_ready()

    done = threading.Event()
    running = threading.Event()  # a worker incarnation exists (the stream pauses while none is started)
    running.set()

    def publish_slowly() -> None:
        p = producer(kafka_bootstrap)
        try:
            for i in range(0, len(messages), 100):  # ~80 chunks over ~1 min: a live stream under load
                running.wait(120)
                for k, v in messages[i : i + 100]:
                    p.send(topics.telemetry, key=k, value=v)
                p.flush(30)
                time.sleep(0.7)
        finally:
            p.close()
            done.set()

    pub = threading.Thread(target=publish_slowly, daemon=True)
    pub.start()
    # Kill once this incarnation made work durable (its checkpoint moved the offsets) while the stream
    # still runs; restart; again. Batch boundaries differ between incarnations, so as-of times differ.
    killed_at = 0
    for n in range(KILLS):
        if n:
            worker = start_worker(db, topics, group, batch_max_size=400)
            worker.wait_ready()  # it restarts under the backlog published since the last checkpoint
            running.set()
        previous = killed_at
        wait_for(
            lambda previous=previous: (
                query(db, "SELECT coalesce(sum(next_offset), 0) FROM scorer_offsets")[0][0] > previous
            ),
            90,
            f"a checkpoint by incarnation {n}",
        )
        time.sleep(0.5)
        assert not done.is_set(), f"publisher finished before kill {n}; the test would not be mid-stream"
        worker.kill()
        running.clear()
        killed_at = query(db, "SELECT coalesce(sum(next_offset), 0) FROM scorer_offsets")[0][0]

    worker2 = start_worker(db, topics, group, batch_max_size=400)
    running.set()
    worker2.wait_ready()
    pub.join(120)
    assert done.is_set()

    last = max(r["event_time"] for r in records)
    n_turbines = len({r["turbine_id"] for r in records})
    try:
        wait_for(
            lambda: (
                query(db, "SELECT count(*) FROM telemetry_latest WHERE event_time = %s", (last,))[0][0]
                == n_turbines
            ),
            90,
            "every turbine's latest event = last produced",
        )
        wait_for(
            lambda: (
                query(db, "SELECT count(*) FROM scorer_windows WHERE last_event_time = %s", (last,))[0][0]
                == n_turbines
            ),
            30,
            "final checkpoint",
        )
    except AssertionError:
        print(show(worker2))
        raise
    assert '"partitions restored from checkpoint"' in worker2.log()
    assert killed_at > 0

    # Nothing lost: turbines' last event time equals the last produced.
    rows = query(db, "SELECT turbine_id, last_event_time FROM turbines")
    assert len(rows) == n_turbines and all(r[1] == last for r in rows)

    # Nothing double-counted: the 10-minute aggregates equal an uninterrupted replay.
    reference = offline_replay(messages, 1000)
    expected: dict[tuple[str, datetime], tuple[int, list[float | None]]] = {}
    for tid, st in reference.turbines.items():
        for bucket, acc in st.agg.items():
            n = len(AGG_SIGNALS)
            means = [acc[1 + i] / acc[1 + n + i] if acc[1 + n + i] else None for i in range(n)]
            expected[(tid, datetime.fromtimestamp(bucket, UTC))] = (int(acc[0]), means)
    agg = query(db, "SELECT turbine_id, bucket, samples, " + ", ".join(AGG_SIGNALS) + " FROM telemetry_agg")
    got = {(r[0], r[1]): (r[2], list(r[3:])) for r in agg}
    for key, (samples, means) in expected.items():  # the reference keeps only the open buckets
        assert got[key][0] == samples, key
        np.testing.assert_allclose(
            np.array(got[key][1], dtype=float), np.array(means, dtype=float), rtol=1e-9, equal_nan=True
        )
    total = query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0]
    assert total == len(messages)

    # Windows restored: the checkpointed windows equal the uninterrupted replay's, feature for feature.
    now = datetime.now(UTC)
    for (
        tid,
        state,
    ) in query(db, "SELECT turbine_id, state FROM scorer_windows"):
        win = FeatureWindow.from_bytes(bytes(state))
        ref = reference.turbines[tid].window
        assert win.n_events == ref.n_events
        np.testing.assert_array_equal(win.features(), ref.features())
        assert win.data_quality(now) == ref.data_quality(now)

    # No duplicated score rows (the primary key would refuse them; count what is there).
    dup = query(
        db,
        "SELECT count(*) - count(DISTINCT (turbine_id, time, trigger)) FROM score_history",
    )[0][0]
    assert dup == 0
    stream_times = query(db, "SELECT DISTINCT time FROM score_history WHERE trigger = 'stream'")
    produced = {r["event_time"] for r in records}
    assert {t for (t,) in stream_times} <= produced
    # History across incarnations: every stream row obeys the policy against its predecessor.
    assert assert_history_policy(db) > 0


def test_a_refused_write_ends_the_worker_with_the_error_class_and_table(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    services: Any,
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    """Permission denied is not "database unavailable": no silent retry loop, a clear end, nothing lost."""
    db = fresh_database("scorer_refused")
    records = recent_fleet_records(2, 0.5, seed=404)
    messages = list(encode(records))
    group = new_group()
    worker = start_worker(db, topics, group)
    worker.wait_ready()
    revoke(services, db, "REVOKE INSERT ON score_history FROM cockpit_writer")
    publish(kafka_bootstrap, topics.telemetry, messages)
    try:
        wait_for(lambda: worker.proc.poll() is not None, 90, "the worker to end")
    except AssertionError:
        print(show(worker))
        raise
    assert worker.proc.returncode != 0
    log = worker.log()
    critical = [line for line in log.splitlines() if '"level":"critical"' in line]
    assert any("InsufficientPrivilege" in line and "score_history" in line for line in critical), log[-3000:]

    # The operator fixes the grant; the restarted worker scores everything (nothing was acked).
    revoke(services, db, "GRANT INSERT ON score_history TO cockpit_writer")
    worker2 = start_worker(db, topics, group)
    worker2.wait_ready()
    last = max(r["event_time"] for r in records)
    wait_for(
        lambda: query(db, "SELECT count(*) FROM telemetry_latest WHERE event_time = %s", (last,))[0][0] == 2,
        90,
        "every event scored after the fix",
    )
    assert query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0] == len(messages)


def revoke(services: Any, writer_url: str, statement: str) -> None:
    """Run a GRANT/REVOKE as the administrator on the test database."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(writer_url)["dbname"]
    with psycopg.connect(services.url_for(name), autocommit=True) as conn:
        conn.execute(statement)
