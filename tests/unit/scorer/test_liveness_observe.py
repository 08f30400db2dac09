"""Liveness.observe/readiness over a runtime double: progress, grace periods, write errors, metrics.

The consumer double mimics what faust/aiokafka expose (assignment, highwater, the client's cluster
metadata); the clock is injected through ``time.monotonic`` / ``time.time``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

import scorer.liveness as liveness_mod
from scorer.liveness import Liveness
from scorer.metrics import ScorerMetrics
from scorer.settings import ScorerSettings

TOPIC = "telemetry.v1"


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class Cluster:
    def __init__(self) -> None:
        self._last_successful_refresh_ms = 0.0
        self.partitions: set[int] | None = None

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions


@dataclass
class Consumer:
    assigned: set[TP] = field(default_factory=set)
    high: dict[TP, int] = field(default_factory=dict)
    _committed_offset: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return self.assigned

    def highwater(self, tp: TP) -> int | None:
        return self.high.get(tp)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def mono(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_800_000_000.0 + self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(liveness_mod.time, "monotonic", c.mono)
    monkeypatch.setattr(liveness_mod.time, "time", c.wall)
    return c


def make(clock: Clock) -> tuple[Liveness, Any, Consumer, Cluster]:
    settings = ScorerSettings(
        telemetry_topic=TOPIC,
        kafka_bootstrap_servers="kafka:9092",
        stall_after_s=60,
        unassigned_after_s=20,
        kafka_unreachable_after_s=30,
    )
    consumer = Consumer()
    cluster = Cluster()
    client = SimpleNamespace(cluster=cluster)
    app = SimpleNamespace(consumer=consumer)
    consumer._thread = SimpleNamespace(_consumer=SimpleNamespace(_client=client))  # type: ignore[attr-defined]
    rt = SimpleNamespace(
        settings=settings,
        metrics=ScorerMetrics(),
        holder=SimpleNamespace(scorer=object(), error=None, version="v1"),
        processor=SimpleNamespace(next_offset={}, turbines={}),
        app=app,
        assigned=set(),
        consumed=0,
        db_ok=True,
        db_error=None,
        _inflight=None,
        dlq_error=None,
    )
    return Liveness(rt), rt, consumer, cluster  # type: ignore[arg-type]


def metric(rt: Any, name: str) -> float:
    value = rt.metrics.registry.get_sample_value(name)
    assert value is not None, name
    return float(value)


def refreshed(cluster: Cluster, clock: Clock, parts: set[int] | None) -> None:
    cluster._last_successful_refresh_ms = clock.wall() * 1000
    cluster.partitions = parts


def test_progress_and_stall(clock: Clock) -> None:
    lv, rt, consumer, cluster = make(clock)
    tp = TP(TOPIC, 0)
    consumer.assigned = {tp}
    rt.assigned = {0}
    refreshed(cluster, clock, {0})
    consumer.high[tp] = 500
    rt.processor.next_offset[0] = 100
    ready, body = lv.readiness()
    assert ready and body["lag"] == 400 and not body["stalled"]

    clock.t += 59
    refreshed(cluster, clock, {0})
    assert lv.readiness()[0]
    clock.t += 2  # 61 s with 400 records waiting and nothing durably processed
    refreshed(cluster, clock, {0})
    ready, body = lv.readiness()
    assert not ready and body["stalled"] and body["problems"][0].startswith("stalled: 400 records")
    assert metric(rt, "scorer_stalled") == 1 and metric(rt, "scorer_ready") == 0

    rt.consumed += 1000  # a batch written: progress
    rt.processor.next_offset[0] = 300
    ready, body = lv.readiness()
    assert ready and not body["stalled"] and metric(rt, "scorer_stalled") == 0
    assert metric(rt, "scorer_last_progress_timestamp_seconds") == clock.wall()


def test_idle_caught_up_worker_is_never_stalled_but_a_hanging_write_is(clock: Clock) -> None:
    lv, rt, consumer, cluster = make(clock)
    tp = TP(TOPIC, 0)
    consumer.assigned, rt.assigned = {tp}, {0}
    consumer.high[tp] = 10
    rt.processor.next_offset[0] = 10
    clock.t += 3600
    refreshed(cluster, clock, {0})
    assert lv.readiness()[0]

    class Pending:
        def done(self) -> bool:
            return False

    rt._inflight = Pending()  # a batch processed (offsets advanced) whose write never returns
    assert lv.readiness()[0]
    rt._inflight = None  # a checkpoint took the task off the runtime to wait for it; it still retries
    clock.t += 61
    refreshed(cluster, clock, {0})
    ready, body = lv.readiness()
    assert not ready and "a batch waiting for its write" in body["problems"][0]


def test_a_lock_held_without_progress_is_a_stall(clock: Clock) -> None:
    lv, rt, consumer, cluster = make(clock)
    tp = TP(TOPIC, 0)
    consumer.assigned, rt.assigned = {tp}, {0}
    consumer.high[tp] = 10
    rt.processor.next_offset[0] = 10
    rt.lock = SimpleNamespace(locked=lambda: True)  # a checkpoint waiting for a write that never ends
    refreshed(cluster, clock, {0})
    assert lv.readiness()[0]
    clock.t += 61
    refreshed(cluster, clock, {0})
    assert lv.readiness()[1]["stalled"]
    rt.lock = SimpleNamespace(locked=lambda: False)
    assert lv.readiness()[0]


def test_unassigned_and_missing_topic_have_grace_periods(clock: Clock) -> None:
    lv, rt, _consumer, cluster = make(clock)
    refreshed(cluster, clock, None)  # metadata without our topic (the first refresh may predate it)
    assert lv.readiness()[0]
    clock.t += 21
    refreshed(cluster, clock, None)
    ready, body = lv.readiness()
    assert not ready and "not found on the broker" in body["problems"][0]

    refreshed(cluster, clock, {0, 1, 2})  # the topic appears; no partition for us yet
    assert lv.readiness()[0]
    assert metric(rt, "scorer_assigned_partitions") == 0
    clock.t += 21
    refreshed(cluster, clock, {0, 1, 2})
    ready, body = lv.readiness()
    assert (
        not ready and "no partition assigned for 21 s while topic 'telemetry.v1' has 3" in body["problems"][0]
    )


def test_kafka_unreachable_when_metadata_gets_old(clock: Clock) -> None:
    lv, _rt, _consumer, cluster = make(clock)
    clock.t += 31  # never any metadata since the start
    ready, body = lv.readiness()
    assert not ready and body["problems"] == [
        "kafka unreachable: no metadata from kafka:9092 since the start (31 s)"
    ]
    refreshed(cluster, clock, {0})
    clock.t += 10
    assert "kafka unreachable" not in " ".join(lv.readiness()[1]["problems"])
    clock.t += 25
    assert "kafka unreachable: no metadata from kafka:9092 for 35 s" in lv.readiness()[1]["problems"]


def test_write_errors_model_and_dead_letters(clock: Clock) -> None:
    lv, rt, _consumer, cluster = make(clock)
    refreshed(cluster, clock, None)
    rt.db_ok, rt.db_error = False, "PostgreSQL at postgresql://w:***@db/cockpit: connection refused"
    problems = lv.readiness()[1]["problems"]
    assert problems == [
        "durable writes failing: database unavailable (DatabaseUnavailable): PostgreSQL at "
        "postgresql://w:***@db/cockpit: connection refused"
    ]
    rt.db_ok, rt.db_error = True, "WriteRejected: telemetry_latest: CheckViolation"
    assert lv.readiness()[1]["problems"] == [
        "durable writes failing: WriteRejected: telemetry_latest: CheckViolation"
    ]
    rt.db_error = None
    rt.broken = RuntimeError("write cancelled")  # a write failed for good outside _retry
    assert lv.readiness()[1]["problems"] == ["durable writes failing: RuntimeError: write cancelled"]
    rt.broken = None
    rt.holder.scorer, rt.holder.error = None, "registry/PRODUCTION: production pointer missing"
    rt.dlq_error = "KafkaTimeoutError: no topic"
    ready, body = lv.readiness()
    assert not ready and body["problems"] == [
        "no valid production model: registry/PRODUCTION: production pointer missing"
    ]
    assert body["warnings"] == [
        "dead letters not published (kept in the fallback table): KafkaTimeoutError: no topic"
    ]
