"""The worker's moving parts wired together: batches, checkpoints, restores, sweeps, heartbeats.

Why one object: the agent, the timers, the rebalance callbacks and the web views all share the same
in-memory state; one ``asyncio.Lock`` makes "process a batch", "checkpoint" and "sweep the owned
windows" mutually exclusive, so a checkpoint always captures a state consistent with its offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from common.db import DatabaseUnavailable
from common.logging import event
from common.rows import WindowRow
from scorer.dead_letters import DeadLetterPublisher
from scorer.drift import DriftMonitor
from scorer.fleet import FleetRouting, RegisterHolder
from scorer.liveness import Liveness
from scorer.metrics import ScorerMetrics
from scorer.model import ModelHolder
from scorer.processing import BatchOutcome, BatchProcessor, ParsedBatch, RawRecord
from scorer.repairs import RepairHandler, command_name
from scorer.settings import ScorerSettings
from scorer.sink import Sink
from scorer.state import TurbineState
from scorer.sweep import Sweeper

log = logging.getLogger("scorer")
T = TypeVar("T")


class WorkerStopping(Exception):
    """The worker is shutting down: a batch that arrives now is left unacked (replayed at restart)."""


class ScorerRuntime:
    def __init__(self, settings: ScorerSettings, holder: ModelHolder) -> None:
        self.settings = settings
        self.holder = holder
        self.metrics = ScorerMetrics()
        self.processor = BatchProcessor(settings, holder.scorer)
        self.drift = DriftMonitor(settings, self.metrics)  # feature drift (scorer/drift.py)
        self.processor.drift = self.drift
        # Fleet register (PostgreSQL), read off the event loop at partition assignment, then every
        # register_refresh_s; the routing gives each turbine the model set its fitted sensors allow.
        self.registers = RegisterHolder(settings.database_url, settings.register_refresh_s)
        self.routing = FleetRouting(holder, self.registers)
        self._register_first: asyncio.Future[None] | None = None  # first read, started at assignment
        self.sink = Sink(settings.database_url, settings.worker_id, settings.consumer_group)
        self.aux_sink = Sink(settings.database_url, settings.worker_id, settings.consumer_group)
        self.compute = ThreadPoolExecutor(1, thread_name_prefix="scorer-compute")
        self.db = ThreadPoolExecutor(1, thread_name_prefix="scorer-db")
        self.aux = ThreadPoolExecutor(1, thread_name_prefix="scorer-aux")
        self.lock = asyncio.Lock()
        self.model_ready = asyncio.Event()
        self.pending_acks: list[Any] = []
        self._inflight: asyncio.Future[None] | None = None
        self.restored: set[int] = set()
        self.assigned: set[int] = set()
        self.app: Any = None
        self.stream: Any = None
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

    # ------------------------------------------------------------------ stream
    def _refuse_if_broken(self) -> None:
        if self.broken is not None:
            raise RuntimeError(
                "a batch write failed earlier "
                f"({type(self.broken).__name__}: {str(self.broken)[:300]}); no checkpoint and no batch "
                "after it: the worker stops and its restart replays from the last checkpoint"
            )

    async def handle_batch(self, events: Sequence[Any]) -> None:
        """Process one micro-batch; its events are acked at the next checkpoint, never before."""
        self._refuse_if_broken()
        if not self.model_ready.is_set():
            event(
                log,
                "waiting for a valid production model before consuming",
                logging.WARNING,
                error=self.holder.error,
            )
            await self.model_ready.wait()
        async with self.lock:
            if self.closing:
                # The final checkpoint is written and the pools are closed: leave these events
                # unacked; the next owner of the partitions replays them from the committed offsets.
                raise WorkerStopping("batch arrived after the final checkpoint")
            gen = self.app.consumer_generation_id if self.app is not None else None
            records: list[RawRecord] = []
            live: list[Any] = []
            for ev in events:
                msg = ev.message
                if gen is not None and msg.generation_id != gen:
                    continue  # fetched before a rebalance: redelivered to the partition's owner
                live.append(ev)
                records.append(
                    RawRecord(msg.partition, msg.offset, msg.timestamp, msg.value, msg.topic, msg.key)
                )
            if not records:
                return
            parts = {r.partition for r in records} - self.restored
            if parts:
                await self._restore(sorted(parts))
            self.processor.scorer = self.holder.scorer
            if self.registers.register is None:  # routing needs the register: its first read first
                first = self._register_first
                if first is not None and not first.done():
                    await first
                elif self.registers.due():
                    await self._in(self.aux, self.registers.refresh)
            self.processor.fleet = self.routing.scorer()
            t0 = time.perf_counter()
            # Computed while the previous batch's write may still run on the DB thread (pipelining).
            parsed = await self._in(self.compute, self.processor.parse, records)
            await self._restore_turbines(parsed)
            out = await self._in(self.compute, self.processor.apply, parsed)
            # Bounded (never stalls the stream); what the topic did not take is written with the batch.
            out.fallback_letters = await self.dead_letters.publish(out.dead_letters)
            await self._drain_write()  # writes stay in order; at most one batch waits on the database
            self._inflight = asyncio.ensure_future(self._write(out, live, t0))

    def backlog(self, events: Sequence[Any]) -> int:
        """Records already in Kafka after ``events`` on their partitions (0 when unknown)."""
        consumer = getattr(self.app, "consumer", None)
        if consumer is None or not events:
            return 0
        last: dict[Any, int] = {}
        for ev in events:
            msg = ev.message
            last[msg.tp] = msg.offset
        total = 0
        for tp, off in last.items():
            try:
                high = consumer.highwater(tp)
            except Exception:  # no fetch metadata yet
                continue
            if high is not None:
                total += max(0, int(high) - off - 1)
        return total

    async def _write(self, out: BatchOutcome, live: list[Any], t0: float) -> None:
        """Durable write of one batch (retried while the database is unavailable); then its events are
        ackable. A write that fails for good marks the runtime broken: crash-only from here on."""
        duration_ms = (time.perf_counter() - t0) * 1000
        try:
            await self._retry("stream_batch", self.sink.write_batch, out, duration_ms)
        except BaseException as exc:
            self.broken = exc
            raise
        self.pending_acks.extend(live)
        self._record_batch(out, time.time(), (time.perf_counter() - t0) * 1000)

    async def _drain_write(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            await task

    @property
    def dlq_error(self) -> str | None:
        """Why dead letters go to the PostgreSQL fallback now (None: the topic takes them).

        A reported degradation, not a stop: the stream keeps scoring and nothing is lost.
        """
        return self.dead_letters.error

    async def republish_dead_letters(self) -> None:
        """Periodic: re-publish fallback rows once the dead-letter topic works again."""
        await self.dead_letters.republish()

    def _record_batch(self, out: BatchOutcome, written: float, duration_ms: float) -> None:
        m = self.metrics
        m.events_consumed.inc(out.events)
        m.events_accepted.inc(out.accepted)
        m.events_duplicate.inc(out.duplicates)
        m.events_late.inc(out.late)
        m.events_replay_skipped.inc(out.skipped_replayed)
        for code, n in out.invalid.items():
            m.events_invalid.labels(code).inc(n)
        m.batch_size.observe(out.events)
        obs = m.latency.observe
        for ts in out.arrival_ts:
            obs(max(0.0, written - ts))
        lag = m.event_time_lag.observe
        for v in out.event_time_lag_s[:: max(1, len(out.event_time_lag_s) // 200)]:
            lag(v)
        if out.turbines_scored:
            m.scoring_duration.labels("stream_batch").observe(out.scoring_s)
        self.consumed += out.events
        if out.last_record_ts is not None:
            self.last_record_ts = out.last_record_ts
        event(
            log,
            "scoring",
            operation="stream_batch",
            turbines=out.turbines_scored,
            events=out.events,
            accepted=out.accepted,
            invalid=sum(out.invalid.values()),
            duplicates=out.duplicates,
            late=out.late,
            status="ok",
            duration_ms=round(duration_ms, 2),
            scoring_ms=round(out.scoring_s * 1000, 2),
            model_version=out.model_version,
        )

    # ------------------------------------------------------------------ checkpoints
    async def checkpoint(self) -> None:
        async with self.lock:
            await self._checkpoint_locked()

    async def _checkpoint_locked(self) -> None:
        self._refuse_if_broken()
        await self._drain_write()  # the checkpoint must only cover durably written batches
        proc = self.processor
        if not proc.dirty and not self.pending_acks:
            return
        topic = self.settings.telemetry_topic
        group = self.settings.consumer_group
        dirty = list(proc.dirty)

        def serialise() -> list[WindowRow]:
            rows = []
            for tid in dirty:
                st = proc.turbines.get(tid)
                if st is None:
                    continue
                rows.append(
                    WindowRow(
                        consumer_group=group,
                        turbine_id=tid,
                        site_id=st.site_id,
                        topic=topic,
                        partition=st.partition,
                        last_event_time=st.window.as_of,
                        state=st.window.to_bytes(),
                        aux=st.aux_bytes(),
                    )
                )
            return rows

        rows = await self._in(self.compute, serialise)
        offsets = {p: o for p, o in proc.next_offset.items() if p in self.assigned or not self.assigned}
        try:
            await self._retry("checkpoint", self.sink.write_checkpoint, topic, rows, offsets)
        except Exception as exc:  # not unavailability: the next batch raises, the worker stops
            self.broken = exc
            raise
        self.metrics.checkpoint_windows.inc(len(rows))
        proc.dirty.difference_update(dirty)
        acks, self.pending_acks = self.pending_acks, []
        for ev in acks:
            if self.stream is not None:
                await self.stream.ack(ev)
            else:
                ev.ack()

    async def _restore(self, partitions: Sequence[int]) -> None:
        """Next offsets of newly owned partitions, and the windows checkpointed on them.

        Windows of turbines that now arrive on another partition are restored per turbine
        (:meth:`_restore_turbines`); loading the partition's windows too keeps the turbines that sent
        nothing since the start in memory, where the sweep scores them.
        """
        topic = self.settings.telemetry_topic
        offsets, stored, marks = await self._retry(
            "restore", self.sink.load_partitions, topic, list(partitions)
        )

        def build() -> list[TurbineState]:
            return [TurbineState.restore(w.turbine_id, w.partition, w.state, w.aux) for w in stored]

        states = await self._in(self.compute, build)
        proc = self.processor
        n = proc.install(states, marks)
        for p in partitions:
            if p in offsets and p not in proc.next_offset:
                proc.next_offset[p] = offsets[p]
            self.restored.add(p)
        event(
            log,
            "partitions restored from checkpoint",
            partitions=list(partitions),
            windows=n,
            history_marks=len(marks),
            offsets={str(k): v for k, v in offsets.items()},
        )

    async def _restore_turbines(self, parsed: ParsedBatch) -> None:
        """Install the checkpoint of every turbine of the batch not in memory, whatever its partition.

        One query per batch, and only for turbines not seen yet by this worker (after a start, a
        rebalance, a partition-count change, a key change). The newest ``stream`` row of each one in
        ``score_history`` raises its history mark, so a replay after a crash never writes a row the
        history policy forbids.
        """
        missing = self.processor.missing(parsed.turbine_ids)
        if not missing:
            return
        stored, marks = await self._retry("restore", self.sink.load_turbines, missing)

        def build() -> list[TurbineState]:
            return [TurbineState.restore(w.turbine_id, w.partition, w.state, w.aux) for w in stored]

        states = await self._in(self.compute, build)
        n = self.processor.install(states, marks)
        event(
            log,
            "turbines restored from checkpoint",
            turbines=len(missing),
            windows=n,
            history_marks=len(marks),
            moved=sum(1 for st in states if st.partition not in self.restored),
        )

    async def on_revoked(self, revoked: set[Any]) -> None:
        """Rebalance: checkpoint everything so the next owner continues exactly where we stopped."""
        try:
            await self.checkpoint()
        except Exception as exc:
            event(log, "checkpoint on revoke failed", logging.ERROR, error=str(exc))

    async def on_assigned(self, assigned: set[Any]) -> None:
        parts = {tp.partition for tp in assigned if tp.topic == self.settings.telemetry_topic}
        async with self.lock:
            self.assigned = parts
            self.restored &= parts
            self.processor.drop_partitions(parts)
            self.pending_acks = [e for e in self.pending_acks if e.message.partition in parts]
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
        for pool in (self.compute, self.db, self.aux):
            pool.shutdown(wait=False, cancel_futures=True)
        self.sink.close()
        self.aux_sink.close()
