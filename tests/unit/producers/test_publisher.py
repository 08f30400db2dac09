"""Publisher accounting with a fake producer: accepted == sent + failed, clean stop, backpressure."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from producers.pacing import AcceleratedClock, RateLimiter
from producers.publisher import Publisher, RunStats

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class FakeFuture:
    """Like kafka's future: a callback attached after completion runs at once, on the caller's thread."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[..., Any]] = []
        self.errbacks: list[Callable[..., Any]] = []
        self.outcome: tuple[bool, Any] | None = None
        self.lock = threading.Lock()

    def add_callback(self, f: Callable[..., Any], *args: Any) -> None:
        self._add(True, lambda value: f(*args, value))

    def add_errback(self, f: Callable[..., Any], *args: Any) -> None:
        self._add(False, lambda exc: f(*args, exc))

    def _add(self, on_success: bool, call: Callable[[Any], Any]) -> None:
        with self.lock:
            if self.outcome is None:
                (self.callbacks if on_success else self.errbacks).append(call)
                return
        ok, value = self.outcome
        if ok == on_success:
            call(value)

    def complete(self, ok: bool, value: Any) -> None:
        with self.lock:
            self.outcome = (ok, value)
            calls = self.callbacks if ok else self.errbacks
        for call in calls:
            call(value)


class FakeProducer:
    """Acknowledges on flush; fails the values for which ``fail`` says so."""

    def __init__(
        self, fail: Callable[[bytes], bool] = lambda v: False, ack_immediately: bool = False
    ) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.pending: list[tuple[FakeFuture, bytes]] = []
        self.fail = fail
        self.ack_immediately = ack_immediately
        self.closed = False
        self.lock = threading.Lock()

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> FakeFuture:
        future = FakeFuture()
        with self.lock:
            self.sent.append((topic, key, value))
            self.pending.append((future, value or b""))
        return future

    def ack(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, []
        for future, value in pending:
            if self.fail(value):
                future.complete(False, RuntimeError("broker said no"))
            else:
                future.complete(True, object())

    def flush(self, timeout: float | None = None) -> None:
        self.ack()

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def records(n: int, turbines: int = 3) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "turbine_id": f"WT-{i % turbines:03d}",
            "site_id": "SITE-A",
            "event_time": T0 + timedelta(minutes=10 * (i // turbines)),
            "power_kw": float(i),
        }


def test_counts_add_up_and_keys_are_turbine_ids() -> None:
    producer = FakeProducer(fail=lambda v: orjson.loads(v)["power_kw"] in (3.0, 7.0))
    stats = RunStats(mode="t", topic="topic")
    publisher = Publisher(producer, "topic", stats)
    publisher.publish(records(10), threading.Event())
    assert stats.accepted == 10 and stats.complete
    publisher.finish(timeout=1)
    assert (stats.sent, stats.failed) == (8, 2)
    assert stats.errors == {"RuntimeError": 2}
    assert producer.closed
    assert [key for _, key, _ in producer.sent[:3]] == [b"WT-000", b"WT-001", b"WT-002"]
    assert stats.summary()["sent"] == 8 and stats.summary()["complete"] is True


def test_stop_stops_reading_and_flushes_what_was_accepted() -> None:
    producer = FakeProducer()
    stats = RunStats()
    stop = threading.Event()
    publisher = Publisher(producer, "topic", stats)

    def source() -> Iterator[dict[str, Any]]:
        for i, record in enumerate(records(100)):
            if i == 40:
                stop.set()  # what the SIGINT handler does
            yield record

    publisher.publish(source(), stop)
    publisher.finish(timeout=1)
    assert stats.accepted == 40 and stats.sent == 40 and stats.failed == 0
    assert not stats.complete


def test_unacknowledged_events_count_as_failed() -> None:
    class NeverAcks(FakeProducer):
        def flush(self, timeout: float | None = None) -> None:
            raise TimeoutError("flush timed out")

    stats = RunStats()
    publisher = Publisher(NeverAcks(), "topic", stats)
    publisher.publish(records(5), threading.Event())
    publisher.finish(timeout=0.01, grace=0.05)
    assert stats.failed == 5 and stats.sent == 0
    assert stats.errors == {"not acknowledged before exit": 5}


def test_backpressure_waits_for_acknowledgements() -> None:
    producer = FakeProducer()
    stats = RunStats()
    publisher = Publisher(producer, "topic", stats, max_pending=1000)
    done = threading.Event()

    def acknowledge() -> None:
        while not done.wait(0.002):
            producer.ack()

    acker = threading.Thread(target=acknowledge)
    acker.start()
    publisher.publish(records(5000), threading.Event())
    done.set()
    acker.join()
    publisher.finish(timeout=1)
    assert stats.sent == 5000
    assert max(0, stats.pending) == 0


def test_latency_is_sampled() -> None:
    seen: list[float] = []
    producer = FakeProducer()
    publisher = Publisher(producer, "topic", RunStats(), latency_observer=seen.append, latency_every=4)
    publisher.publish(records(16), threading.Event())
    publisher.finish(timeout=1)
    assert len(seen) == 4 and all(x >= 0 for x in seen)


def test_accelerated_pacing_and_rate_limit_use_the_given_clocks() -> None:
    now = [T0.timestamp()]
    waits: list[float] = []
    stop = threading.Event()

    class Clock(AcceleratedClock):
        def wait(self, sim_time: datetime, stop: threading.Event) -> bool:
            pause = self.delay(sim_time)
            waits.append(pause)
            now[0] += pause
            return True

    clock = Clock(600, T0, T0.timestamp(), clock=lambda: now[0])
    limiter_sleeps: list[float] = []
    limiter = RateLimiter(1e9, clock=lambda: now[0], sleep=limiter_sleeps.append)
    publisher = Publisher(FakeProducer(), "topic", RunStats())
    publisher.publish(records(9), stop, clock=clock, limiter=limiter)
    # 3 turbines per step, 10 simulated minutes per step = 1 s at x600
    assert [round(w, 6) for w in waits] == [0, 0, 0, 1, 0, 0, 1, 0, 0]


def test_a_failing_source_still_accounts_for_what_was_sent() -> None:
    def broken() -> Iterator[dict[str, Any]]:
        yield from records(1500)
        raise OSError("disk went away")

    producer = FakeProducer()
    stats = RunStats()
    publisher = Publisher(producer, "topic", stats)
    with pytest.raises(OSError):
        publisher.publish(broken(), threading.Event())
    publisher.finish(timeout=1)
    assert stats.accepted == stats.sent == 1500 and not stats.complete
