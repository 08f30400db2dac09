"""Topic provisioning on the real broker: create, idempotent re-run, partition mismatch, unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.settings import CommonSettings, load_settings
from common.topics import CREATED, EXISTS, TopicError, cockpit_topics, ensure_topics, partition_count

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def private_names(kafka_bootstrap: str, run_id: str) -> Iterator[dict[str, str]]:
    """Topic names private to this test; deleted afterwards."""
    base = f"test-{run_id}-topics-{uuid.uuid4().hex[:6]}"
    names = {
        "telemetry_topic": f"{base}.telemetry",
        "dead_letter_topic": f"{base}.dlq",
        "command_topic": f"{base}.commands",
    }
    yield names
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id=f"tests-{run_id}")
    try:
        admin.delete_topics(list(names.values()), raise_errors=False)
    finally:
        admin.close()


def _topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-topic-configs")
    try:
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    return _flatten_configs(answer)


def _flatten_configs(answer: object) -> dict[str, str]:
    """describe_configs answers differ between kafka-python versions; collect name -> value pairs."""
    found: dict[str, str] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            name = node.get("name") or node.get("config_name")
            value = node.get("value", node.get("config_value"))
            if isinstance(name, str) and (value is None or isinstance(value, str)):
                found[name] = value or ""
            for key, child in node.items():
                if isinstance(child, dict) and isinstance(key, str) and "." in key:
                    child_value = child.get("value", child.get("config_value"))
                    if isinstance(child_value, str):
                        found[key] = child_value
                walk(child)
        elif isinstance(node, list | tuple):
            for child in node:
                walk(child)
        elif hasattr(node, "to_dict"):
            walk(node.to_dict())

    walk(answer)
    return found


def test_creates_then_reports_existing_then_mismatch(
    kafka_bootstrap: str, private_names: dict[str, str]
) -> None:
    settings = load_settings(
        CommonSettings, kafka_bootstrap_servers=kafka_bootstrap, telemetry_partitions=4, **private_names
    )
    specs = cockpit_topics(settings)
    telemetry, dead, commands = (spec.name for spec in specs)
    for name in (telemetry, dead, commands):
        assert partition_count(kafka_bootstrap, name) is None

    first = ensure_topics(kafka_bootstrap, specs)
    assert first == {telemetry: CREATED, dead: CREATED, commands: CREATED}
    # Usable right away: every partition has a leader when ensure_topics returns.
    assert partition_count(kafka_bootstrap, telemetry) == 4
    assert partition_count(kafka_bootstrap, dead) == 1
    assert partition_count(kafka_bootstrap, commands) == 1
    configs = _topic_configs(kafka_bootstrap, telemetry)
    assert configs.get("retention.ms") == str(168 * 3_600_000)
    assert configs.get("max.message.bytes") == "1048576"
    assert configs.get("cleanup.policy") == "delete"
    assert _topic_configs(kafka_bootstrap, dead).get("max.message.bytes") == "2097152"

    second = ensure_topics(kafka_bootstrap, specs)
    assert second == {telemetry: EXISTS, dead: EXISTS, commands: EXISTS}

    more = load_settings(
        CommonSettings, kafka_bootstrap_servers=kafka_bootstrap, telemetry_partitions=8, **private_names
    )
    third = ensure_topics(kafka_bootstrap, cockpit_topics(more))
    assert third[telemetry] == "exists with 4 partitions (configured 8)"
    assert partition_count(kafka_bootstrap, telemetry) == 4  # never altered


def test_missing_topics_only_are_created(kafka_bootstrap: str, private_names: dict[str, str]) -> None:
    settings = load_settings(CommonSettings, kafka_bootstrap_servers=kafka_bootstrap, **private_names)
    specs = cockpit_topics(settings)
    assert ensure_topics(kafka_bootstrap, specs[:1]) == {specs[0].name: CREATED}
    outcomes = ensure_topics(kafka_bootstrap, specs)
    assert outcomes == {specs[0].name: EXISTS, specs[1].name: CREATED, specs[2].name: CREATED}


def test_unreachable_broker_raises_within_the_bound() -> None:
    with socket_refusing_port() as port:
        address = f"127.0.0.1:{port}"
        specs = cockpit_topics(load_settings(CommonSettings))
        started = time.monotonic()
        with pytest.raises(TopicError) as info:
            ensure_topics(address, specs, timeout_s=2.0)
        elapsed = time.monotonic() - started
    assert address in str(info.value) and "telemetry.v1" in str(info.value)
    assert elapsed < 20  # bounded: no endless retry loop


def test_cli_prints_one_line_per_topic_and_is_idempotent(
    kafka_bootstrap: str, private_names: dict[str, str]
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        **{f"COCKPIT_{key.upper()}": value for key, value in private_names.items()},
    }
    command = [sys.executable, "-m", "common", "topics"]
    first = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    for name in private_names.values():
        assert f"{name}: created" in first.stdout
    second = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    for name in private_names.values():
        assert f"{name}: exists" in second.stdout


def test_cli_exits_3_with_a_clear_message_when_kafka_is_unreachable() -> None:
    with socket_refusing_port() as port:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        }
        result = subprocess.run(
            [sys.executable, "-m", "common", "topics", "--timeout", "2"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 3
    assert f"Kafka unreachable at 127.0.0.1:{port}" in result.stderr
    assert "python -m common topics" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) <= 5  # no log spam from the Kafka client


class socket_refusing_port:
    """A port nothing listens on: bound (so no one else takes it) but never listening -> refused."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return int(self._sock.getsockname()[1])

    def __exit__(self, *_exc: object) -> None:
        self._sock.close()


def test_api_publisher_names_a_missing_topic_then_works_once_created(
    kafka_bootstrap: str, private_names: dict[str, str]
) -> None:
    """A missing command topic: clear 503 reason, no producer left retrying; creating it fixes sweeps."""
    from api.commands import CommandPublisher, KafkaUnavailable
    from common.contracts import SweepCommand

    topic = private_names["command_topic"]
    publisher = CommandPublisher(kafka_bootstrap, topic, timeout=5.0)
    command = SweepCommand(run_id=uuid.uuid4(), requested_at=datetime.now(UTC), requested_by="test")
    try:
        with pytest.raises(KafkaUnavailable) as info:
            publisher.publish(command)
        assert f"topic {topic} does not exist" in str(info.value)
        assert "python -m common topics" in str(info.value)
        assert publisher._producer is None  # nothing keeps asking the broker for the topic

        settings = load_settings(CommonSettings, kafka_bootstrap_servers=kafka_bootstrap, **private_names)
        ensure_topics(kafka_bootstrap, cockpit_topics(settings))
        publisher.publish(command)  # the same publisher recovers without a restart
    finally:
        publisher.close()
