"""The worker's moving parts wired together: one small object the agents, timers and web views use.

Why one object: the agent, the timers, the rebalance callbacks and the web views all share the same
in-memory state; one ``asyncio.Lock`` makes "process a batch", "checkpoint" and "sweep the owned
windows" mutually exclusive, so a checkpoint always captures a state consistent with its offsets.
Each job lives in its own module and works on this object: the stream path in ``scorer/ingest.py``,
checkpoints and restores in ``scorer/checkpoint.py``, sweeps in ``scorer/sweep.py``, readiness and
heartbeats in ``scorer/liveness.py``; the database behind the ``scorer/ports.py`` interface (the real
``scorer.sink.Sink``, or a fake in unit tests). What stays here: the thread pools, the retry rule of
database calls, the model and register refresh, and the rebalance hooks.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import Gauge

from common.db import DatabaseUnavailable
from common.logging import event
from scorer.checkpoint import Checkpointer
from scorer.dead_letters import DeadLetterPublisher
from scorer.drift import DriftMonitor
from scorer.fleet import FleetRouting, RegisterHolder
from scorer.ingest import FetchedBatch, Ingest, OffsetCommitter, PartitionAck, RecordQueue, WorkerStopping
from scorer.liveness import Liveness
from scorer.metrics import ScorerMetrics
from scorer.model import ModelHolder
from scorer.ports import SinkPort
from scorer.processing import BatchProcessor
from scorer.repairs import RepairHandler, command_name
from scorer.settings import ScorerSettings
from scorer.sweep import Sweeper

log = logging.getLogger("scorer")
T = TypeVar("T")

__all__ = ["FetchedBatch", "ScorerRuntime", "WorkerStopping"]


class ScorerRuntime:
    def __init__(
        self,
        settings: ScorerSettings,
        holder: ModelHolder,
        *,
        sink: SinkPort | None = None,
        aux_sink: SinkPort | None = None,
        registers: RegisterHolder | None = None,
    ) -> None:
        """``sink`` (stream, checkpoints), ``aux_sink`` (sweeps, heartbeats, dead letters) and
        ``registers`` default to PostgreSQL at ``settings.database_url``; unit tests pass fakes."""
        self.settings = settings
        self.holder = holder
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)  # scorer/settings.py: GIL hand-off
        self.metrics = ScorerMetrics()
        self.processor = BatchProcessor(settings, holder.scorer)
        self.drift = DriftMonitor(settings, self.metrics)  # feature drift (scorer/drift.py)
        self.processor.drift = self.drift
        # Fleet register (PostgreSQL), read off the event loop at partition assignment, then every
        # register_refresh_s; the routing gives each turbine the model set its fitted sensors allow.
        self.registers = registers or RegisterHolder(settings.database_url, settings.register_refresh_s)
        self.routing = FleetRouting(holder, self.registers)
        self._register_first: asyncio.Future[None] | None = None  # first read, started at assignment
        self.sink: SinkPort = sink or _pg_sink(settings)
        self.aux_sink: SinkPort = aux_sink or _pg_sink(settings)
        # Checkpoints are written on their own connection and thread while batches go on (the fakes
        # of unit tests share one sink).
        self.checkpoint_sink: SinkPort = sink if sink is not None else _pg_sink(settings)
        self.compute = ThreadPoolExecutor(1, thread_name_prefix="scorer-compute")
        self.db = ThreadPoolExecutor(1, thread_name_prefix="scorer-db")
        self.aux = ThreadPoolExecutor(1, thread_name_prefix="scorer-aux")
        self.checkpoint_pool = ThreadPoolExecutor(1, thread_name_prefix="scorer-checkpoint")
        self.lock = asyncio.Lock()
        self.model_ready = asyncio.Event()
        # Next offsets of durably written batches, per partition: acked by the checkpoint that follows.
        self.pending_acks: list[PartitionAck] = []
        # Record batches from faust's fetcher (scorer/batch_consumer.py) to the ingest loop; bounded.
        self.queue = RecordQueue(settings.ingest_queue_max_events)
        self.queue_depth = Gauge(
            "scorer_ingest_queue_events",
            "Telemetry records fetched and queued for the ingest, not yet in a micro-batch",
            registry=self.metrics.registry,
        )
        self.queue_depth.set_function(lambda: self.queue.events)
        # Where checkpointed offsets are acked (faust's consumer; set by scorer/app.py, a fake in tests).
        self.committer: OffsetCommitter | None = None
        self.restored: set[int] = set()
        self.assigned: set[int] = set()
        self.app: Any = None
        self.db_ok = True
        self.db_error: str | None = None
        self.last_record_ts: float | None = None
        self.consumed = 0
        self.assignment_done = False
        self.sweeper = Sweeper(self)
        self.repairs = RepairHandler(self)
        self.dead_letters = DeadLetterPublisher(self)
        # Set when a batch write failed for good: memory is now ahead of the database, so no checkpoint
        # may be written any more (it would move the offsets past rows never written = lost events).
        self.broken: BaseException | None = None
        self.liveness = Liveness(self)
        self.ingest = Ingest(self)
        self.checkpointer = Checkpointer(self)
        self.closing = False
        if holder.scorer is not None:
            self.model_ready.set()
        self._update_model_metrics()

    # ------------------------------------------------------------------ helpers
    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        if self.closing:
            raise WorkerStopping("the worker is stopping; its thread pools are closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except RuntimeError as exc:  # "cannot schedule new futures after shutdown"
            if self.closing:
                raise WorkerStopping("the worker is stopping; its thread pools are closed") from exc
            raise

    async def _retry(
        self, kind: str, fn: Callable[..., T], *args: Any, pool: ThreadPoolExecutor | None = None
    ) -> T:
        """Run a DB call; retry ONLY while the database is unavailable (backoff, the stream waits).

        Any other error (permission denied, a row the database refuses, a bug) is not retried: the same
        call would fail again and the stream would stall silently. It is logged CRITICAL with its class
        and the table (``sink.WriteRejected``), and propagates: the worker ends and its supervisor
        restarts it from the last checkpoint.
        """
        backoff = 0.25
        while True:
            t0 = time.perf_counter()
            try:
                result = await self._in(pool or self.db, fn, *args)
            except DatabaseUnavailable as exc:  # never lose the batch: wait for the database
                self.metrics.db_errors.labels(kind).inc()
                self.db_ok = False
                self.db_error = str(exc)
                self.metrics.ready.set(0)
                event(
                    log,
                    "database unavailable; retrying",
                    logging.WARNING,
                    kind=kind,
                    error=str(exc)[:500],
                    retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.db_retry_max_backoff_s)
                continue
            except Exception as exc:
                self.metrics.db_errors.labels(kind).inc()
                self.db_error = f"{type(exc).__name__}: {exc}"[:500]
                event(
                    log,
                    "database call failed; not retried, the worker stops",
                    logging.CRITICAL,
                    kind=kind,
                    table=getattr(exc, "table", None),
                    exc_type=getattr(exc, "error_class", type(exc).__name__),
                    error=str(exc)[:500],
                )
                raise
            self.metrics.db_write_duration.labels(kind).observe(time.perf_counter() - t0)
            if not self.db_ok:
                event(log, "database reachable again", kind=kind)
            self.db_ok = True
            self.db_error = None
            return result

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self.liveness.readiness()

    def _update_model_metrics(self) -> None:
        self.metrics.model_loaded.set(1 if self.holder.scorer is not None else 0)
        if self.holder.version:
            self.metrics.model_info.info({"version": self.holder.version})

    async def refresh_model(self) -> None:
        changed = await self._in(self.aux, self.holder.refresh)
        if changed or self.holder.scorer is not None:
            self.processor.scorer = self.holder.scorer
            self.model_ready.set()
        self._update_model_metrics()
        await self.refresh_register()

    async def refresh_register(self) -> None:
        """Re-read the fleet register when due (blocking read in the aux executor, never on the loop)."""
        if self.registers.due():
            try:
                await self._in(self.aux, self.registers.refresh)
            except WorkerStopping:  # stopping: the register no longer matters
                return

    # ------------------------------------------------------------------ stream (scorer/ingest.py)
    async def handle_batch(self, batches: Sequence[FetchedBatch]) -> None:
        """Process one micro-batch; its offsets are acked at the next checkpoint, never before."""
        await self.ingest.handle_batch(batches)

    async def run_ingest(self) -> None:
        """The telemetry ingest loop (scorer/ingest.py) over the fetched-record queue."""
        await self.ingest.run(self.queue)

    async def flush_rescores(self) -> None:
        """Timer: rescore turbines left pending by rescore coalescing once the flush is due."""
        await self.ingest.flush_rescores()

    @property
    def _inflight(self) -> asyncio.Future[None] | None:
        """The pipelined batch write still running, if any (read by scorer/liveness.py)."""
        return self.ingest.inflight

    @property
    def dlq_error(self) -> str | None:
        """Why dead letters go to the PostgreSQL fallback now (None: the topic takes them).

        A reported degradation, not a stop: the stream keeps scoring and nothing is lost.
        """
        return self.dead_letters.error

    async def republish_dead_letters(self) -> None:
        """Periodic: re-publish fallback rows once the dead-letter topic works again."""
        await self.dead_letters.republish()

    # ------------------------------------------------------------------ checkpoints (scorer/checkpoint.py)
    async def checkpoint(self) -> None:
        """Snapshot under the lock, written while the stream goes on; once the app is stopping (the
        final checkpoint) the stream waits for the commit, so no batch runs after what it covers."""
        stopping = bool(getattr(self.app, "should_stop", False)) if self.app is not None else False
        await self.checkpointer.checkpoint(hold_lock=stopping)

    async def on_revoked(self, revoked: set[Any]) -> None:
        """Rebalance: checkpoint everything so the next owner continues exactly where we stopped.

        Records still queued were fetched by the ending generation: dropped (fetched again from the
        committed offsets by whoever owns their partitions next)."""
        dropped = self.queue.clear()
        if dropped:
            event(log, "queued records dropped at rebalance", records=dropped)
        try:
            await self.checkpointer.checkpoint(hold_lock=True)
        except Exception as exc:
            event(log, "checkpoint on revoke failed", logging.ERROR, error=str(exc))

    async def on_assigned(self, assigned: set[Any]) -> None:
        parts = {tp.partition for tp in assigned if tp.topic == self.settings.telemetry_topic}
        async with self.lock:
            self.assigned = parts
            self.restored &= parts
            self.processor.drop_partitions(parts)
            self.pending_acks = [a for a in self.pending_acks if a.partition in parts]
            self.assignment_done = True
        if self.registers.register is None and self._register_first is None:
            # Read the register now (off the loop), so that the first batch need not wait for it.
            self._register_first = asyncio.ensure_future(self.refresh_register())
        event(log, "partitions assigned", partitions=sorted(parts))

    # ------------------------------------------------------------------ sweeps (scorer/sweep.py)
    async def handle_command(self, raw: bytes) -> None:
        if command_name(raw) == "repair":  # scorer/repairs.py: forget a repaired turbine's past
            await self.repairs.handle_raw(raw)
            return
        await self.sweeper.handle_command(raw)

    async def run_scheduled_sweep(self) -> None:
        await self.sweeper.run_scheduled_sweep()

    async def maybe_catch_up(self) -> bool:
        return await self.sweeper.maybe_catch_up()

    async def run_sweep(self, trigger: str, run_id: str, requested_at: datetime) -> str | None:
        return await self.sweeper.run_sweep(trigger, run_id, requested_at)

    # ------------------------------------------------------------------ drift (scorer/drift.py)
    async def run_drift(self) -> None:
        """Feature drift of this worker's sampled rows (aux thread), gauges and the feature_drift row."""
        await self.drift.run(self)

    # ------------------------------------------------------------------ liveness (scorer/liveness.py)
    async def heartbeat(self) -> None:
        await self.liveness.heartbeat()

    def close(self) -> None:
        self.closing = True
        for pool in (self.compute, self.db, self.aux, self.checkpoint_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        self.sink.close()
        self.aux_sink.close()
        if self.checkpoint_sink is not self.sink:
            self.checkpoint_sink.close()


def _pg_sink(settings: ScorerSettings) -> SinkPort:
    from scorer.sink import Sink

    return Sink(settings.database_url, settings.worker_id, settings.consumer_group)
