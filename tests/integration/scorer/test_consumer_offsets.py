"""The record-batch consumer (scorer/batch_consumer.py) commits through faust: the consumer group's
committed Kafka offsets advance after checkpoints and never pass what the checkpoint made durable."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    encode,
    new_group,
    producer,
    query,
    recent_fleet_records,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets on ``topic`` as Kafka holds them (partition -> next offset)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{group}-offsets")
    try:
        got = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in got.items() if tp.topic == topic and meta.offset >= 0}


def _checkpointed(db: str, topic: str) -> dict[int, int]:
    rows = query(db, "SELECT partition, next_offset FROM scorer_offsets WHERE topic = %s", (topic,))
    return {int(p): int(o) for p, o in rows}


def test_committed_offsets_follow_the_checkpoints(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_offsets")
    messages = list(encode(recent_fleet_records(6, 2.0, seed=404)))
    group = new_group()
    worker = start_worker(db, topics, group, batch_max_size=300)
    worker.wait_ready()

    observed: list[tuple[dict[int, int], dict[int, int]]] = []

    def observe() -> dict[int, int]:
        # Kafka first, then the checkpoint: the checkpoint only grows, so committed <= checkpointed
        # must hold between the two reads whatever happens in between.
        committed = _committed(kafka_bootstrap, group, topics.telemetry)
        observed.append((committed, _checkpointed(db, topics.telemetry)))
        return committed

    p = producer(kafka_bootstrap)
    try:
        for i in range(0, len(messages), 400):  # a live stream: chunks while the worker checkpoints
            for k, v in messages[i : i + 400]:
                p.send(topics.telemetry, key=k, value=v)
            p.flush(30)
            observe()
            time.sleep(0.3)
    finally:
        p.close()
    try:
        wait_for(
            lambda: sum(observe().values()) == len(messages),
            60,
            "the group's committed offsets reach the end of the topic",
        )
    except AssertionError:
        print(show(worker))
        raise
    final_committed, final_checkpointed = observed[-1]
    assert final_committed == final_checkpointed  # every record checkpointed, then committed
    advancing = [sum(c.values()) for c, _ in observed]
    assert advancing == sorted(advancing) and advancing[0] < advancing[-1]  # it moved with the stream
    for committed, checkpointed in observed:
        for partition, offset in committed.items():
            assert offset <= checkpointed.get(partition, 0), (partition, committed, checkpointed)
    assert worker.metric("scorer_events_consumed_total") == len(messages)
    assert "scorer_ingest_queue_events" in worker.get("/metrics").text
