"""The stream path of one worker: a micro-batch in, its rows durably written, its events ackable.

Why a module of its own: the order of a batch is the delivery guarantee (docs/scorer.md, "Delivery").
Parse, restore what the batch touches, apply, publish dead letters, then ONE pipelined write: batch N+1
is computed while batch N's transaction runs, writes stay in order, and a batch's events join
``runtime.pending_acks`` only after its write committed; the checkpoint (scorer/checkpoint.py) acks
them once windows and offsets are durable too. A write that fails for good marks the runtime broken:
no later checkpoint, no later batch (crash-only; the restart replays from the last checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.logging import event
from scorer.processing import BatchOutcome, RawRecord

if TYPE_CHECKING:
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer")


class WorkerStopping(Exception):
    """The worker is shutting down: a batch that arrives now is left unacked (replayed at restart)."""


class Ingest:
    """Batches of one worker's telemetry agent; shares the runtime's lock, pools and state."""

    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime
        self.inflight: asyncio.Future[None] | None = None  # the write of the last batch, if running

    def refuse_if_broken(self) -> None:
        broken = self.rt.broken
        if broken is not None:
            raise RuntimeError(
                "a batch write failed earlier "
                f"({type(broken).__name__}: {str(broken)[:300]}); no checkpoint and no batch "
                "after it: the worker stops and its restart replays from the last checkpoint"
            )

    async def handle_batch(self, events: Sequence[Any]) -> None:
        """Process one micro-batch; its events are acked at the next checkpoint, never before."""
        rt = self.rt
        self.refuse_if_broken()
        if not rt.model_ready.is_set():
            event(
                log,
                "waiting for a valid production model before consuming",
                logging.WARNING,
                error=rt.holder.error,
            )
            await rt.model_ready.wait()
        async with rt.lock:
            if rt.closing:
                # The final checkpoint is written and the pools are closed: leave these events
                # unacked; the next owner of the partitions replays them from the committed offsets.
                raise WorkerStopping("batch arrived after the final checkpoint")
            gen = rt.app.consumer_generation_id if rt.app is not None else None
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
            parts = {r.partition for r in records} - rt.restored
            if parts:
                await rt.checkpointer.restore_partitions(sorted(parts))
            proc = rt.processor
            proc.scorer = rt.holder.scorer
            if rt.registers.register is None:  # routing needs the register: its first read first
                first = rt._register_first
                if first is not None and not first.done():
                    await first
                elif rt.registers.due():
                    await rt._in(rt.aux, rt.registers.refresh)
            proc.fleet = rt.routing.scorer()
            t0 = time.perf_counter()
            # Computed while the previous batch's write may still run on the DB thread (pipelining).
            parsed = await rt._in(rt.compute, proc.parse, records)
            await rt.checkpointer.restore_turbines(parsed.turbine_ids)
            out = await rt._in(rt.compute, proc.apply, parsed)
            # Bounded (never stalls the stream); what the topic did not take is written with the batch.
            out.fallback_letters = await rt.dead_letters.publish(out.dead_letters)
            await self.drain()  # writes stay in order; at most one batch waits on the database
            self.inflight = asyncio.ensure_future(self._write(out, live, t0))

    async def flush_rescores(self) -> None:
        """Timer: rescore the turbines whose rescoring coalescing deferred, once the flush is due.

        Without it the last events of a burst would wait for the next batch. Same lock and write
        pipeline as a batch; nothing to ack (no event is consumed here).
        """
        rt = self.rt
        async with rt.lock:
            if rt.closing or not rt.processor.pending:
                return
            self.refuse_if_broken()
            t0 = time.perf_counter()
            rt.processor.scorer = rt.holder.scorer
            rt.processor.fleet = rt.routing.scorer()
            out = await rt._in(rt.compute, rt.processor.flush, datetime.now(UTC))
            if out is None:
                return
            await self.drain()
            self.inflight = asyncio.ensure_future(self._write(out, [], t0))

    async def _write(self, out: BatchOutcome, live: list[Any], t0: float) -> None:
        """Durable write of one batch (retried while the database is unavailable); then its events are
        ackable. A write that fails for good marks the runtime broken: crash-only from here on."""
        rt = self.rt
        duration_ms = (time.perf_counter() - t0) * 1000
        try:
            await rt._retry("stream_batch", rt.sink.write_batch, out, duration_ms)
        except BaseException as exc:
            rt.broken = exc
            raise
        rt.pending_acks.extend(live)
        self.record(out, time.time(), (time.perf_counter() - t0) * 1000)

    async def drain(self) -> None:
        """Wait for the pipelined write (its failure propagates to the caller)."""
        task, self.inflight = self.inflight, None
        if task is not None:
            await task

    def backlog(self, events: Sequence[Any]) -> int:
        """Records already in Kafka after ``events`` on their partitions (0 when unknown)."""
        consumer = getattr(self.rt.app, "consumer", None)
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

    def record(self, out: BatchOutcome, written: float, duration_ms: float) -> None:
        """Metrics and the ``scoring`` log line of one durably written batch."""
        rt = self.rt
        m = rt.metrics
        m.events_consumed.inc(out.events)
        m.events_accepted.inc(out.accepted)
        m.events_duplicate.inc(out.duplicates)
        m.events_late.inc(out.late)
        m.events_replay_skipped.inc(out.skipped_replayed)
        for code, n in out.invalid.items():
            m.events_invalid.labels(code).inc(n)
        m.stream_rescores.labels("rescored").inc(out.rescored)
        m.stream_rescores.labels("deferred").inc(out.deferred)
        if out.events:
            m.batch_size.observe(out.events)
        obs = m.latency.observe
        for ts in out.arrival_ts:
            obs(max(0.0, written - ts))
        lag = m.event_time_lag.observe
        for v in out.event_time_lag_s[:: max(1, len(out.event_time_lag_s) // 200)]:
            lag(v)
        if out.turbines_scored:
            m.scoring_duration.labels("stream_batch").observe(out.scoring_s)
        rt.consumed += out.events
        if out.last_record_ts is not None:
            rt.last_record_ts = out.last_record_ts
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
