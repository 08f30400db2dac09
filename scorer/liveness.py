"""Liveness and readiness of one worker: the ``/readyz`` verdict, the heartbeat row, bounded shutdown.

Why a module of its own: readiness must tell the truth about every way the worker can stop making
progress (no model, no partitions, Kafka unreachable, durable writes failing, a stall), the heartbeat
carries the same verdict to the API, and the process must end within a bound whatever faust does
while stopping. One place computes the verdict (:func:`assess`, pure) and one thread bounds the exit
(:class:`ShutdownWatchdog`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.db import DatabaseUnavailable
from common.logging import event

if TYPE_CHECKING:
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer")

#: Exit codes of ``python -m scorer worker`` (documented in docs/scorer.md, "Shutdown").
EXIT_OK = 0
EXIT_KAFKA_UNREACHABLE = 3  # topics could not be ensured at start
EXIT_CRASH = 70  # a batch (or faust) crashed; the supervisor restarts, the checkpoint replays
EXIT_SHUTDOWN_TIMEOUT = 124  # a stop signal was received but the shutdown hung past the bound


# ---------------------------------------------------------------------------------------------- verdict
@dataclass(frozen=True)
class Observation:
    """What the worker knows about itself at one instant (built by :meth:`Liveness.observe`)."""

    model_error: str | None  # None: a valid production model is loaded
    assigned: int  # telemetry partitions assigned to this worker
    topic_partitions: int | None  # partitions of the telemetry topic in the consumer's metadata
    unassigned_for_s: float  # how long assigned == 0 while the topic has partitions (0 otherwise)
    lag: int  # records in Kafka not yet processed on the assigned partitions
    writing: bool  # a batch is processed but its durable write has not finished
    since_progress_s: float  # since a record was last processed or the worker was caught up
    write_error: str | None  # the last durable write failed (cleared by the next success)
    kafka_error: str | None  # Kafka unreachable from the consumer
    dlq_error: str | None  # dead letters could not be published (kept in the fallback table)
    topic: str = ""


@dataclass(frozen=True)
class Verdict:
    ready: bool
    stalled: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def assess(obs: Observation, *, stall_after_s: float, unassigned_after_s: float) -> Verdict:
    """Ready means "this worker is doing its job"; every problem says why it is not.

    A dead letter that could not be published is a warning, not a problem: the stream keeps scoring
    and the envelope is kept in the durable fallback, so nothing is lost or stuck (a fallback that
    fails too is a failed durable write, which is a problem).
    """
    problems: list[str] = []
    warnings: list[str] = []
    if obs.model_error is not None:
        problems.append(f"no valid production model: {obs.model_error}")
    if obs.kafka_error is not None:
        problems.append(f"kafka unreachable: {obs.kafka_error}")
    if obs.write_error is not None:
        problems.append(f"durable writes failing: {obs.write_error}")
    if obs.topic_partitions == 0 and obs.kafka_error is None:
        problems.append(f"telemetry topic {obs.topic!r} not found on the broker")
    if obs.assigned == 0 and obs.topic_partitions and obs.unassigned_for_s >= unassigned_after_s:
        problems.append(
            f"no partition assigned for {obs.unassigned_for_s:.0f} s while topic {obs.topic!r} has "
            f"{obs.topic_partitions} (more workers than partitions, or the group does not rebalance)"
        )
    stalled = (obs.lag > 0 or obs.writing) and obs.since_progress_s >= stall_after_s
    if stalled:
        waiting = f"{obs.lag} records waiting" if obs.lag else "a batch waiting for its write"
        problems.append(f"stalled: {waiting} and none processed for {obs.since_progress_s:.0f} s")
    if obs.dlq_error is not None:
        warnings.append(f"dead letters not published (kept in the fallback table): {obs.dlq_error}")
    return Verdict(ready=not problems, stalled=stalled, problems=problems, warnings=warnings)


# ---------------------------------------------------------------------------------------------- kafka
def kafka_client(app: Any) -> Any:
    """The aiokafka client of faust's consumer (its own thread), or None before it started."""
    try:
        consumer = app.consumer._thread._consumer
    except Exception:  # not started, or another transport
        return None
    return None if consumer is None else getattr(consumer, "_client", None)


def kafka_state(client: Any, topic: str, now_ms: float) -> tuple[float | None, int | None]:
    """(ms since the last successful metadata refresh or None if unknown, partitions of ``topic``).

    Partitions: None when unknown (no metadata yet), 0 when the broker answered without the topic.
    """
    cluster = getattr(client, "cluster", None)
    if cluster is None:
        return None, None
    last_ok = float(getattr(cluster, "_last_successful_refresh_ms", 0) or 0)
    if last_ok <= 0:
        return None, None
    parts = cluster.partitions_for_topic(topic)
    return max(0.0, now_ms - last_ok), (len(parts) if parts else 0)


def _shape(texts: list[str]) -> list[str]:
    return [re.sub(r"\d+", "N", t) for t in texts]


# ---------------------------------------------------------------------------------------------- liveness
class Liveness:
    """Readiness verdict, progress tracking and heartbeat of one worker's runtime."""

    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime
        self.started_at = datetime.now(UTC)
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        now = time.monotonic()
        self._started = now
        self._progress_mono = now
        self._progress_wall = time.time()
        self._consumed_seen = 0
        self._unassigned_since: float | None = None
        self._topic_missing_since: float | None = None
        self._write_task: Any = None
        self.last: Verdict | None = None

    # ------------------------------------------------------------------ observation
    def _lags(self) -> dict[str, int]:
        rt = self.rt
        lags: dict[str, int] = {}
        consumer = getattr(rt.app, "consumer", None) if rt.app is not None else None
        if consumer is None:
            return lags
        try:
            for tp in consumer.assignment():
                if tp.topic != rt.settings.telemetry_topic:
                    continue
                high = consumer.highwater(tp)
                nxt = rt.processor.next_offset.get(tp.partition)
                if nxt is None:  # nothing processed since assignment: the committed offset
                    nxt = getattr(consumer, "_committed_offset", {}).get(tp)
                lags[str(tp.partition)] = max(0, int(high) - int(nxt or 0)) if high is not None else 0
        except Exception as exc:  # consumer not started yet: lag unknown, not a failure
            event(log, "lag unavailable", logging.DEBUG, error=str(exc))
        return lags

    def observe(self) -> tuple[Observation, dict[str, int]]:
        rt = self.rt
        s = rt.settings
        now = time.monotonic()
        lags = self._lags()
        lag = sum(lags.values())
        # A batch processed but not yet durably written: the pipelined write task (remembered, since a
        # checkpoint or the next batch takes it off the runtime while it still retries), or the
        # runtime's lock held (a checkpoint or batch waiting for that write; a sweep holds it seconds).
        inflight = getattr(rt, "_inflight", None)
        if inflight is not None:
            self._write_task = inflight
        task = self._write_task
        lock = getattr(rt, "lock", None)
        writing = (task is not None and not task.done()) or bool(lock is not None and lock.locked())
        # Progress = a batch durably written (rt.consumed grows only then), or nothing left to do.
        if rt.consumed != self._consumed_seen or (lag == 0 and not writing):
            self._consumed_seen = rt.consumed
            self._progress_mono = now
            self._progress_wall = time.time()
        kafka_error: str | None = None
        topic_partitions: int | None = None
        client = kafka_client(rt.app) if rt.app is not None else None
        age_ms, topic_partitions = kafka_state(client, s.telemetry_topic, time.time() * 1000)
        if age_ms is None:
            if client is not None and now - self._started >= s.kafka_unreachable_after_s:
                kafka_error = (
                    f"no metadata from {s.kafka_bootstrap_servers} since the start "
                    f"({now - self._started:.0f} s)"
                )
        elif age_ms >= s.kafka_unreachable_after_s * 1000:
            kafka_error = f"no metadata from {s.kafka_bootstrap_servers} for {age_ms / 1000:.0f} s"
        if topic_partitions == 0:  # absent from the metadata: only a problem if it stays absent
            if self._topic_missing_since is None:
                self._topic_missing_since = now
            if now - self._topic_missing_since < s.unassigned_after_s:
                topic_partitions = None  # the first refreshes may predate the subscription
        else:
            self._topic_missing_since = None
        if not rt.assigned and topic_partitions:
            if self._unassigned_since is None:
                self._unassigned_since = now
        else:
            self._unassigned_since = None
        unassigned_for = 0.0 if self._unassigned_since is None else now - self._unassigned_since
        # db_ok is False only while DatabaseUnavailable is retried; any other failed write leaves its
        # class in db_error and ends the worker (runtime._retry), reported until the process is gone.
        if not rt.db_ok:
            write_error: str | None = f"database unavailable (DatabaseUnavailable): {rt.db_error}"
        else:
            write_error = rt.db_error or None
        broken = getattr(rt, "broken", None)  # a write that failed for good: the worker is ending
        if write_error is None and isinstance(broken, BaseException):
            write_error = f"{type(broken).__name__}: {broken}"[:500]
        dlq = getattr(rt, "dlq_error", None)
        obs = Observation(
            model_error=None if rt.holder.scorer is not None else (rt.holder.error or "not loaded"),
            assigned=len(rt.assigned),
            topic_partitions=topic_partitions,
            unassigned_for_s=unassigned_for,
            lag=lag,
            writing=writing,
            since_progress_s=now - self._progress_mono,
            write_error=write_error,
            kafka_error=kafka_error,
            dlq_error=str(dlq) if dlq else None,
            topic=s.telemetry_topic,
        )
        return obs, lags

    def verdict(self) -> tuple[Verdict, Observation, dict[str, int]]:
        rt = self.rt
        obs, lags = self.observe()
        v = assess(
            obs,
            stall_after_s=rt.settings.stall_after_s,
            unassigned_after_s=rt.settings.unassigned_after_s,
        )
        m = rt.metrics
        m.ready.set(1 if v.ready else 0)
        m.stalled.set(1 if v.stalled else 0)
        m.last_progress.set(self._progress_wall)
        m.assigned_partitions.set(obs.assigned)
        for p, n in lags.items():
            m.lag_messages.labels(p).set(n)
        if self.last is None or _shape(self.last.problems + self.last.warnings) != _shape(
            v.problems + v.warnings
        ):  # log changes of condition, not of the durations inside the texts
            level = logging.INFO if v.ready else logging.WARNING
            event(log, "readiness changed", level, ready=v.ready, problems=v.problems, warnings=v.warnings)
        self.last = v
        return v, obs, lags

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        rt = self.rt
        v, obs, _ = self.verdict()
        return v.ready, {
            "ready": v.ready,
            "problems": v.problems,
            "warnings": v.warnings,
            "stalled": v.stalled,
            "worker_id": rt.settings.worker_id,
            "model_version": rt.holder.version,
            "partitions": sorted(rt.assigned),
            "lag": obs.lag,
            "last_progress": datetime.fromtimestamp(self._progress_wall, UTC).isoformat(),
        }

    # ------------------------------------------------------------------ heartbeat
    async def heartbeat(self) -> None:
        rt = self.rt
        now = time.monotonic()
        self._rate.append((now, rt.consumed))
        old = next(((t, c) for t, c in self._rate if now - t <= 65), self._rate[0])
        span = now - old[0]
        per_min = (rt.consumed - old[1]) * 60.0 / span if span > 0 else 0.0
        v, obs, lags = self.verdict()
        lag_s = 0.0
        if obs.lag and rt.last_record_ts is not None:
            lag_s = max(0.0, time.time() - rt.last_record_ts)
        rt.metrics.lag_seconds.set(lag_s)
        if not rt.sweeper.running:
            for tier, n in rt.processor.tier_counts().items():
                rt.metrics.turbines_by_tier.labels(tier).set(n)
        details = {
            "partitions": lags,
            "ready": v.ready,
            "problems": v.problems,
            "warnings": v.warnings,
            "stalled": v.stalled,
            "last_progress": datetime.fromtimestamp(self._progress_wall, UTC).isoformat(),
            "turbines": len(rt.processor.turbines),
        }
        try:
            await rt._in(
                rt.aux,
                rt.aux_sink.heartbeat,
                self.started_at,
                rt.holder.version,
                per_min,
                obs.lag,
                lag_s,
                details,
            )
        except DatabaseUnavailable as exc:
            rt.metrics.db_errors.labels("heartbeat").inc()
            event(log, "heartbeat not written", logging.WARNING, error=str(exc)[:300])
        except Exception as exc:
            rt.metrics.db_errors.labels("heartbeat").inc()
            event(log, "heartbeat failed", logging.WARNING, error=str(exc)[:300])


# ---------------------------------------------------------------------------------------------- shutdown
class ShutdownWatchdog:
    """Ends the process when a stop (signal) or a crash does not finish within ``timeout_s``.

    Why a thread: faust's stop can hang (a consumer "Task timed out", a final checkpoint against a dead
    database, an executor thread blocked in a socket) while the event loop still answers ``/healthz``.
    The thread does not depend on the event loop; when the bound passes it logs and calls
    ``os._exit`` - crash-only: the next start restores the last checkpoint and replays from Kafka.
    """

    def __init__(
        self,
        timeout_s: float,
        *,
        exit_fn: Callable[[int], Any] = os._exit,
        poll_s: float = 0.2,
    ) -> None:
        self.timeout_s = timeout_s
        self._exit = exit_fn
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._armed = threading.Event()
        self._done = threading.Event()
        self.reason: str | None = None
        self.code: int | None = None
        self.armed_at: float | None = None

    @property
    def armed(self) -> bool:
        return self._armed.is_set()

    def arm(self, reason: str, code: int) -> bool:
        """Start the countdown (first call wins); False when it was already running."""
        with self._lock:
            if self._armed.is_set():
                return False
            self.reason, self.code, self.armed_at = reason, code, time.monotonic()
            self._armed.set()
        event(
            log,
            "stopping; the process ends within the shutdown bound",
            logging.WARNING,
            reason=reason,
            shutdown_timeout_s=self.timeout_s,
            exit_code=code,
        )
        threading.Thread(target=self._countdown, name="scorer-shutdown-watchdog", daemon=True).start()
        return True

    def now(self, code: int) -> None:
        """Exit at once (a second stop signal: the operator does not want to wait)."""
        event(log, "second stop signal; exiting now", logging.WARNING, exit_code=code)
        self._flush()
        self._exit(code)

    @staticmethod
    def _flush() -> None:
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        sys.stderr.flush()
        sys.stdout.flush()

    def disarm(self) -> None:
        """The process is about to exit by itself (tests; normal exit needs no call)."""
        self._done.set()

    def watch(self, crashed: Callable[[], bool]) -> None:
        """Arm (as a crash) as soon as ``crashed()`` turns true: faust's crash path may never return."""

        def poll() -> None:
            while not self._done.is_set() and not self._armed.is_set():
                try:
                    if crashed():
                        self.arm("crash", EXIT_CRASH)
                        return
                except Exception:  # a half-built app: try again
                    pass
                self._done.wait(self._poll_s)

        threading.Thread(target=poll, name="scorer-crash-watch", daemon=True).start()

    def exit_code(self, code: Any) -> int:
        """The process exit code once faust returned ``code`` by itself: a crash is always EXIT_CRASH."""
        if self.reason == "crash":
            return EXIT_CRASH
        if isinstance(code, int):
            return code
        return EXIT_OK if code is None else 1

    def _countdown(self) -> None:
        if self._done.wait(self.timeout_s):
            return
        code = self.code if self.code is not None else EXIT_SHUTDOWN_TIMEOUT
        try:
            event(
                log,
                "shutdown did not finish within the bound; exiting now",
                logging.CRITICAL,
                reason=self.reason,
                shutdown_timeout_s=self.timeout_s,
                exit_code=code,
            )
            self._flush()
        finally:
            self._exit(code)
