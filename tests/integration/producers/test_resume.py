"""The demo simulator resumes where it stopped (real broker, the CLI as operators run it).

Run 1 (``simulate``) publishes part of a day and is stopped with SIGINT; an incident replay then writes
thousands of records of other turbines after it; run 2 (``accelerated``, same fleet) must start one step
after run 1's last event: every (turbine, time) of the window exactly once, no gap, no repeat.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson
import pytest

from tests.integration.producers.test_producer_kafka import (
    ROOT,
    log_lines,
    producer_env,
    read_topic,
    run_producer,
)

pytestmark = pytest.mark.integration

FLEET = ("--turbines", "3", "--days", "1")
STEP = timedelta(minutes=10)


def _times(bootstrap: str, topic: str) -> dict[str, list[datetime]]:
    per_turbine: dict[str, list[datetime]] = defaultdict(list)
    for _, _, value in read_topic(bootstrap, topic):
        item = orjson.loads(value)
        per_turbine[item["turbine_id"]].append(datetime.fromisoformat(item["event_time"]))
    return per_turbine


def _interrupted_simulate(bootstrap: str, topic: str, after_sent: int) -> str:
    """Run ``simulate`` until it has sent ``after_sent`` events, then Ctrl-C it; returns its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "producers", "simulate", "--speed", "3000", *FLEET, "--topic", topic],
        cwd=ROOT,
        env=producer_env(bootstrap),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    enough = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if '"message":"progress"' in line and orjson.loads(line)["sent"] >= after_sent:
                enough.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert enough.wait(60), "".join(lines)[-3000:]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    assert proc.returncode == 0, "".join(lines)[-3000:]
    return "".join(lines)


def test_simulator_resumes_after_its_last_event_without_gap_or_repeat(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("resume", partitions=3)
    first = _interrupted_simulate(kafka_bootstrap, topic, after_sent=30)
    assert log_lines(first, "starting fresh"), first[-2000:]
    [summary1] = log_lines(first, "summary")
    assert summary1["stopped_by"] == "SIGINT" and 0 < summary1["sent"] < 3 * 144

    before = _times(kafka_bootstrap, topic)
    last_step = max(max(times) for times in before.values())
    # an incident replay (other ids) written after run 1: the resume scan must look past it
    replay = run_producer(
        kafka_bootstrap, "scenario", "frozen_sensor_no_alarm", "--speed", "0", "--topic", topic
    )
    assert replay.returncode == 0, replay.stderr[-2000:]

    second = run_producer(kafka_bootstrap, "accelerated", "--speed", "3000", *FLEET, "--topic", topic)
    assert second.returncode == 0, second.stderr[-3000:]
    [resumed] = log_lines(second.stderr, "resuming at")
    assert datetime.fromisoformat(resumed["start"]) == last_step + STEP
    assert "resuming at" in second.stdout
    [summary2] = log_lines(second.stderr, "summary")
    assert summary2["complete"] and summary2["failed"] == 0

    after = _times(kafka_bootstrap, topic)
    fleet = {tid: times for tid, times in after.items() if tid.startswith("WT-")}
    assert sorted(fleet) == ["WT-001", "WT-002", "WT-003"]
    for tid, times in fleet.items():
        assert len(times) == len(set(times)), f"{tid}: an event was published twice"
        ordered = sorted(times)
        gaps = [(a, b) for a, b in itertools.pairwise(ordered) if b - a != STEP]
        assert not gaps, f"{tid}: gap or overlap between runs at {gaps[:3]}"
        assert ordered[0] == min(before[tid]) and ordered[-1] > last_step
    assert sum(len(t) for t in fleet.values()) == summary1["sent"] + summary2["sent"]
