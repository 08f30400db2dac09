"""Accelerated clock arithmetic and the token-bucket rate limiter, with injected clocks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from producers.pacing import AcceleratedClock, RateLimiter

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
WALL0 = 1_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_speed_600_means_ten_simulated_minutes_per_second() -> None:
    clock = AcceleratedClock(600, T0, WALL0, clock=FakeClock(WALL0))
    assert clock.due_at(T0) == WALL0
    assert clock.due_at(T0 + timedelta(minutes=10)) == pytest.approx(WALL0 + 1.0)
    assert clock.due_at(T0 + timedelta(days=1)) == pytest.approx(WALL0 + 144.0)
    assert clock.sim_time_at(WALL0 + 2.5) == pytest.approx(T0.timestamp() + 1500)


def test_delay_counts_down_with_the_wall_clock() -> None:
    fake = FakeClock(WALL0)
    clock = AcceleratedClock(60, T0, WALL0, clock=fake)
    step = T0 + timedelta(minutes=10)  # due 10 s after the origin
    assert clock.delay(step) == pytest.approx(10.0)
    fake.now += 4
    assert clock.delay(step) == pytest.approx(6.0)
    fake.now += 100
    assert clock.delay(step) == 0.0


def test_speed_zero_never_waits() -> None:
    clock = AcceleratedClock(0, T0, WALL0, clock=FakeClock(WALL0 - 50))
    assert clock.delay(T0 + timedelta(days=365)) == 0.0
    assert clock.wait(T0 + timedelta(days=365), threading.Event()) is True


def test_never_publish_before_the_event_time() -> None:
    """Accelerated from 1 h ago at x600 catches up after 6 s, then follows real time."""
    now = T0.timestamp()
    start = T0 - timedelta(hours=1)
    clock = AcceleratedClock(600, start, now, not_before_event_time=True, clock=FakeClock(now))
    assert clock.due_at(start + timedelta(minutes=30)) == pytest.approx(now + 3)
    future = T0 + timedelta(minutes=20)
    assert clock.due_at(future) == pytest.approx(future.timestamp())  # not now + 8 s


def test_live_is_speed_one_from_now() -> None:
    clock = AcceleratedClock(1, T0, T0.timestamp(), not_before_event_time=True)
    assert clock.due_at(T0 + timedelta(minutes=10)) == pytest.approx(T0.timestamp() + 600)


def test_wait_returns_false_when_stopped() -> None:
    stop = threading.Event()
    stop.set()
    clock = AcceleratedClock(1, T0, clock=lambda: T0.timestamp())
    assert clock.wait(T0 + timedelta(hours=1), stop) is False


def test_invalid_clock_arguments() -> None:
    with pytest.raises(ValueError):
        AcceleratedClock(-1, T0)
    with pytest.raises(ValueError):
        AcceleratedClock(1, datetime(2024, 1, 1))


def test_rate_limiter_long_run_rate_is_exact() -> None:
    fake = FakeClock(0.0)
    limiter = RateLimiter(1000, burst=10, clock=fake, sleep=fake.sleep)
    for _ in range(10_010):
        limiter.acquire()
    # 10 burst tokens free, then 10 000 events at 1000/s
    assert fake.now == pytest.approx(10.0, rel=1e-6)


def test_rate_limiter_allows_a_burst_then_sleeps() -> None:
    fake = FakeClock(0.0)
    limiter = RateLimiter(100, burst=5, clock=fake, sleep=fake.sleep)
    assert [limiter.acquire() for _ in range(5)] == [0.0] * 5
    assert limiter.acquire() == pytest.approx(0.01)


def test_rate_limiter_refills_while_idle_but_caps_the_burst() -> None:
    fake = FakeClock(0.0)
    limiter = RateLimiter(100, burst=5, clock=fake, sleep=fake.sleep)
    fake.now += 60  # a minute idle earns at most `burst` tokens
    slept = sum(limiter.acquire() for _ in range(6))
    assert slept == pytest.approx(0.01)


def test_rate_limiter_rejects_nonpositive_rates() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
