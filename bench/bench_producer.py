"""Backfill publish rate of the producers' path vs a bare kafka-python producer, same run, same broker.

Both send the same ~200k simulator events to a fresh topic (6 partitions) with the same producer
configuration (acks=all, idempotence, max_in_flight=5, the backfill batch_size/linger/compression):

* ``producers path``: ``Publisher.publish`` over contract records (serialise with ``encode_record``,
  key = turbine id, delivery callbacks, backpressure) + the final flush;
* ``bare kafka-python``: ``KafkaProducer.send`` of the pre-serialised (key, value) bytes, no callbacks,
  then ``flush``;
* ``cli backfill path``: the same as the first, but records come from the simulator while publishing
  (what ``python -m producers backfill`` does), for reference.

Usage: ``.venv/bin/python bench/bench_producer.py [--events 200000] [--repeat 2] [--bootstrap HOST:PORT]``.
The ratio (producers / bare) is what to watch: absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from common.settings import load_settings
from producers.kafka_io import producer_config
from producers.publisher import Publisher, RunStats
from producers.serialize import encode_record
from producers.settings import ProducerSettings
from simulator.config import FleetConfig
from simulator.fleet import Fleet

PARTITIONS = 6


def fleet_for(events: int) -> Fleet:
    turbines = 20
    days = max(1.0, events / (turbines * 144))
    return Fleet(FleetConfig(n_turbines=turbines, duration_days=days, seed=11))


def fresh_topic(admin: KafkaAdminClient, label: str, created: list[str]) -> str:
    topic = f"bench-producer-{label}-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    created.append(topic)
    return topic


def run_bare(config: dict[str, Any], topic: str, payload: list[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(**config)
    producer.send(topic, value=payload[0][1], key=payload[0][0]).get(timeout=30)  # metadata + warm-up
    send = producer.send
    started = time.perf_counter()
    for key, value in payload[1:]:
        send(topic, value=value, key=key)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def run_publisher(
    config: dict[str, Any], topic: str, records: Any, warm: dict[str, Any]
) -> tuple[float, RunStats]:
    producer = KafkaProducer(**config)
    key, value = encode_record(warm)
    producer.send(topic, value=value, key=key).get(timeout=30)
    stats = RunStats(mode="bench", topic=topic)
    publisher = Publisher(producer, topic, stats, latency_observer=lambda _s: None)
    started = time.perf_counter()
    publisher.publish(records, threading.Event())
    publisher.finish(timeout=120)
    elapsed = time.perf_counter() - started
    assert stats.failed == 0, stats.errors
    return elapsed, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()

    overrides = {"kafka_bootstrap_servers": args.bootstrap} if args.bootstrap else {}
    settings = load_settings(ProducerSettings, **overrides)
    config = producer_config(settings, bulk=True)
    fleet = fleet_for(args.events)
    records = list(fleet.iter_records())[: args.events]
    warm, records = records[0], records[1:]
    payload = [encode_record(r) for r in [warm, *records]]
    n = len(records)
    mbytes = sum(len(v) for _, v in payload[1:]) / 1e6
    gc.collect()
    gc.freeze()  # the pre-built inputs are not what we measure; keep the collector off them

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="bench-producer")
    created: list[str] = []
    results: dict[str, list[float]] = {"bare kafka-python": [], "producers path": [], "cli backfill path": []}
    try:
        for _ in range(args.repeat):
            results["bare kafka-python"].append(
                run_bare(config, fresh_topic(admin, "bare", created), payload)
            )
            elapsed, stats = run_publisher(config, fresh_topic(admin, "ours", created), records, warm)
            assert stats.sent == n
            results["producers path"].append(elapsed)
        gen_fleet = fleet_for(args.events)
        generated = (r for i, r in enumerate(gen_fleet.iter_records()) if 0 < i <= n)
        elapsed, stats = run_publisher(config, fresh_topic(admin, "cli", created), generated, warm)
        results["cli backfill path"].append(elapsed)
    finally:
        if created:
            admin.delete_topics(created)
        admin.close()

    print(f"\nbackfill publish rate: {n:,} events ({mbytes:.1f} MB of JSON values), {PARTITIONS} partitions,")
    print(
        f"acks=all idempotent, batch_size={config['batch_size']}, linger_ms={config['linger_ms']}, "
        f"compression={config['compression_type'] or 'none'}, best of {args.repeat}\n"
    )
    print(f"{'path':<22}{'seconds':>10}{'events/s':>12}{'MB/s':>9}")
    best = {name: min(times) for name, times in results.items()}
    for name, seconds in best.items():
        print(f"{name:<22}{seconds:>10.2f}{n / seconds:>12,.0f}{mbytes / seconds:>9.1f}")
    ratio = best["bare kafka-python"] / best["producers path"]
    print(f"\nratio producers path / bare kafka-python: {ratio:.2f}")
    cli_ratio = best["bare kafka-python"] / best["cli backfill path"]
    print(f"(cli backfill path, which also simulates the events while publishing: {cli_ratio:.2f})")


if __name__ == "__main__":
    main()
