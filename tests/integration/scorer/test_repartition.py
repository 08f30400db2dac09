"""Partition count raised, worker restarted: every turbine keeps its window, wherever its key now hashes.

Before: windows were restored per partition; a turbine whose key moved to another partition started
empty and its next checkpoint overwrote its history (6 of 20 turbines lost their window, one score
jumped from 0.5 to 31). Now the checkpoint of every turbine not in memory is loaded by turbine id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from models.features import FeatureWindow
from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    assert_history_policy,
    encode,
    new_group,
    offline_replay,
    publish,
    query,
    recent_fleet_records,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_partition_count_raised_then_restart_keeps_every_window(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewPartitions
    from kafka.partitioner.default import murmur2

    db = fresh_database("scorer_repartition")
    records = recent_fleet_records(20, 2.5, seed=515)
    times = sorted({r["event_time"] for r in records})
    cut = times[int(len(times) * 0.8)]
    before = list(encode(r for r in records if r["event_time"] < cut))
    after = list(encode(r for r in records if r["event_time"] >= cut))
    n_turbines = len({r["turbine_id"] for r in records})
    group = new_group()

    worker = start_worker(db, topics, group)
    worker.wait_ready()
    publish(kafka_bootstrap, topics.telemetry, before)
    first_last = max(r["event_time"] for r in records if r["event_time"] < cut)
    wait_for(
        lambda: (
            query(db, "SELECT count(*) FROM scorer_windows WHERE last_event_time = %s", (first_last,))[0][0]
            == n_turbines
        ),
        120,
        "every window checkpointed",
    )
    worker.stop()
    assert worker.proc.returncode is not None
    partition_before = dict(query(db, "SELECT turbine_id, partition FROM scorer_windows"))
    assert set(partition_before.values()) <= {0, 1, 2}

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_partitions({topics.telemetry: NewPartitions(total_count=8)})
    finally:
        admin.close()
    # First only the turbines whose key now hashes to a NEW partition (3..7): their old partitions get
    # no record, so nothing restores them per partition; only the restore by turbine id can.
    new_home = {k: (murmur2(k) & 0x7FFFFFFF) % 8 for k, _ in after}
    wave_a = [(k, v) for k, v in after if new_home[k] >= 3]
    wave_b = [(k, v) for k, v in after if new_home[k] < 3]
    assert wave_a, "no turbine hashes to a new partition: the test would not exercise the restore"
    publish(kafka_bootstrap, topics.telemetry, wave_a)

    worker2 = start_worker(db, topics, group)
    worker2.wait_ready()
    last = max(r["event_time"] for r in records)
    movers = {k.decode() for k, _ in wave_a}
    wait_for(
        lambda: (
            query(
                db,
                "SELECT count(*) FROM scorer_windows WHERE last_event_time = %s AND turbine_id = ANY(%s)",
                (last, sorted(movers)),
            )[0][0]
            == len(movers)
        ),
        120,
        "the turbines on new partitions checkpointed",
    )
    assert '"turbines restored from checkpoint"' in worker2.log()
    publish(kafka_bootstrap, topics.telemetry, wave_b)
    try:
        wait_for(
            lambda: (
                query(db, "SELECT count(*) FROM scorer_windows WHERE last_event_time = %s", (last,))[0][0]
                == n_turbines
            ),
            120,
            "every window checkpointed after the restart",
        )
    except AssertionError:
        print(show(worker2))
        raise
    partition_after = dict(query(db, "SELECT turbine_id, partition FROM scorer_windows"))
    moved = [t for t in partition_after if partition_after[t] != partition_before[t]]
    assert movers <= set(moved)

    # Every window equals an uninterrupted single-partition run, moved turbines included.
    reference = offline_replay(before + after, 2000)
    now = datetime.now(UTC)
    for tid, state in query(db, "SELECT turbine_id, state FROM scorer_windows"):
        win = FeatureWindow.from_bytes(bytes(state))
        ref = reference.turbines[tid].window
        assert win.n_events == ref.n_events, (tid, tid in moved)
        np.testing.assert_array_equal(win.features(), ref.features())
        assert win.data_quality(now) == ref.data_quality(now)
    # Nothing lost, nothing twice: 10-minute aggregates hold every event once.
    assert query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0] == len(before) + len(after)
    print(
        f"{len(moved)} of {n_turbines} turbines moved partition ({len(movers)} to a new one, restored by "
        "turbine id); windows identical to the reference"
    )
    assert_history_policy(db)
