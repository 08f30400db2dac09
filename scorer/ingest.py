"""The stream path of one worker: record batches in, micro-batches cut, rows durably written, offsets ackable.

Why a module of its own: the order of a batch is the delivery guarantee (docs/scorer.md, "Delivery").
Faust's fetcher hands whole record batches to ``scorer/batch_consumer.py``, which queues them here as
:class:`FetchedBatch` (no faust message per record). :meth:`Ingest.run` cuts micro-batches from that
queue (a backlog fills them up to ``batch_max_size``, live traffic goes every ``batch_within_s``) and
drops what an older consumer generation fetched. Per micro-batch: parse, restore what it touches,
apply, publish dead letters, then ONE pipelined write: batch N+1 is computed while batch N's
transaction runs, writes stay in order, and a batch's next offsets join ``runtime.pending_acks`` only
after its write committed; the checkpoint (scorer/checkpoint.py) acks them once windows and offsets are
durable too. A write that fails for good marks the runtime broken: no later checkpoint, no later batch
(crash-only; the restart replays from the last checkpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Histogram

from common.logging import event
from scorer.processing import BatchOutcome, BatchProcessor, ParsedBatch, RawRecord

if TYPE_CHECKING:
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer")

#: Stages of a micro-batch, in order (``scorer_batch_stage_seconds``; docs/scorer.md, "Latency"):
#: fetch = the oldest record's Kafka timestamp -> handed to the ingest queue; queue -> taken by the
#: batch cut; cut -> the cut closed (``batch_within_s``); lock_wait -> the runtime lock held; parse,
#: restore, apply (windows + rescoring, on the compute thread), dead_letters; write_wait -> the
#: previous batch's write done (pipelining: at most one write in flight); write -> this batch durably
#: written. Their sum is the oldest record's event-to-score latency.
STAGES = (
    "fetch",
    "queue",
    "cut",
    "lock_wait",
    "parse",
    "restore",
    "apply",
    "dead_letters",
    "write_wait",
    "write",
)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The event loop's lag probe: a task sleeping this long measures how late it wakes (a thread holding
#: the GIL, a long callback on the loop).
LOOP_PROBE_S = 0.05
#: Weight of the newest batch in the writer-idle cut's smoothed compute and write times.
WRITER_LEAD_SMOOTHING = 0.3


class WorkerStopping(Exception):
    """The worker is shutting down: a batch that arrives now is left unacked (replayed at restart)."""


@dataclass(frozen=True, slots=True)
class FetchedBatch:
    """Records of ONE partition of the telemetry topic, in offset order, as one fetch returned them.

    ``generation`` is the consumer generation when they were fetched: after a rebalance they belong to
    whoever owns the partition now, who fetches them again from the committed offset. ``highwater`` is
    the partition's end offset the fetch reported (None: unknown), so the ingest knows its backlog.
    """

    generation: int | None
    records: list[RawRecord]
    highwater: int | None = None
    fetched: float | None = None  # wall time (epoch s) the consumer handed it over (stage metrics)


@dataclass(frozen=True, slots=True)
class PartitionAck:
    """A durably written batch's next offset on one partition (acked at the next checkpoint)."""

    partition: int
    next_offset: int


class OffsetCommitter(Protocol):
    """Where checkpointed offsets go: faust's consumer (scorer/batch_consumer.py), or a fake in tests."""

    def ack_offsets(self, topic: str, offsets: Mapping[int, int]) -> None: ...


class RecordQueue:
    """FIFO of fetched batches between faust's fetcher and :meth:`Ingest.run`, bounded in events.

    One producer (the consumer's drain loop) and one consumer (the ingest loop). ``put`` waits while
    ``max_events`` are queued (backpressure reaches the fetcher, so Kafka keeps the rest); a single
    batch larger than the bound is still taken when the queue is empty.
    """

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.events = 0
        self._items: deque[FetchedBatch] = deque()
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()

    def __len__(self) -> int:
        return len(self._items)

    def has_room(self) -> bool:
        return self.events < self.max_events or not self._items

    def put_nowait(self, batch: FetchedBatch) -> None:
        self._items.append(batch)
        self.events += len(batch.records)
        self._not_empty.set()
        if not self.has_room():
            self._not_full.clear()

    async def put(self, batch: FetchedBatch) -> None:
        """Wait for room, then enqueue (cancel-safe: nothing is enqueued when cancelled)."""
        while not self.has_room():
            self._not_full.clear()
            await self._not_full.wait()
        self.put_nowait(batch)

    def put_back(self, batch: FetchedBatch) -> None:
        """Return the unused tail of a taken batch to the head of the queue (it stays first)."""
        self._items.appendleft(batch)
        self.events += len(batch.records)
        self._not_empty.set()

    def get_nowait(self) -> FetchedBatch | None:
        if not self._items:
            return None
        batch = self._items.popleft()
        self.events -= len(batch.records)
        if not self._items:
            self._not_empty.clear()
        if self.has_room():
            self._not_full.set()
        return batch

    async def get(self, timeout: float | None = None) -> FetchedBatch | None:
        """The next batch; None when ``timeout`` (seconds) passed first."""
        while not self._items:
            if timeout is None:
                await self._not_empty.wait()
                continue
            if timeout <= 0:
                return None
            try:
                await asyncio.wait_for(self._not_empty.wait(), timeout)
            except TimeoutError:
                return None
            timeout = 0  # woken: take what is there, never wait twice
        return self.get_nowait()

    def clear(self) -> int:
        """Drop everything queued (a rebalance: it is fetched again by the partitions' owners)."""
        n = self.events
        self._items.clear()
        self.events = 0
        self._not_empty.clear()
        self._not_full.set()
        return n


class Ingest:
    """The telemetry ingest of one worker; shares the runtime's lock, pools and state."""

    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime
        self.inflight: asyncio.Future[None] | None = None  # the write of the last batch, if running
        self._taken: float | None = None  # wall time the batch cut took its first fetched batch
        self._cut: float | None = None  # wall time the batch cut closed
        # The writer-idle cut's estimates (smoothed, seconds): a batch's compute (lock taken -> its write
        # started) and a write; and the loop time the write in flight started (None: none yet).
        self._compute_s: float | None = None
        self._write_s: float | None = None
        self._write_started: float | None = None
        r = runtime.metrics.registry
        self.stage = Histogram(
            "scorer_batch_stage_seconds",
            "Wall time of each stage of a micro-batch, for its oldest record (scorer/ingest.py STAGES)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self._stage = {name: self.stage.labels(name) for name in (*STAGES, "flush")}
        self.loop_lag = Histogram(
            "scorer_event_loop_lag_seconds",
            f"How late a {LOOP_PROBE_S * 1000:.0f} ms sleep on the worker's event loop wakes up",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "scorer_gc_pause_seconds",
            "Cyclic garbage collections of the worker process, by generation",
            ["generation"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self._gc_start = 0.0

    def refuse_if_broken(self) -> None:
        broken = self.rt.broken
        if broken is not None:
            raise RuntimeError(
                "a batch write failed earlier "
                f"({type(broken).__name__}: {str(broken)[:300]}); no checkpoint and no batch "
                "after it: the worker stops and its restart replays from the last checkpoint"
            )

    def _current_generation(self) -> int | None:
        app = self.rt.app
        return None if app is None else getattr(app, "consumer_generation_id", None)

    def _is_stale(self, batch: FetchedBatch, gen: int | None) -> bool:
        return gen is not None and batch.generation is not None and batch.generation != gen

    async def run(self, queue: RecordQueue) -> None:
        """Cut micro-batches from the queue and process them, until the worker stops.

        A batch that raises ends this loop with the exception (the caller crashes the app: crash-only);
        :class:`WorkerStopping` (a clean stop raced the batch) ends it quietly, the batch left unacked.
        """
        young = self.rt.settings.gc_young_threshold
        if young > 0:  # fewer cyclic collections (each one stops every thread: the GIL is held)
            gc.set_threshold(young, *gc.get_threshold()[1:])
        probe = asyncio.ensure_future(self._probe_loop())
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                batches = await self.collect(queue)
                if not batches:
                    continue
                try:
                    await self.handle_batch(batches)
                    # Not held while the next batch is awaited: a batch's records (up to
                    # ``batch_max_size`` values) would otherwise stay resident while the worker idles.
                    del batches
                except WorkerStopping as stop:
                    # Nothing of it was applied or acked; it is replayed from the committed offsets.
                    event(
                        log,
                        "batch left for the next start",
                        logging.INFO,
                        reason=str(stop),
                        events=sum(len(b.records) for b in batches),
                    )
                    return
        finally:
            probe.cancel()
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self._on_gc)

    async def _probe_loop(self) -> None:
        """The event loop's lag (``scorer_event_loop_lag_seconds``) while the ingest runs."""
        loop = asyncio.get_running_loop()
        observe = self.loop_lag.observe
        while True:
            t0 = loop.time()
            await asyncio.sleep(LOOP_PROBE_S)
            observe(max(0.0, loop.time() - t0 - LOOP_PROBE_S))

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """gc callback (any thread, GIL held): the duration of each cyclic collection."""
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pause.labels(str(info.get("generation", "?"))).observe(
                time.perf_counter() - self._gc_start
            )

    async def collect(self, queue: RecordQueue) -> list[FetchedBatch]:
        """The next micro-batch: up to ``batch_max_size`` events, or what came within ``batch_within_s``
        of its first record's timestamp (what is queued already is always taken). Behind (a backlog, a
        replay: Kafka holds at least half a batch more), it keeps collecting up to ``batch_max_size`` so
        each touched turbine is rescored once per many events. Batches of an older consumer generation
        are dropped (fetched before a rebalance).

        Live (no backlog) and ``batch_cut_when_writer_idle``: the cut also closes as soon as nothing more
        is queued and no batch write is in flight, or the write in flight is expected to end within this
        batch's expected compute (:meth:`writer_lead`), so records never wait for the cut while the
        database waits for work (the batch period follows the write: short when it is fast, up to
        ``batch_within_s`` when it is slow; a write runs per batch either way, its rows one per event)."""
        s = self.rt.settings
        limit, within = s.batch_max_size, s.batch_within_s
        early = s.batch_cut_when_writer_idle
        loop = asyncio.get_running_loop()
        first = await queue.get()
        self._taken = time.time()
        if first is None or self._is_stale(first, self._current_generation()):
            return []
        first = self._fit(queue, first, limit)
        pending = [first]
        n = len(first.records)
        # ``within`` counts from the first record's arrival (its Kafka timestamp), not from now: records
        # that queued while the previous batch was computed have waited already (live latency).
        ts = first.records[0].timestamp if first.records else None
        waited = min(within, max(0.0, time.time() - ts)) if ts is not None else 0.0
        deadline = loop.time() + within - waited
        while n < limit:
            nxt = queue.get_nowait()
            if nxt is None:
                live = early and self.backlog(pending) < limit // 2
                lead = self.writer_lead(loop.time()) if live else math.inf
                if lead <= 0:
                    break  # the database is free (or will be once this batch is computed): it goes now
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if self.backlog(pending) >= limit // 2:
                        deadline = loop.time() + within
                        continue
                    break
                nxt = await self._next(queue, min(remaining, lead), live)
                if nxt is None:
                    continue  # a deadline or the lead passed, or the write ended: decided above
            if self._is_stale(nxt, self._current_generation()):
                continue
            nxt = self._fit(queue, nxt, limit - n)
            pending.append(nxt)
            n += len(nxt.records)
        self._cut = time.time()
        return pending

    def _writer_idle(self) -> bool:
        task = self.inflight
        return task is None or task.done()

    def writer_lead(self, now: float) -> float:
        """Seconds the live cut may still wait (``batch_cut_when_writer_idle``): 0 when no write is in
        flight, else until the write in flight is expected to end less this batch's expected compute,
        so that the batch is computed while the write ends and its own write starts at once (a batch
        computed after the write ended leaves the database idle meanwhile). Estimates are smoothed over
        past batches; without them, until the write ends (``math.inf``: the write's end wakes the cut)."""
        if self._writer_idle():
            return 0.0
        if self._write_s is None or self._compute_s is None or self._write_started is None:
            return math.inf
        return self._write_started + self._write_s - self._compute_s - now

    @staticmethod
    def _smooth(prev: float | None, value: float) -> float:
        return value if prev is None else prev + WRITER_LEAD_SMOOTHING * (value - prev)

    async def _next(self, queue: RecordQueue, timeout: float, wake_on_write: bool) -> FetchedBatch | None:
        """The next fetched batch within ``timeout`` s; None at the timeout or, with ``wake_on_write``,
        when the batch write in flight ends first (its outcome is left to :meth:`drain`)."""
        task = self.inflight
        if not wake_on_write or task is None or task.done():
            return await queue.get(timeout)
        getter = asyncio.ensure_future(queue.get(timeout))
        await asyncio.wait((getter, task), return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()  # RecordQueue.get is cancel-safe: nothing is taken
            with contextlib.suppress(asyncio.CancelledError):
                await getter
        if getter.cancelled():
            return None
        return getter.result()

    @staticmethod
    def _fit(queue: RecordQueue, batch: FetchedBatch, room: int) -> FetchedBatch:
        """At most ``room`` records of ``batch``; the tail goes back to the head of the queue."""
        if len(batch.records) <= room:
            return batch
        queue.put_back(FetchedBatch(batch.generation, batch.records[room:], batch.highwater, batch.fetched))
        return FetchedBatch(batch.generation, batch.records[:room], batch.highwater, batch.fetched)

    async def handle_batch(self, batches: Sequence[FetchedBatch]) -> None:
        """Process one micro-batch; its offsets are acked at the next checkpoint, never before."""
        rt = self.rt
        self.refuse_if_broken()
        taken, cut = self._taken, self._cut  # when collect() cut this batch (None: handed in directly)
        self._taken = self._cut = None
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
                # The final checkpoint is written and the pools are closed: leave these records
                # unacked; the next owner of the partitions replays them from the committed offsets.
                raise WorkerStopping("batch arrived after the final checkpoint")
            spans = _Spans(batches, taken, cut)
            spans.lap("lock_wait")
            c0 = time.perf_counter()
            gen = self._current_generation()
            records: list[RawRecord] = []
            tails: dict[int, int] = {}
            for b in batches:
                if self._is_stale(b, gen) or not b.records:
                    continue  # fetched before a rebalance: redelivered to the partition's owner
                records.extend(b.records)
                last = b.records[-1]
                if last.offset + 1 > tails.get(last.partition, -1):
                    tails[last.partition] = last.offset + 1
            if not records:
                return
            acks = [PartitionAck(p, o) for p, o in tails.items()]
            parts = set(tails) - rt.restored
            if parts:
                await rt.checkpointer.restore_partitions(sorted(parts))
                # The restored windows and bookkeeping live as long as the worker: out of the cyclic
                # gc's generations, so its full collections stop traversing them at every batch.
                gc.freeze()
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
            spans.lap("restore")  # a newly assigned partition's windows (above)
            # One hand-off to the compute thread when every touched turbine is in memory (each hop back
            # to a busy event loop costs its lag); else the missing ones are restored between the two.
            parsed, parsed_at, out = await rt._in(rt.compute, _parse_then_apply, proc, records)
            spans.lap("parse", parsed_at)
            if out is None:
                await rt.checkpointer.restore_turbines(parsed.turbine_ids)
                spans.lap("restore")
                out = await rt._in(rt.compute, proc.apply, parsed)
            spans.lap("apply")
            # Bounded (never stalls the stream); what the topic did not take is written with the batch.
            out.fallback_letters = await rt.dead_letters.publish(out.dead_letters)
            spans.lap("dead_letters")
            self._compute_s = self._smooth(self._compute_s, time.perf_counter() - c0)
            await self.drain()  # writes stay in order; at most one batch waits on the database
            spans.lap("write_wait")
            self.inflight = asyncio.ensure_future(self._write(out, acks, t0, spans))

    async def flush_rescores(self) -> None:
        """Timer: flush overdue deferred rescorings in chunks of ``rescore_flush_max_per_batch``,
        oldest first, the lock released between chunks (``BatchProcessor.flush`` decides each chunk:
        late ones, the chunk spacing, or everything overdue when no batch runs).

        Without it the last events of a burst would wait for the next batch; chunked, so a batch waits
        for one chunk at most, never for the whole pending set (scorer/coalescing.py). At most
        ``pending / chunk + 1`` chunks per run (the drain ends). Same lock and write pipeline as a
        batch; nothing to ack (no event is consumed here).
        """
        rt = self.rt
        chunk = rt.settings.rescore_flush_max_per_batch
        rounds = len(rt.processor.pending) // chunk + 1  # bounds the drain even if the clock jumps
        for _ in range(rounds):
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
                self._stage["flush"].observe(time.perf_counter() - t0)  # the lock held by this chunk
                self.inflight = asyncio.ensure_future(self._write(out, [], t0))
            await asyncio.sleep(0)  # a batch waiting for the lock goes before the next chunk

    async def _write(
        self, out: BatchOutcome, acks: list[PartitionAck], t0: float, spans: _Spans | None = None
    ) -> None:
        """Durable write of one batch (retried while the database is unavailable); then its offsets are
        ackable. A write that fails for good marks the runtime broken: crash-only from here on."""
        rt = self.rt
        duration_ms = (time.perf_counter() - t0) * 1000
        self._write_started = started = asyncio.get_running_loop().time()
        try:
            await rt._retry("stream_batch", rt.sink.write_batch, out, duration_ms)
        except BaseException as exc:
            rt.broken = exc
            raise
        self._write_s = self._smooth(self._write_s, asyncio.get_running_loop().time() - started)
        rt.pending_acks.extend(acks)
        written = time.time()
        if spans is not None:
            spans.lap("write", written)
        self.record(out, written, (time.perf_counter() - t0) * 1000, spans)

    async def drain(self) -> None:
        """Wait for the pipelined write (its failure propagates to the caller)."""
        task, self.inflight = self.inflight, None
        if task is not None:
            await task

    @staticmethod
    def backlog(batches: Sequence[FetchedBatch]) -> int:
        """Records already in Kafka after ``batches`` on their partitions, as of their fetch (0 when
        unknown): the newest batch of each partition tells its end offset then."""
        newest: dict[int, FetchedBatch] = {}
        for b in batches:
            if b.records:
                newest[b.records[-1].partition] = b
        total = 0
        for b in newest.values():
            if b.highwater is not None:
                total += max(0, b.highwater - b.records[-1].offset - 1)
        return total

    def record(
        self, out: BatchOutcome, written: float, duration_ms: float, spans: _Spans | None = None
    ) -> None:
        """Metrics and the ``scoring`` log line of one durably written batch (with its stages when
        known: ``spans_ms``, and ``oldest_ms`` the event-to-score latency of its oldest record)."""
        rt = self.rt
        m = rt.metrics
        stages: dict[str, float] | None = None
        if spans is not None:
            stages = spans.durations()
            for name, seconds in stages.items():
                self._stage[name].observe(seconds)
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
        extra: dict[str, Any] = {}
        if stages is not None:
            extra["spans_ms"] = {k: round(v * 1000, 1) for k, v in stages.items()}
            extra["oldest_ms"] = round(sum(stages.values()) * 1000, 1)
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
            **extra,
        )


def _parse_then_apply(
    proc: BatchProcessor, records: list[RawRecord]
) -> tuple[ParsedBatch, float, BatchOutcome | None]:
    """Compute thread: parse, then apply unless a touched turbine is not in memory (its checkpoint is
    restored first: the outcome is None). Also returns the wall time the parse ended (its stage)."""
    parsed = proc.parse(records)
    parsed_at = time.time()
    if proc.missing(parsed.turbine_ids):
        return parsed, parsed_at, None
    return parsed, parsed_at, proc.apply(parsed)


class _Spans:
    """Wall-clock stages of one micro-batch for its oldest record (``STAGES``): the times the ingest
    knew before the batch began (fetched, taken, cut), then one :meth:`lap` per stage."""

    __slots__ = ("_d", "_prev")

    def __init__(self, batches: Sequence[FetchedBatch], taken: float | None, cut: float | None) -> None:
        self._d: dict[str, float] = {}
        now = time.time()
        first = next((b for b in batches if b.records), None)
        origin = None if first is None else first.records[0].timestamp
        fetched = None if first is None else first.fetched
        prev, known = origin, None
        for name, at in (("fetch", fetched), ("queue", taken), ("cut", cut)):
            if at is None:
                continue
            if prev is not None:
                self._d[name] = max(0.0, at - prev)
            prev = known = at
        # The first lap starts at the last time the ingest knew; a batch handed in directly (no fetch,
        # take or cut time) starts now: its record timestamps say nothing about the lock wait.
        self._prev = now if known is None else known

    def lap(self, stage: str, now: float | None = None) -> None:
        """``stage`` ended now: the time since the previous lap is added to it."""
        now = time.time() if now is None else now
        self._d[stage] = self._d.get(stage, 0.0) + max(0.0, now - self._prev)
        self._prev = now

    def durations(self) -> dict[str, float]:
        return dict(self._d)
