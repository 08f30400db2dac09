"""Real messages through the real broker and real rows through the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer

from common.contracts import TelemetryEvent, make_event_id, parse_telemetry

pytestmark = pytest.mark.integration


def _events(n: int) -> list[TelemetryEvent]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        turbine = f"WT-{i % 4:03d}"
        ts = start + timedelta(minutes=10 * (i // 4))
        out.append(
            TelemetryEvent(
                event_id=make_event_id(turbine, ts),
                turbine_id=turbine,
                site_id="SITE-A",
                event_time=ts,
                wind_speed_ms=7.5,
                power_kw=800.0 + i,
            )
        )
    return out


async def _consume(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes, int]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"{topic}-g",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[tuple[bytes, bytes, int]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for _tp, messages in batch.items():
                got.extend((m.key, m.value, m.partition) for m in messages)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


def test_kafka_roundtrip_kafka_python_to_aiokafka(kafka_bootstrap: str, make_topic) -> None:  # type: ignore[no-untyped-def]
    topic = make_topic("roundtrip", partitions=3)
    events = _events(200)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    for ev in events:
        producer.send(topic, key=ev.turbine_id.encode(), value=ev.to_json())
    producer.flush()
    producer.close()

    received = asyncio.run(_consume(kafka_bootstrap, topic, len(events)))

    assert len(received) == len(events)
    decoded = [parse_telemetry(value, now=datetime(2026, 1, 2, tzinfo=UTC)) for _k, value, _p in received]
    assert {e.event_id for e in decoded} == {e.event_id for e in events}
    # One turbine → one partition, and its events keep their order.
    partitions: dict[bytes, set[int]] = {}
    for key, _value, partition in received:
        partitions.setdefault(key, set()).add(partition)
    assert all(len(p) == 1 for p in partitions.values())
    for turbine in {e.turbine_id for e in events}:
        times = [e.event_time for e in decoded if e.turbine_id == turbine]
        assert times == sorted(times)


def test_postgres_roundtrip_and_roles(database_url: str, reader_database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO turbines (turbine_id, site_id, rated_power_kw) VALUES (%s, %s, %s)",
            ("WT-001", "SITE-A", 2050.0),
        )
        with conn.cursor().copy(
            "COPY telemetry_agg (bucket, turbine_id, samples, power_kw) FROM STDIN"
        ) as copy:
            for h in range(24):
                copy.write_row((datetime(2026, 1, 1, h, tzinfo=UTC), "WT-001", 6, 100.0 * h))
    with psycopg.connect(reader_database_url) as conn:
        total = conn.execute(
            "SELECT count(*), sum(power_kw) FROM telemetry_agg WHERE turbine_id = 'WT-001'"
        ).fetchone()
        assert total == (24, sum(100.0 * h for h in range(24)))
    # The API's role can read but never write, even if it turns read-only transactions off.
    with psycopg.connect(reader_database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM turbines")
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM turbines")
