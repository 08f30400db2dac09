"""Readiness that tells the truth, on a real worker process with real Kafka and PostgreSQL.

- The worker creates missing topics at start (it used to subscribe to a topic that did not exist yet,
  get no partitions for ~5 minutes and still say ready).
- Partitions added while it runs are consumed within seconds (metadata refreshed every few seconds).
- A worker without a partition while the topic has some is not ready, and says why (also in its
  heartbeat row, which the API shows).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

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


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[Any]:
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(
        bootstrap_servers=kafka_bootstrap, client_id=f"readiness-{uuid.uuid4().hex[:6]}"
    )
    try:
        yield client
    finally:
        client.close()


def partitions_of(admin: Any, topic: str) -> int | None:
    meta = admin.describe_topics([topic])
    if not meta or meta[0].get("error_code"):
        return None
    return len(meta[0]["partitions"])


def test_missing_topics_are_created_at_start_and_consumed(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    start_worker: Callable[..., Worker],
    admin: Any,
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(f"test-new-{tag}-telemetry", f"test-new-{tag}-dlq", f"test-new-{tag}-commands")
    assert partitions_of(admin, topics.telemetry) is None
    db = fresh_database("scorer_newtopics")
    try:
        worker = start_worker(db, topics, new_group(), telemetry_partitions=2)
        worker.wait_ready(90)
        assert partitions_of(admin, topics.telemetry) == 2
        assert partitions_of(admin, topics.dlq) == 1 and partitions_of(admin, topics.commands) == 1
        assert '"message":"topic","topic":"' + topics.telemetry + '","outcome":"created"' in worker.log()
        wait_for(lambda: worker.get("/readyz").json()["partitions"] == [0, 1], 30, "both partitions")
        records = recent_fleet_records(2, 0.2, seed=821)
        publish(kafka_bootstrap, topics.telemetry, encode(records))
        wait_for(
            lambda: query(db, "SELECT coalesce(sum(samples), 0) FROM telemetry_agg")[0][0] == len(records),
            60,
            "records consumed from the topics the worker created",
        )
        assert worker.metric("scorer_assigned_partitions") == 2
    finally:
        admin.delete_topics([topics.telemetry, topics.dlq, topics.commands])


def test_partitions_added_while_running_are_consumed_within_seconds(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    make_topic: Callable[..., str],
    start_worker: Callable[..., Worker],
    admin: Any,
) -> None:
    from kafka import KafkaProducer
    from kafka.admin import NewPartitions

    topics = Topics(make_topic("telemetry", 1), make_topic("dlq", 1), make_topic("commands", 1))
    db = fresh_database("scorer_addparts")
    worker = start_worker(db, topics, new_group())
    worker.wait_ready()
    wait_for(lambda: worker.get("/readyz").json()["partitions"] == [0], 30, "one partition")
    admin.create_partitions({topics.telemetry: NewPartitions(total_count=3)})
    # consumer_metadata_max_age_s = 5 s: the group rebalances onto the new partitions within seconds
    # (faust's default would have been 5 minutes).
    try:
        wait_for(lambda: worker.get("/readyz").json()["partitions"] == [0, 1, 2], 45, "new partitions")
    except AssertionError:
        print(show(worker))
        raise
    records = recent_fleet_records(1, 0.1, seed=822)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for key, value in encode(records):
            producer.send(topics.telemetry, key=key, value=value, partition=2)
        producer.flush(30)
    finally:
        producer.close()
    wait_for(
        lambda: query(db, "SELECT coalesce(sum(samples), 0) FROM telemetry_agg")[0][0] == len(records),
        60,
        "records of the new partition consumed",
    )


def test_worker_without_partition_is_not_ready_and_says_why(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    make_topic: Callable[..., str],
    start_worker: Callable[..., Worker],
) -> None:
    topics = Topics(make_topic("telemetry", 1), make_topic("dlq", 1), make_topic("commands", 1))
    db = fresh_database("scorer_idle")
    group = new_group()
    workers = [start_worker(db, topics, group, unassigned_after_s=3) for _ in range(2)]

    def split() -> tuple[Worker, Worker] | None:
        bodies = []
        for w in workers:
            try:
                bodies.append(w.get("/readyz"))
            except Exception:
                return None
        owners = [w for w, b in zip(workers, bodies, strict=True) if b.json()["partitions"] == [0]]
        idle = [
            w
            for w, b in zip(workers, bodies, strict=True)
            if b.status_code == 503 and any("no partition assigned" in p for p in b.json()["problems"])
        ]
        return (owners[0], idle[0]) if len(owners) == 1 and len(idle) == 1 else None

    owner, idle = wait_for(split, 90, "one owner, one idle worker reported not ready")
    assert owner.get("/readyz").status_code == 200
    assert idle.metric("scorer_ready") == 0 and idle.metric("scorer_assigned_partitions") == 0
    assert owner.metric("scorer_ready") == 1 and owner.metric("scorer_assigned_partitions") == 1

    worker_id = idle.env["COCKPIT_WORKER_ID"]

    def heartbeat() -> dict[str, Any] | None:
        rows = query(db, "SELECT details FROM scorer_heartbeats WHERE worker_id = %s", (worker_id,))
        if not rows:
            return None
        details = rows[0][0] if isinstance(rows[0][0], dict) else orjson.loads(rows[0][0])
        return details if details.get("ready") is False else None

    details = wait_for(heartbeat, 30, "heartbeat of the idle worker says not ready")
    assert any("no partition assigned" in p for p in details["problems"])
    assert details["partitions"] == {}
