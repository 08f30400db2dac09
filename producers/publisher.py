"""The publishing core: records in, Kafka events out, with counts that add up.

Why one loop for every mode: delivery guarantees, backpressure, pacing, rate limiting and the clean stop
are the hard parts, and they are the same whether records come from the simulator or from a file.

Counting: ``accepted`` = handed to the producer, ``sent`` = acknowledged by the broker (acks=all),
``failed`` = the producer gave up. After :meth:`Publisher.finish`, ``accepted == sent + failed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.logging import event
from producers.pacing import AcceleratedClock, RateLimiter
from producers.serialize import encode_record

log = logging.getLogger(__name__)

Encoder = Callable[[Mapping[str, Any]], tuple[bytes, bytes]]


class FutureLike(Protocol):
    def add_callback(self, f: Callable[..., Any], *args: Any) -> Any: ...
    def add_errback(self, f: Callable[..., Any], *args: Any) -> Any: ...


class ProducerLike(Protocol):
    """What we use of ``kafka.KafkaProducer`` (so unit tests can pass a fake)."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any: ...
    def flush(self, timeout: float | None = None) -> None: ...
    def close(self, timeout: float | None = None) -> None: ...


@dataclass
class RunStats:
    """Live counters of one run (written by the publish loop and the producer's sender thread)."""

    mode: str = "?"
    topic: str = "?"
    accepted: int = 0
    sent: int = 0
    failed: int = 0
    bytes_accepted: int = 0
    rows_read: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    reject_examples: dict[str, list[str]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    total: int | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stopped_by: str | None = None
    complete: bool = False

    @property
    def pending(self) -> int:
        return self.accepted - self.sent - self.failed

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self, top: int = 5) -> dict[str, Any]:
        elapsed = self.elapsed
        return {
            "mode": self.mode,
            "topic": self.topic,
            "sent": self.sent,
            "failed": self.failed,
            "accepted": self.accepted,
            "rows_read": self.rows_read,
            "rejected": sum(self.rejected.values()),
            "reject_reasons": dict(self.rejected.most_common(top)),
            "errors": dict(self.errors.most_common(top)),
            "elapsed_s": round(elapsed, 3),
            "events_per_s": round(self.sent / elapsed, 1) if elapsed > 0 else 0.0,
            "mb_per_s": round(self.bytes_accepted / 1e6 / elapsed, 2) if elapsed > 0 else 0.0,
            "stopped_by": self.stopped_by,
            "complete": self.complete,
        }


class Publisher:
    """Send records to one topic, keyed by turbine id, and account for every one of them."""

    def __init__(
        self,
        producer: ProducerLike,
        topic: str,
        stats: RunStats,
        *,
        encoder: Encoder = encode_record,
        max_pending: int = 200_000,
        latency_observer: Callable[[float], None] | None = None,
        latency_every: int = 64,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.stats = stats
        self.encoder = encoder
        self.max_pending = max_pending
        self.latency_observer = latency_observer
        self.latency_every = max(1, latency_every)
        self._lock = threading.Lock()

    # Callbacks usually run on the producer's sender thread, but on the caller's thread when the future
    # completed before the callback was attached: the lock keeps the counts exact either way.
    def _on_sent(self, _metadata: object) -> None:
        with self._lock:
            self.stats.sent += 1

    def _on_failed(self, exc: BaseException) -> None:
        with self._lock:
            self.stats.failed += 1
            self.stats.errors[type(exc).__name__] += 1
        if self.stats.errors[type(exc).__name__] == 1:
            event(log, "send failed", logging.ERROR, error=repr(exc), topic=self.topic)

    def _on_latency(self, started: float, _metadata: object) -> None:
        if self.latency_observer is not None:
            self.latency_observer(time.perf_counter() - started)

    def publish(
        self,
        records: Iterable[Mapping[str, Any]],
        stop: threading.Event,
        *,
        clock: AcceleratedClock | None = None,
        limiter: RateLimiter | None = None,
    ) -> RunStats:
        """Send until ``records`` is exhausted or ``stop`` is set; does not flush (see :meth:`finish`)."""
        stats = self.stats
        send = self.producer.send
        encode = self.encoder
        topic = self.topic
        on_sent, on_failed = self._on_sent, self._on_failed
        every = self.latency_every
        sample = self.latency_observer is not None
        perf = time.perf_counter
        n = stats.accepted
        nbytes = stats.bytes_accepted
        paced = clock is not None and (clock.speed > 0 or clock.not_before_event_time)
        exhausted = False
        try:
            for record in records:
                if stop.is_set():
                    break
                if paced and not clock.wait(record["event_time"], stop):  # type: ignore[union-attr]
                    break
                if limiter is not None:
                    limiter.acquire()
                key, value = encode(record)
                future = send(topic, value=value, key=key)
                future.add_callback(on_sent)
                future.add_errback(on_failed)
                n += 1
                nbytes += len(value)
                if sample and n % every == 0:
                    future.add_callback(self._on_latency, perf())
                # Counters are published every 1024 sends at full speed (cheap), at every send when paced
                # (so a slow live run never shows more acknowledged than accepted events).
                if paced or n & 1023 == 0:
                    stats.accepted, stats.bytes_accepted = n, nbytes
                    if n - stats.sent - stats.failed > self.max_pending:
                        self._wait_for_room(n, stop)
            else:
                exhausted = True
        finally:  # also when the source raises: the counts must cover every send() made
            stats.accepted, stats.bytes_accepted = n, nbytes
        stats.complete = exhausted and not stop.is_set()
        return stats

    def _wait_for_room(self, n: int, stop: threading.Event) -> None:
        """Backpressure: kafka-python's accumulator is unbounded, so cap unacknowledged events ourselves."""
        low_water = self.max_pending // 2
        while n - self.stats.sent - self.stats.failed > low_water and not stop.is_set():
            time.sleep(0.002)

    def finish(self, timeout: float, grace: float = 5.0) -> RunStats:
        """Flush everything accepted, close the producer; unacknowledged leftovers count as failed.

        ``grace`` is how long callbacks still running after the flush may take to land.
        """
        stats = self.stats
        try:
            self.producer.flush(timeout=timeout)
        except Exception as exc:  # KafkaTimeoutError: the broker did not confirm everything in time
            event(log, "flush did not complete", logging.ERROR, error=repr(exc), pending=stats.pending)
        deadline = time.monotonic() + grace
        while stats.pending > 0 and time.monotonic() < deadline:  # callbacks may still be running
            time.sleep(0.01)
        if stats.pending > 0:
            with self._lock:
                stats.errors["not acknowledged before exit"] += stats.pending
                stats.failed += stats.pending
        try:
            self.producer.close(timeout=5)
        except Exception as exc:
            event(log, "producer close failed", logging.WARNING, error=repr(exc))
        stats.finished = time.monotonic()
        return stats
