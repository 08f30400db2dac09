"""Rescore coalescing with a real worker: a burst of 1-Hz events of one turbine costs few stream
rescorings, yet its final score is as of its last event (the flush takes what no batch made due)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.contracts import SIGNALS
from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    encode,
    new_group,
    producer,
    query,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration

TID = "WT-BURST"
SECONDS = 600  # ten minutes of 1-Hz readings
CHUNK = 10  # published 10 readings (10 s of event time) at a time, one chunk per micro-batch or so


def _burst(end: datetime) -> list[dict[str, Any]]:
    start = end - timedelta(seconds=SECONDS)
    out = []
    for i in range(SECONDS):
        rec: dict[str, Any] = dict.fromkeys(SIGNALS, None)
        rec.update(
            turbine_id=TID,
            site_id="SITE-BURST",
            event_time=start + timedelta(seconds=i + 1),
            wind_speed_ms=8.0 + (i % 7) * 0.1,
            power_kw=1200.0 + (i % 11),
            ambient_temp_c=12.0,
            rotor_rpm=14.0,
            gearbox_bearing_temp_c=55.0 + (i % 5) * 0.1,
            vibration_mm_s=2.0,
            status_code=0,
        )
        out.append(rec)
    return out


def test_a_1hz_burst_costs_few_rescorings_and_the_final_score_is_the_last_event(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_coalescing")
    worker = start_worker(db, topics, new_group(), rescore_flush_s=2)
    worker.wait_ready()
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    records = _burst(end)
    messages = list(encode(records))
    p = producer(kafka_bootstrap)
    try:
        for start in range(0, len(messages), CHUNK):
            for key, value in messages[start : start + CHUNK]:
                p.send(topics.telemetry, key=key, value=value)
            p.flush(30)
            time.sleep(0.15)  # > COCKPIT_BATCH_WITHIN_S: most chunks are a micro-batch of their own
    finally:
        p.close()
    last = records[-1]["event_time"]
    try:
        wait_for(
            lambda: (
                query(db, "SELECT count(*) FROM telemetry_latest WHERE event_time = %s", (last,))[0][0] == 1
            ),
            60,
            "every event consumed",
        )
        # The final score is as of the last event, whichever batch or flush produced it.
        wait_for(
            lambda: (
                query(
                    db, "SELECT count(*) FROM turbine_state WHERE turbine_id = %s AND as_of = %s", (TID, last)
                )[0][0]
                == 1
            ),
            30,
            "the final score as of the last event",
        )
    except AssertionError:
        print(show(worker))
        raise
    batches, rescorings = query(
        db,
        "SELECT count(*) FILTER (WHERE events > 0), coalesce(sum(turbines), 0) FROM scoring_log "
        "WHERE operation = 'stream_batch'",
    )[0]
    # 600 readings over 60 s of publishing: one rescoring per minute of event time (~10), the
    # first one, the flushes of what no batch made due (every 2 s of wall time while events wait).
    assert batches >= 20, f"the burst came in {batches} batches: too few to show coalescing"
    assert rescorings <= batches // 2, f"{rescorings} rescorings for {batches} batches of one turbine"
    # The worker counts both outcomes (scorer_stream_rescores_total{outcome}).
    counts = {
        outcome: sum(
            float(line.rsplit(" ", 1)[1])
            for line in worker.get("/metrics").text.splitlines()
            if line.startswith(f'scorer_stream_rescores_total{{outcome="{outcome}"}}')
        )
        for outcome in ("rescored", "deferred")
    }
    assert counts["rescored"] > 0 and counts["deferred"] >= batches - rescorings, counts
    state = query(db, "SELECT last_event_time, trigger FROM turbine_state WHERE turbine_id = %s", (TID,))
    assert state == [(last, "stream")]
    assert query(db, "SELECT sum(samples) FROM telemetry_agg WHERE turbine_id = %s", (TID,))[0][0] == SECONDS
