"""Where a restarted simulator resumes: the pure choice and the bounded backwards scan of the topic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from kafka import TopicPartition

from producers.resume import _event_time, choose_start, newest_event_time, newest_event_times

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
PERIOD = 600


def test_no_earlier_event_starts_the_window_fresh() -> None:
    decision = choose_start(None, now=NOW, days=7, period_s=PERIOD)
    assert not decision.resumed
    assert decision.start == datetime(2026, 3, 3, 12, 30, tzinfo=UTC)


def test_resumes_one_period_after_the_newest_event() -> None:
    newest = datetime(2026, 3, 10, 9, 20, tzinfo=UTC)
    decision = choose_start(newest, now=NOW, days=7, period_s=PERIOD)
    assert decision.resumed and decision.newest == newest
    assert decision.start == datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    assert "2026-03-10T09:20:00+00:00" in decision.reason


def test_an_unaligned_newest_event_resumes_on_the_grid() -> None:
    newest = datetime(2026, 3, 10, 9, 23, 7, tzinfo=UTC)
    assert choose_start(newest, now=NOW, days=7, period_s=PERIOD).start == datetime(
        2026, 3, 10, 9, 30, tzinfo=UTC
    )


def test_an_event_older_than_the_window_starts_fresh() -> None:
    newest = NOW - timedelta(days=30)
    decision = choose_start(newest, now=NOW, days=7, period_s=PERIOD)
    assert not decision.resumed and decision.start == datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
    assert "older than the 7-day window" in decision.reason


def test_an_event_just_inside_the_window_resumes() -> None:
    newest = datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
    decision = choose_start(newest, now=NOW, days=7, period_s=PERIOD)
    assert decision.resumed and decision.start == datetime(2026, 3, 3, 12, 40, tzinfo=UTC)


def test_a_newest_event_ahead_of_now_is_continued_not_repeated() -> None:
    newest = NOW + timedelta(minutes=5)
    decision = choose_start(newest, now=NOW, days=7, period_s=PERIOD)
    assert decision.resumed and decision.start > newest


FLEET = frozenset({"WT-001", "WT-002"})


def _value(tid: str, when: str) -> bytes:
    return orjson.dumps({"turbine_id": tid, "event_time": when, "power_kw": 1.0})


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"turbine_id": ["WT-001"]}',
        b'{"turbine_id": "WT-001", "event_time": 17}',
        b'{"turbine_id": "WT-001", "event_time": "not a time"}',
        b'{"turbine_id": "WT-999", "event_time": "2026-03-10T00:00:00Z"}',
        b'{"turbine_id": "R-WT-001", "event_time": "2026-03-10T00:00:00Z"}',
        b'{"turbine_id": {"a": 1}, "event_time": "2026-03-10T00:00:00Z"}',
    ],
)
def test_foreign_or_hostile_records_are_ignored(value: bytes | None) -> None:
    assert _event_time(value, FLEET) is None


def test_fleet_records_give_their_utc_event_time() -> None:
    assert _event_time(_value("WT-002", "2026-03-10T01:00:00+01:00"), FLEET) == datetime(
        2026, 3, 10, 0, 0, tzinfo=UTC
    )
    assert _event_time(_value("WT-001", "2026-03-10T00:00:00"), FLEET) == datetime(2026, 3, 10, tzinfo=UTC)


@dataclass
class _Record:
    offset: int
    value: bytes


class FakeConsumer:
    """The part of ``KafkaConsumer`` the scan uses, over in-memory partitions."""

    def __init__(self, partitions: dict[int, list[bytes]], topic: str = "t") -> None:
        self.topic = topic
        self.data = partitions
        self.positions: dict[Any, int] = {}
        self.assigned: list[Any] = []
        self.records_read = 0

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.data) if topic == self.topic else None

    def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: 0 for tp in tps}

    def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: len(self.data[tp.partition]) for tp in tps}

    def assign(self, tps: list[Any]) -> None:
        self.assigned = tps

    def seek(self, tp: Any, offset: int) -> None:
        self.positions[tp] = offset

    def position(self, tp: Any) -> int:
        return self.positions[tp]

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[_Record]]:
        tp = self.assigned[0]
        start = self.positions[tp]
        values = self.data[tp.partition][start : start + min(max_records, 7)]
        self.positions[tp] = start + len(values)
        self.records_read += len(values)
        return {tp: [_Record(start + i, v) for i, v in enumerate(values)]}

    def close(self) -> None:  # pragma: no cover - never called for a passed-in consumer
        raise AssertionError


def _newest(consumer: FakeConsumer, chunk: int = 10) -> datetime | None:
    return newest_event_time("unused:9092", "t", FLEET, consumer=consumer, chunk=chunk)


def test_absent_or_empty_topic_means_start_fresh() -> None:
    assert newest_event_time("x", "missing", FLEET, consumer=FakeConsumer({0: []})) is None
    assert _newest(FakeConsumer({0: [], 1: []})) is None


def test_newest_fleet_event_over_all_partitions_behind_foreign_records() -> None:
    fleet_p0 = [_value("WT-001", f"2026-03-10T0{h}:00:00Z") for h in range(5)]
    replay = [_value("R-WT-001", "2026-03-11T00:00:00Z")] * 35  # an incident replay written afterwards
    fleet_p1 = [_value("WT-002", f"2026-03-10T0{h}:10:00Z") for h in range(7)]
    consumer = FakeConsumer({0: fleet_p0 + replay + [b"\xff junk"], 1: fleet_p1})
    assert _newest(consumer) == datetime(2026, 3, 10, 6, 10, tzinfo=UTC)


def test_scan_reads_only_the_tail_when_the_fleet_is_there() -> None:
    many = [_value("WT-001", "2026-03-01T00:00:00Z")] * 1000 + [_value("WT-002", "2026-03-10T00:00:00Z")]
    consumer = FakeConsumer({0: many})
    assert _newest(consumer, chunk=10) == datetime(2026, 3, 10, tzinfo=UTC)
    assert consumer.records_read == 10


def test_scan_is_bounded_per_partition() -> None:
    old = [_value("WT-001", "2026-03-01T00:00:00Z")]
    consumer = FakeConsumer({0: old + [_value("R-WT-001", "2026-03-10T00:00:00Z")] * 100})
    found = newest_event_time("x", "t", FLEET, consumer=consumer, chunk=10, max_records_per_partition=50)
    assert found is None and consumer.records_read == 50


def test_topic_partition_type_is_what_the_scan_assigns() -> None:
    consumer = FakeConsumer({3: [_value("WT-001", "2026-03-10T00:00:00Z")]})
    assert _newest(consumer) is not None
    assert consumer.assigned == [TopicPartition("t", 3)]


def test_every_group_is_found_in_one_read_of_the_topic() -> None:
    """Replay prefixes: each group's newest event, however many groups, for one pass over the records."""
    fleet = [_value("WT-001", "2026-03-10T00:00:00Z")] * 30
    r1 = [_value("R-WT-001", "2026-03-11T00:00:00Z"), _value("R-WT-001", "2026-03-11T01:00:00Z")]
    r2 = [_value("R2-WT-002", "2026-03-12T00:00:00Z")]
    consumer = FakeConsumer({0: r1 + fleet + r2 + fleet, 1: [b"\x00" * 5, b"not json"] * 20})
    groups = {p: [p + "WT-001", p + "WT-002"] for p in ("R-", "R2-", "R3-")}
    found = newest_event_times("x", "t", groups, consumer=consumer, chunk=10)
    assert found == {
        "R-": datetime(2026, 3, 11, 1, tzinfo=UTC),
        "R2-": datetime(2026, 3, 12, tzinfo=UTC),
        "R3-": None,  # never present: its absence costs the bounded full read, once for every group
    }
    assert consumer.records_read == len(r1 + fleet + r2 + fleet) + 40


def test_a_partition_stops_when_every_group_was_seen_there() -> None:
    older = [_value("R2-WT-001", "2026-03-01T00:00:00Z")] * 100
    r1 = [_value("R-WT-001", "2026-03-11T00:00:00Z")] * 5
    tail = r1 + [_value("R2-WT-001", "2026-03-12T00:00:00Z")] * 5
    consumer = FakeConsumer({0: older + tail})
    groups = {"R-": ["R-WT-001"], "R2-": ["R2-WT-001"]}
    found = newest_event_times("x", "t", groups, consumer=consumer, chunk=10)
    assert found == {"R-": datetime(2026, 3, 11, tzinfo=UTC), "R2-": datetime(2026, 3, 12, tzinfo=UTC)}
    assert consumer.records_read == 10


def test_a_record_dated_beyond_the_contract_future_limit_is_not_where_the_fleet_stopped() -> None:
    """Seen on the demo: one hostile record dated 2099 (dead-lettered by the scorer) made the simulator
    resume in 2099 and publish nothing. Within the contract's skew a record still counts."""
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    fleet = [_value("WT-001", f"2026-03-10T1{h}:00:00Z") for h in range(2)]
    hostile = [_value("WT-001", "2099-01-01T00:00:00Z"), _value("WT-002", "2026-03-10T12:30:00Z")]
    consumer = FakeConsumer({0: fleet + hostile})
    assert newest_event_time("x", "t", FLEET, consumer=consumer, now=now) == datetime(
        2026, 3, 10, 11, tzinfo=UTC
    )
    near = FakeConsumer({0: [*fleet, _value("WT-002", "2026-03-10T12:05:00Z")]})
    assert newest_event_time("x", "t", FLEET, consumer=near, now=now) == datetime(
        2026, 3, 10, 12, 5, tzinfo=UTC
    )
    assert _event_time(hostile[0], FLEET, latest=now) is None
