"""Readiness verdict (pure) and the shutdown watchdog (a real thread, an injected exit)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from scorer.liveness import (
    EXIT_CRASH,
    EXIT_SHUTDOWN_TIMEOUT,
    Observation,
    ShutdownWatchdog,
    Verdict,
    assess,
    kafka_state,
)

HEALTHY = Observation(
    model_error=None,
    assigned=3,
    topic_partitions=3,
    unassigned_for_s=0.0,
    lag=0,
    writing=False,
    since_progress_s=0.0,
    write_error=None,
    kafka_error=None,
    dlq_error=None,
    topic="telemetry.v1",
)


def verdict(**changes: Any) -> Verdict:
    return assess(replace(HEALTHY, **changes), stall_after_s=120, unassigned_after_s=30)


def test_healthy_worker_is_ready() -> None:
    v = verdict()
    assert v.ready and not v.stalled and v.problems == [] and v.warnings == []


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"model_error": "registry/PRODUCTION: production pointer missing"}, "production pointer missing"),
        ({"kafka_error": "no metadata from 127.0.0.1:9092 for 45 s"}, "kafka unreachable"),
        ({"write_error": "database unavailable (DatabaseUnavailable): refused"}, "DatabaseUnavailable"),
        ({"write_error": "WriteRejected: telemetry_latest: CheckViolation"}, "WriteRejected"),
        ({"assigned": 0, "unassigned_for_s": 31.0}, "no partition assigned"),
        ({"topic_partitions": 0}, "not found on the broker"),
        ({"lag": 10, "since_progress_s": 121.0}, "stalled"),
        ({"writing": True, "since_progress_s": 121.0}, "a batch waiting for its write"),
    ],
)
def test_each_condition_is_a_named_problem(changes: dict[str, Any], needle: str) -> None:
    v = verdict(**changes)
    assert not v.ready
    assert any(needle in p for p in v.problems), v.problems


def test_grace_periods_and_non_problems() -> None:
    # A rebalance or the first join: no partition for a few seconds is not a problem yet.
    assert verdict(assigned=0, unassigned_for_s=5.0).ready
    # No partition because the topic has none known yet (no metadata): not claimed either way.
    assert verdict(assigned=0, topic_partitions=None, unassigned_for_s=100.0).ready
    # Lag while progressing is work, not a stall; no progress without lag is idleness.
    assert verdict(lag=50_000, since_progress_s=3.0).ready
    assert verdict(lag=0, since_progress_s=10_000.0).ready
    # Kafka unreachable: the topic's absence from (stale) metadata is not claimed on top.
    v = verdict(kafka_error="down", topic_partitions=0)
    assert len(v.problems) == 1


def test_dead_letter_failure_is_a_warning_not_a_problem() -> None:
    v = verdict(dlq_error="KafkaTimeoutError: topic telemetry.dlq.v1 missing")
    assert v.ready and v.problems == []
    assert "fallback" in v.warnings[0] and "KafkaTimeoutError" in v.warnings[0]


def test_stalled_flag_follows_the_problem() -> None:
    assert verdict(lag=1, since_progress_s=120.0).stalled
    assert not verdict(lag=1, since_progress_s=119.0).stalled


class _Cluster:
    def __init__(self, last_ok_ms: float, parts: set[int] | None) -> None:
        self._last_successful_refresh_ms = last_ok_ms
        self._parts = parts

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._parts


class _Client:
    def __init__(self, cluster: _Cluster) -> None:
        self.cluster = cluster


def test_kafka_state_from_the_consumer_metadata() -> None:
    assert kafka_state(None, "t", 10_000) == (None, None)
    assert kafka_state(_Client(_Cluster(0, {0})), "t", 10_000) == (None, None)  # never refreshed
    assert kafka_state(_Client(_Cluster(4_000, {0, 1, 2})), "t", 10_000) == (6_000, 3)
    assert kafka_state(_Client(_Cluster(9_000, None)), "t", 10_000) == (1_000, 0)  # no such topic


def test_watchdog_exits_with_its_code_when_the_stop_hangs() -> None:
    exited: list[int] = []
    done = threading.Event()

    def fake_exit(code: int) -> None:
        exited.append(code)
        done.set()

    wd = ShutdownWatchdog(0.2, exit_fn=fake_exit)
    assert wd.arm("signal SIGTERM", EXIT_SHUTDOWN_TIMEOUT)
    assert not wd.arm("crash", EXIT_CRASH)  # the first reason wins
    assert done.wait(5)
    assert exited == [EXIT_SHUTDOWN_TIMEOUT]
    assert wd.exit_code(0) == 0  # a signal stop that finished by itself keeps faust's code


def test_watchdog_does_nothing_when_the_process_ends_in_time() -> None:
    exited: list[int] = []
    wd = ShutdownWatchdog(0.3, exit_fn=exited.append)
    wd.arm("signal SIGINT", EXIT_SHUTDOWN_TIMEOUT)
    wd.disarm()
    threading.Event().wait(0.5)
    assert exited == []


def test_watchdog_arms_on_crash_and_maps_the_exit_code() -> None:
    exited: list[int] = []
    done = threading.Event()
    crashed = threading.Event()

    def fake_exit(code: int) -> None:
        exited.append(code)
        done.set()

    wd = ShutdownWatchdog(0.2, exit_fn=fake_exit, poll_s=0.02)
    wd.watch(crashed.is_set)
    threading.Event().wait(0.1)
    assert not wd.armed
    crashed.set()
    assert done.wait(5)
    assert wd.reason == "crash" and exited == [EXIT_CRASH]
    assert wd.exit_code(1) == EXIT_CRASH and wd.exit_code(0) == EXIT_CRASH
