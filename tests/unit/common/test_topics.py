"""The cockpit's topic specifications come from the settings, and bad topic settings stop start-up."""

from __future__ import annotations

import time

import pytest

from common.settings import CommonSettings, SettingsError, load_settings
from common.topics import (
    CREATED,
    TopicError,
    TopicSpec,
    cockpit_topics,
    describe_outcomes,
    ensure_topics,
    mismatch_outcome,
    partition_count,
)

pytestmark = pytest.mark.unit


def test_default_specs_cover_telemetry_dead_letters_and_commands() -> None:
    settings = load_settings(CommonSettings)
    specs = {spec.name: spec for spec in cockpit_topics(settings)}
    assert list(specs) == ["telemetry.v1", "telemetry.dlq.v1", "scorer.commands.v1"]

    telemetry = specs["telemetry.v1"]
    assert telemetry.partitions == 6 and telemetry.replication_factor == 1
    assert telemetry.config == {
        "cleanup.policy": "delete",
        "retention.ms": str(168 * 3_600_000),
        "max.message.bytes": "1048576",
    }
    dead = specs["telemetry.dlq.v1"]
    assert dead.partitions == 1
    assert dead.config["retention.ms"] == str(30 * 24 * 3_600_000)
    assert dead.config["max.message.bytes"] == "2097152"
    commands = specs["scorer.commands.v1"]
    assert commands.partitions == 1  # commands stay in order
    assert commands.config["retention.ms"] == str(7 * 24 * 3_600_000)
    for spec in specs.values():
        assert spec.config["cleanup.policy"] == "delete"
        assert all(isinstance(v, str) for v in spec.config.values())  # Kafka configs are strings


def test_specs_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_TELEMETRY_PARTITIONS", "12")
    monkeypatch.setenv("COCKPIT_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("COCKPIT_TELEMETRY_RETENTION_HOURS", "0.5")
    monkeypatch.setenv("COCKPIT_DEAD_LETTER_RETENTION_DAYS", "2")
    monkeypatch.setenv("COCKPIT_TELEMETRY_MAX_MESSAGE_BYTES", "4096")
    monkeypatch.setenv("COCKPIT_TELEMETRY_TOPIC", "site-a.telemetry")
    specs = cockpit_topics(load_settings(CommonSettings))
    telemetry, dead, commands = specs
    assert telemetry.name == "site-a.telemetry" and telemetry.partitions == 12
    assert {s.replication_factor for s in specs} == {3}
    assert telemetry.config["retention.ms"] == str(30 * 60 * 1000)
    assert telemetry.config["max.message.bytes"] == "4096"
    assert dead.config["retention.ms"] == str(2 * 24 * 3_600_000)
    assert commands.partitions == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COCKPIT_TELEMETRY_PARTITIONS", "0"),
        ("COCKPIT_TELEMETRY_PARTITIONS", "many"),
        ("COCKPIT_TOPIC_REPLICATION_FACTOR", "0"),
        ("COCKPIT_TELEMETRY_RETENTION_HOURS", "0"),
        ("COCKPIT_TELEMETRY_RETENTION_HOURS", "-1"),
        ("COCKPIT_DEAD_LETTER_RETENTION_DAYS", "0"),
        ("COCKPIT_TELEMETRY_MAX_MESSAGE_BYTES", "10"),
        ("COCKPIT_DEAD_LETTER_MAX_MESSAGE_BYTES", str(2**40)),
        ("COCKPIT_TELEMETRY_TOPIC", "has space"),
        ("COCKPIT_DEAD_LETTER_TOPIC", "nul\x01char"),
        ("COCKPIT_COMMAND_TOPIC", "x" * 250),
        ("COCKPIT_COMMAND_TOPIC", ".."),
    ],
)
def test_bad_topic_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings(CommonSettings)


def test_two_roles_cannot_share_a_topic() -> None:
    with pytest.raises(SettingsError, match="three different topics"):
        load_settings(CommonSettings, dead_letter_topic="telemetry.v1")


def test_spec_rejects_impossible_values() -> None:
    with pytest.raises(ValueError):
        TopicSpec(name="t", partitions=0, replication_factor=1, config={})
    with pytest.raises(ValueError):
        TopicSpec(name="", partitions=1, replication_factor=1, config={})


def test_outcome_lines_show_what_a_created_topic_got() -> None:
    specs = cockpit_topics(load_settings(CommonSettings))
    outcomes = {
        "telemetry.v1": CREATED,
        "telemetry.dlq.v1": "exists",
        "scorer.commands.v1": mismatch_outcome(3, 1),
    }
    lines = describe_outcomes(outcomes, specs)
    assert lines[0] == (
        "telemetry.v1: created (6 partitions, replication 1, retention 168 h, max message 1048576 B)"
    )
    assert lines[1] == "telemetry.dlq.v1: exists"
    assert lines[2] == "scorer.commands.v1: exists with 3 partitions (configured 1)"


def test_nothing_to_do_needs_no_broker() -> None:
    assert ensure_topics("127.0.0.1:1", [], timeout_s=0.1) == {}


def test_unreachable_broker_is_a_topic_error_naming_the_address() -> None:
    """Port 1 refuses connections: no service needed; the failure is bounded by the timeout."""
    specs = cockpit_topics(load_settings(CommonSettings))
    started = time.monotonic()
    with pytest.raises(TopicError) as info:
        ensure_topics("127.0.0.1:1", specs, timeout_s=1.0)
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "127.0.0.1:1" in message and "telemetry.v1" in message
    with pytest.raises(TopicError, match=r"127\.0\.0\.1:1"):
        partition_count("127.0.0.1:1", "telemetry.v1", timeout_s=1.0)
