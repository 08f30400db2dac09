"""Liveness and readiness of one worker: the ``/readyz`` verdict and the heartbeat row.

Why a module of its own: readiness must tell the truth about every way the worker can stop making
progress (no model, no partitions, Kafka, the database, a stall), and the heartbeat carries the same
verdict to the API; one place computes it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.db import DatabaseUnavailable
from common.logging import event

if TYPE_CHECKING:
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer")


class Liveness:
    """Readiness verdict and heartbeat of one worker's runtime."""

    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime
        self.started_at = datetime.now(UTC)
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        rt = self.rt
        problems = []
        if rt.holder.scorer is None:
            problems.append(f"no valid production model: {rt.holder.error}")
        if not rt.db_ok:
            problems.append(f"database unavailable: {rt.db_error}")
        ready = not problems
        rt.metrics.ready.set(1 if ready else 0)
        return ready, {
            "ready": ready,
            "problems": problems,
            "worker_id": rt.settings.worker_id,
            "model_version": rt.holder.version,
            "partitions": sorted(rt.assigned),
        }

    async def heartbeat(self) -> None:
        rt = self.rt
        now = time.monotonic()
        self._rate.append((now, rt.consumed))
        old = next(((t, c) for t, c in self._rate if now - t <= 65), self._rate[0])
        span = now - old[0]
        per_min = (rt.consumed - old[1]) * 60.0 / span if span > 0 else 0.0
        lag_total = 0
        partitions: dict[str, int] = {}
        consumer = getattr(rt.app, "consumer", None) if rt.app is not None else None
        if consumer is not None:
            try:
                for tp in consumer.assignment():
                    if tp.topic != rt.settings.telemetry_topic:
                        continue
                    high = consumer.highwater(tp)
                    nxt = rt.processor.next_offset.get(tp.partition)
                    if nxt is None:  # nothing processed since assignment: the committed offset
                        nxt = getattr(consumer, "_committed_offset", {}).get(tp)
                    lag = max(0, int(high or 0) - int(nxt or 0)) if high is not None else 0
                    partitions[str(tp.partition)] = lag
                    rt.metrics.lag_messages.labels(str(tp.partition)).set(lag)
                    lag_total += lag
            except Exception as exc:  # lag is best effort; never kill the heartbeat
                event(log, "lag unavailable", logging.DEBUG, error=str(exc))
        lag_s = 0.0
        if lag_total and rt.last_record_ts is not None:
            lag_s = max(0.0, time.time() - rt.last_record_ts)
        rt.metrics.lag_seconds.set(lag_s)
        if not rt.sweeper.running:
            for tier, n in rt.processor.tier_counts().items():
                rt.metrics.turbines_by_tier.labels(tier).set(n)
        ready, _ = self.readiness()
        details = {"partitions": partitions, "ready": ready, "turbines": len(rt.processor.turbines)}
        try:
            await rt._in(
                rt.aux,
                rt.aux_sink.heartbeat,
                self.started_at,
                rt.holder.version,
                per_min,
                lag_total,
                lag_s,
                details,
            )
        except DatabaseUnavailable as exc:
            rt.metrics.db_errors.labels("heartbeat").inc()
            event(log, "heartbeat not written", logging.WARNING, error=str(exc)[:300])
        except Exception as exc:
            rt.metrics.db_errors.labels("heartbeat").inc()
            event(log, "heartbeat failed", logging.WARNING, error=str(exc)[:300])
