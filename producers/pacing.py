"""Pacing: the accelerated clock (simulated time -> wall-clock time) and a token-bucket rate limiter.

Why separate and pure: the arithmetic is what makes ``--speed 600`` mean "10 simulated minutes per
second", so it is unit-tested with injected clocks; the publisher only asks "wait until this is due".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], float]
Sleeper = Callable[[float], object]


class AcceleratedClock:
    """Maps simulated time to wall-clock time: ``due = wall_origin + (t - sim_origin) / speed``.

    ``speed=0`` means "as fast as possible" (never wait). With ``not_before_event_time`` an event is
    never published before its own timestamp, so an accelerated run that catches up with the present
    continues in real time instead of producing future events (the scorer rejects those).
    """

    def __init__(
        self,
        speed: float,
        sim_origin: datetime,
        wall_origin: float | None = None,
        *,
        not_before_event_time: bool = False,
        clock: Clock = time.time,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        if sim_origin.tzinfo is None:
            raise ValueError("sim_origin must be timezone-aware")
        self.speed = float(speed)
        self.sim_origin = sim_origin
        self._sim_origin_s = sim_origin.timestamp()
        self.wall_origin = clock() if wall_origin is None else wall_origin
        self.not_before_event_time = not_before_event_time
        self._clock = clock
        self._last_time: datetime | None = None
        self._last_due = 0.0

    def due_at(self, sim_time: datetime) -> float:
        """Wall-clock epoch seconds at which the event stamped ``sim_time`` should be published."""
        stamp = sim_time.timestamp()
        if self.speed == 0:
            due = float("-inf")  # as fast as possible
        else:
            due = self.wall_origin + (stamp - self._sim_origin_s) / self.speed
        if self.not_before_event_time and stamp > due:
            due = stamp
        return due

    def sim_time_at(self, wall: float) -> float:
        """Simulated epoch seconds reached at wall-clock ``wall`` (ignores ``not_before_event_time``)."""
        if self.speed == 0:
            return float("inf")
        return self._sim_origin_s + (wall - self.wall_origin) * self.speed

    def delay(self, sim_time: datetime) -> float:
        """Seconds to wait before publishing ``sim_time`` (0 when already due)."""
        if sim_time is self._last_time or sim_time == self._last_time:  # a fleet step shares one timestamp
            due = self._last_due
        else:
            due = self.due_at(sim_time)
            self._last_time, self._last_due = sim_time, due
        return max(0.0, due - self._clock())

    def wait(self, sim_time: datetime, stop: threading.Event) -> bool:
        """Block until ``sim_time`` is due; False if ``stop`` was set meanwhile."""
        if self.speed == 0 and not self.not_before_event_time:
            return not stop.is_set()
        pause = self.delay(sim_time)
        if pause > 0:
            return not stop.wait(pause)
        return True


class RateLimiter:
    """Token bucket: at most ``rate`` events/s on average, bursts of up to ``burst`` events.

    Over-spending is kept as a debt that the caller sleeps off, so the long-run rate is exact even when
    each sleep overshoots a little.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleeper = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 events/s")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 20)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens, sleeping as needed; returns the seconds slept."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate) - n
        self._last = now
        if self._tokens >= 0:
            return 0.0
        pause = -self._tokens / self.rate
        self._sleep(pause)
        return pause
