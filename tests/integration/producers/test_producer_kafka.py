"""End to end against the real local Kafka: scenario replay, file replay and the clean stop on SIGINT.

Each test runs ``python -m producers`` as a subprocess (the way operators and docker-compose run it)
and reads the topic back from the beginning with kafka-python.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from common.contracts import parse_telemetry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "producers" / "examples"


def producer_env(bootstrap: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COCKPIT_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        COCKPIT_LOG_FORMAT="json",
        COCKPIT_LOG_LEVEL="INFO",
        COCKPIT_PROGRESS_INTERVAL_S="0.5",
        PYTHONPATH=str(ROOT),
    )
    return env


def run_producer(bootstrap: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producers", *args],
        cwd=ROOT,
        env=producer_env(bootstrap),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def log_lines(stderr: str, message: str) -> list[dict[str, Any]]:
    found = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            item = orjson.loads(line)
            if item.get("message") == message:
                found.append(item)
    return found


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[tuple[int, bytes, bytes]]:
    """Every record of ``topic`` as (partition, key, value), up to the end offsets at call time."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        out: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, "timed out reading the topic back"
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                out.extend((tp.partition, m.key, m.value) for m in batch)
        return out
    finally:
        consumer.close()


def check_stream(messages: list[tuple[int, bytes, bytes]]) -> dict[str, list[Any]]:
    """Contract-valid, no duplicate ids, one partition per turbine, time order within each turbine."""
    ids: Counter[str] = Counter()
    per_turbine: dict[str, list[Any]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)
    for partition, key, value in messages:
        event = parse_telemetry(value, max_future_skew=__import__("datetime").timedelta(days=1))
        assert key == event.turbine_id.encode()
        ids[event.event_id] += 1
        per_turbine[event.turbine_id].append(event.event_time)
        partition_of[event.turbine_id].add(partition)
    dupes = [i for i, c in ids.items() if c > 1]
    assert not dupes, f"{len(dupes)} duplicated event ids"
    for turbine, times in per_turbine.items():
        assert len(partition_of[turbine]) == 1, f"{turbine} spread over partitions {partition_of[turbine]}"
        assert times == sorted(times) and len(set(times)) == len(times), f"{turbine} out of order"
    return per_turbine


def test_scenario_reaches_kafka_complete_in_order_without_duplicates(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    from datetime import timedelta

    from producers.sources import shifted
    from simulator.scenarios import load_scenario

    name = "frozen_sensor_no_alarm"
    scenario = load_scenario(name)
    renamed = shifted(scenario.fleet().iter_records(), timedelta(0), id_prefix="R-")  # the default prefix
    expected = {r["event_id"] for r in renamed}
    topic = make_topic("scenario", partitions=3)
    result = run_producer(kafka_bootstrap, "scenario", name, "--speed", "0", "--topic", topic)
    assert result.returncode == 0, result.stderr[-3000:]
    [summary] = log_lines(result.stderr, "summary")
    assert summary["sent"] == len(expected) and summary["failed"] == 0 and summary["complete"]
    assert "producer summary" in result.stdout

    messages = read_topic(kafka_bootstrap, topic)
    assert len(messages) == len(expected)
    per_turbine = check_stream(messages)
    assert sorted(per_turbine) == ["R-" + tid for tid in scenario.config.turbine_ids]
    assert {orjson.loads(v)["event_id"] for _, _, v in messages} == expected


def test_example_csv_replays_end_to_end(
    kafka_bootstrap: str, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("replay", partitions=3)
    rejects = tmp_path / "rejects.csv"
    result = run_producer(
        kafka_bootstrap,
        "replay",
        str(EXAMPLES / "scada_export.csv"),
        "--mapping",
        str(EXAMPLES / "scada_mapping.yaml"),
        "--rejects",
        str(rejects),
        "--topic",
        topic,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [summary] = log_lines(result.stderr, "summary")
    assert (summary["sent"], summary["rejected"], summary["rows_read"]) == (72, 5, 77)
    assert summary["reject_reasons"]["out of range: power_kw"] == 1
    assert len(rejects.read_text().splitlines()) == 6  # header + 5 rows

    messages = read_topic(kafka_bootstrap, topic)
    per_turbine = check_stream(messages)
    assert sorted(per_turbine) == ["WT-001", "WT-002", "WT-003"]
    assert sum(len(t) for t in per_turbine.values()) == 72


def test_sigint_flushes_everything_accepted_and_exits_zero(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("sigint", partitions=3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "producers", "backfill", "--days", "60", "--topic", topic],
        cwd=ROOT,
        env=producer_env(kafka_bootstrap),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    progressing = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if '"message":"progress"' in line and '"sent":0,' not in line:
                progressing.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert progressing.wait(30), "".join(lines)[-3000:]
        proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of a fast backfill
        proc.wait(timeout=60)  # not communicate(): the reader thread owns stderr
        assert proc.stdout is not None
        stdout = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert proc.returncode == 0, stderr[-3000:]
    [summary] = log_lines(stderr, "summary")
    assert summary["stopped_by"] == "SIGINT" and not summary["complete"]
    assert summary["failed"] == 0 and summary["sent"] == summary["accepted"]
    assert 0 < summary["sent"] < 60 * 144 * 20, "the run must have been interrupted mid-way"
    assert "producer summary" in stdout

    messages = read_topic(kafka_bootstrap, topic)
    assert len(messages) == summary["sent"]  # no loss: what the summary says reached the topic
    check_stream(messages)


def test_a_second_replay_of_a_scenario_gets_its_own_ids(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("replay-twice", partitions=3)
    name = "sensor_faults_showcase"
    first = run_producer(kafka_bootstrap, "scenario", name, "--speed", "0", "--topic", topic)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "incident turbine R-WT-009" in first.stdout and "using id prefix" not in first.stdout
    second = run_producer(kafka_bootstrap, "scenario", name, "--speed", "0", "--topic", topic)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "using id prefix R2-" in second.stdout and "incident turbine R2-WT-009" in second.stdout
    [plan] = log_lines(second.stderr, "scenario plan")
    assert plan["incident_turbines"] == ["R2-WT-009"] and plan["id_prefix"] == "R2-"

    per_turbine = check_stream(read_topic(kafka_bootstrap, topic))
    assert {tid.split("WT-")[0] for tid in per_turbine} == {"R-", "R2-"}
    assert len(per_turbine["R-WT-001"]) == len(per_turbine["R2-WT-001"]) == 12 * 144
