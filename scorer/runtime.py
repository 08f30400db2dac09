"""The worker's moving parts wired together: batches, checkpoints, restores, sweeps, heartbeats.

Why one object: the agent, the timers, the rebalance callbacks and the web views all share the same
in-memory state; one ``asyncio.Lock`` makes "process a batch", "checkpoint" and "sweep the owned
windows" mutually exclusive, so a checkpoint always captures a state consistent with its offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from common.contracts import TIERS, SweepCommand
from common.db import DatabaseUnavailable
from common.logging import event
from models.features import FeatureWindow
from scorer.metrics import ScorerMetrics
from scorer.model import ModelHolder
from scorer.processing import BatchOutcome, BatchProcessor, RawRecord, assessment_rows
from scorer.schedule import catch_up_due, catch_up_run_id, previous_slot, schedule_run_id
from scorer.settings import ScorerSettings
from scorer.sink import Sink
from scorer.state import TurbineState

log = logging.getLogger("scorer")
T = TypeVar("T")


class ScorerRuntime:
    def __init__(self, settings: ScorerSettings, holder: ModelHolder) -> None:
        self.settings = settings
        self.holder = holder
        self.metrics = ScorerMetrics()
        self.processor = BatchProcessor(settings, holder.scorer)
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
        self.dlq_topic: Any = None
        self.started_at = datetime.now(UTC)
        self.db_ok = True
        self.db_error: str | None = None
        self.last_record_ts: float | None = None
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self.consumed = 0
        self.sweep_running = False
        self.assignment_done = False
        if holder.scorer is not None:
            self.model_ready.set()
        self._update_model_metrics()

    # ------------------------------------------------------------------ helpers
    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def _retry(
        self, kind: str, fn: Callable[..., T], *args: Any, pool: ThreadPoolExecutor | None = None
    ) -> T:
        """Run a DB call until it succeeds: exponential backoff, the caller (and so the stream) waits."""
        backoff = 0.25
        while True:
            t0 = time.perf_counter()
            try:
                result = await self._in(pool or self.db, fn, *args)
            except Exception as exc:  # DatabaseUnavailable or any psycopg error: never lose the batch
                self.metrics.db_errors.labels(kind).inc()
                self.db_ok = False
                self.db_error = str(exc)
                self.metrics.ready.set(0)
                event(
                    log,
                    "database write failed; retrying",
                    logging.WARNING,
                    kind=kind,
                    error=str(exc)[:500],
                    retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.db_retry_max_backoff_s)
                continue
            self.metrics.db_write_duration.labels(kind).observe(time.perf_counter() - t0)
            if not self.db_ok:
                event(log, "database reachable again", kind=kind)
            self.db_ok = True
            self.db_error = None
            return result

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        problems = []
        if self.holder.scorer is None:
            problems.append(f"no valid production model: {self.holder.error}")
        if not self.db_ok:
            problems.append(f"database unavailable: {self.db_error}")
        ready = not problems
        self.metrics.ready.set(1 if ready else 0)
        return ready, {
            "ready": ready,
            "problems": problems,
            "worker_id": self.settings.worker_id,
            "model_version": self.holder.version,
            "partitions": sorted(self.assigned),
        }

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

    # ------------------------------------------------------------------ stream
    async def handle_batch(self, events: Sequence[Any]) -> None:
        """Process one micro-batch; its events are acked at the next checkpoint, never before."""
        if not self.model_ready.is_set():
            event(
                log,
                "waiting for a valid production model before consuming",
                logging.WARNING,
                error=self.holder.error,
            )
            await self.model_ready.wait()
        async with self.lock:
            gen = self.app.consumer_generation_id if self.app is not None else None
            records: list[RawRecord] = []
            live: list[Any] = []
            for ev in events:
                msg = ev.message
                if gen is not None and msg.generation_id != gen:
                    continue  # fetched before a rebalance: redelivered to the partition's owner
                live.append(ev)
                records.append(RawRecord(msg.partition, msg.offset, msg.timestamp, msg.value, msg.topic))
            if not records:
                return
            parts = {r.partition for r in records} - self.restored
            if parts:
                await self._restore(sorted(parts))
            self.processor.scorer = self.holder.scorer
            t0 = time.perf_counter()
            # Computed while the previous batch's write may still run on the DB thread (pipelining).
            out = await self._in(self.compute, self.processor.process, records)
            await self._publish_dead_letters(out)
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
        """Durable write of one batch (retried until it succeeds); only then are its events ackable."""
        duration_ms = (time.perf_counter() - t0) * 1000
        await self._retry("stream_batch", self.sink.write_batch, out, duration_ms)
        self.pending_acks.extend(live)
        self._record_batch(out, time.time(), (time.perf_counter() - t0) * 1000)

    async def _drain_write(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            await task

    async def _publish_dead_letters(self, out: BatchOutcome) -> None:
        if not out.dead_letters or self.dlq_topic is None:
            return
        backoff = 0.25
        while True:  # the batch's state is already applied: retry, never skip (Kafka down = backpressure)
            try:
                futures = [await self.dlq_topic.send(value=dl) for dl in out.dead_letters]
                await asyncio.gather(*futures)  # delivered (acks=all) before the source records are acked
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                event(
                    log,
                    "dead-letter publish failed; retrying",
                    logging.WARNING,
                    error=str(exc)[:300],
                    retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.db_retry_max_backoff_s)

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
        await self._drain_write()  # the checkpoint must only cover durably written batches
        proc = self.processor
        if not proc.dirty and not self.pending_acks:
            return
        topic = self.settings.telemetry_topic
        group = self.settings.consumer_group
        dirty = list(proc.dirty)

        def serialise() -> list[tuple[Any, ...]]:
            rows = []
            for tid in dirty:
                st = proc.turbines.get(tid)
                if st is None:
                    continue
                rows.append(
                    (
                        group,
                        tid,
                        st.site_id,
                        topic,
                        st.partition,
                        st.window.as_of,
                        st.window.to_bytes(),
                        st.aux_bytes(),
                    )
                )
            return rows

        rows = await self._in(self.compute, serialise)
        offsets = {p: o for p, o in proc.next_offset.items() if p in self.assigned or not self.assigned}
        await self._retry("checkpoint", self.sink.write_checkpoint, topic, rows, offsets)
        self.metrics.checkpoint_windows.inc(len(rows))
        proc.dirty.difference_update(dirty)
        acks, self.pending_acks = self.pending_acks, []
        for ev in acks:
            if self.stream is not None:
                await self.stream.ack(ev)
            else:
                ev.ack()

    async def _restore(self, partitions: Sequence[int]) -> None:
        """Load windows + next offsets of newly owned partitions from the last checkpoint."""
        topic = self.settings.telemetry_topic
        offsets, stored = await self._retry("restore", self.sink.load_partitions, topic, list(partitions))

        def build() -> list[TurbineState]:
            return [TurbineState.restore(w.turbine_id, w.partition, w.state, w.aux) for w in stored]

        states = await self._in(self.compute, build)
        proc = self.processor
        n = 0
        for st in states:
            if st.turbine_id not in proc.turbines:
                proc.turbines[st.turbine_id] = st
                n += 1
        for p in partitions:
            if p in offsets and p not in proc.next_offset:
                proc.next_offset[p] = offsets[p]
            self.restored.add(p)
        event(
            log,
            "partitions restored from checkpoint",
            partitions=list(partitions),
            windows=n,
            offsets={str(k): v for k, v in offsets.items()},
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
        event(log, "partitions assigned", partitions=sorted(parts))

    # ------------------------------------------------------------------ sweeps
    async def handle_command(self, raw: bytes) -> None:
        try:
            cmd = SweepCommand.model_validate_json(raw)
        except Exception as exc:
            event(log, "ignoring invalid command", logging.WARNING, error=str(exc)[:300])
            return
        await self.run_sweep("on_demand", str(cmd.run_id), cmd.requested_at)

    async def run_scheduled_sweep(self) -> None:
        s = self.settings
        hour, minute = s.sweep_hour_minute
        slot = previous_slot(datetime.now(UTC), hour, minute, s.zone)
        await self.run_sweep("schedule", schedule_run_id(slot), slot)

    async def maybe_catch_up(self) -> bool:
        s = self.settings
        last = await self._in(self.aux, self.aux_sink.last_successful_sweep)
        size = await self._in(self.aux, self.aux_sink.fleet_size)
        now = datetime.now(UTC)
        if not catch_up_due(last, now, timedelta(hours=s.sweep_catch_up_after_hours), size):
            return False
        event(log, "sweep missed; catching up", last_success=last.isoformat() if last else None)
        await self.run_sweep("catch_up", catch_up_run_id(last), now)
        return True

    async def run_sweep(self, trigger: str, run_id: str, requested_at: datetime) -> str | None:
        """Score every known turbine once; returns the final status, None if another process owns it."""
        s = self.settings
        if not self.model_ready.is_set():
            await self.refresh_model()
        claimed = await self._retry(
            "sweep_claim",
            self.aux_sink.claim_sweep,
            run_id,
            trigger,
            requested_at,
            s.sweep_stale_after_s,
            pool=self.aux,
        )
        if not claimed:
            event(log, "sweep already claimed; skipping", run_id=run_id, trigger=trigger)
            return None
        t0 = time.perf_counter()
        scorer = self.holder.scorer
        version = None if scorer is None else scorer.bundle.version
        as_of = datetime.now(UTC)  # full precision: two sweeps in one second must not collide
        self.sweep_running = True
        try:
            if scorer is None:
                raise RuntimeError(f"no valid production model: {self.holder.error}")
            stored = await self._retry(
                "sweep_load",
                self.aux_sink.load_all_windows,
                s.telemetry_topic,
                sorted(self.restored),
                pool=self.aux,
            )
            async with self.lock:  # owned windows are consistent while the stream waits (~1 s/day)
                owned = set(self.restored)

                def compute() -> tuple[list[Any], list[Any], dict[str, int]]:
                    items: list[tuple[str, FeatureWindow]] = []
                    meta: dict[str, tuple[str, datetime | None]] = {}
                    for tid, st in self.processor.turbines.items():
                        if st.window.last_event_ts is not None:
                            items.append((tid, st.window))
                            meta[tid] = (st.site_id, st.window.as_of)
                    for w in stored:
                        if w.turbine_id in meta or w.partition in owned:
                            continue
                        win = FeatureWindow.from_bytes(w.state)
                        if win.last_event_ts is None:
                            continue
                        items.append((w.turbine_id, win))
                        meta[w.turbine_id] = (w.site_id, win.as_of)
                    assessments = scorer.score(items, now=as_of)
                    hist_rows, state_rows = [], []
                    counts = dict.fromkeys(TIERS, 0)
                    for a in assessments:
                        site, last = meta[a.turbine_id]
                        h, st_row = assessment_rows(a, "sweep", site, last, as_of, run_id)
                        hist_rows.append(h)
                        state_rows.append(st_row)
                        counts[a.tier] = counts.get(a.tier, 0) + 1
                    return hist_rows, state_rows, counts

                hist_rows, state_rows, counts = await self._in(self.aux, compute)
            score_s = time.perf_counter() - t0
            duration_ms = (time.perf_counter() - t0) * 1000
            await self._retry(
                "sweep_finish",
                self.aux_sink.finish_sweep,
                run_id,
                "succeeded",
                len(hist_rows),
                counts,
                version,
                None,
                duration_ms,
                hist_rows,
                state_rows,
                pool=self.aux,
            )
            total_ms = (time.perf_counter() - t0) * 1000
            self.metrics.sweeps.labels(trigger, "succeeded").inc()
            self.metrics.sweep_duration.observe(total_ms / 1000)
            self.metrics.scoring_duration.labels("sweep").observe(score_s)
            self.metrics.sweep_last_success.set(time.time())
            for tier, n in counts.items():
                self.metrics.turbines_by_tier.labels(tier).set(n)
            event(
                log,
                "scoring",
                operation="sweep",
                trigger=trigger,
                run_id=run_id,
                turbines=len(hist_rows),
                status="ok",
                duration_ms=round(total_ms, 2),
                tier_counts=counts,
                model_version=version,
            )
            return "succeeded"
        except Exception as exc:
            duration_ms = (time.perf_counter() - t0) * 1000
            self.metrics.sweeps.labels(trigger, "failed").inc()
            event(
                log,
                "scoring",
                logging.ERROR,
                operation="sweep",
                trigger=trigger,
                run_id=run_id,
                turbines=0,
                status="error",
                duration_ms=round(duration_ms, 2),
                error=str(exc)[:500],
            )
            try:
                await self._in(
                    self.aux,
                    self.aux_sink.finish_sweep,
                    run_id,
                    "failed",
                    0,
                    {},
                    version,
                    str(exc)[:2000],
                    duration_ms,
                    [],
                    [],
                )
            except Exception as exc2:  # the run stays 'running' and is retried once stale
                event(log, "could not record failed sweep", logging.ERROR, error=str(exc2)[:300])
            return "failed"
        finally:
            self.sweep_running = False

    # ------------------------------------------------------------------ liveness
    async def heartbeat(self) -> None:
        now = time.monotonic()
        self._rate.append((now, self.consumed))
        old = next(((t, c) for t, c in self._rate if now - t <= 65), self._rate[0])
        span = now - old[0]
        per_min = (self.consumed - old[1]) * 60.0 / span if span > 0 else 0.0
        lag_total = 0
        partitions: dict[str, int] = {}
        consumer = getattr(self.app, "consumer", None) if self.app is not None else None
        if consumer is not None:
            try:
                for tp in consumer.assignment():
                    if tp.topic != self.settings.telemetry_topic:
                        continue
                    high = consumer.highwater(tp)
                    nxt = self.processor.next_offset.get(tp.partition)
                    if nxt is None:  # nothing processed since assignment: the committed offset
                        nxt = getattr(consumer, "_committed_offset", {}).get(tp)
                    lag = max(0, int(high or 0) - int(nxt or 0)) if high is not None else 0
                    partitions[str(tp.partition)] = lag
                    self.metrics.lag_messages.labels(str(tp.partition)).set(lag)
                    lag_total += lag
            except Exception as exc:  # lag is best effort; never kill the heartbeat
                event(log, "lag unavailable", logging.DEBUG, error=str(exc))
        lag_s = 0.0
        if lag_total and self.last_record_ts is not None:
            lag_s = max(0.0, time.time() - self.last_record_ts)
        self.metrics.lag_seconds.set(lag_s)
        if not self.sweep_running:
            for tier, n in self.processor.tier_counts().items():
                self.metrics.turbines_by_tier.labels(tier).set(n)
        ready, _ = self.readiness()
        details = {"partitions": partitions, "ready": ready, "turbines": len(self.processor.turbines)}
        try:
            await self._in(
                self.aux,
                self.aux_sink.heartbeat,
                self.started_at,
                self.holder.version,
                per_min,
                lag_total,
                lag_s,
                details,
            )
        except DatabaseUnavailable as exc:
            self.metrics.db_errors.labels("heartbeat").inc()
            event(log, "heartbeat not written", logging.WARNING, error=str(exc)[:300])
        except Exception as exc:
            self.metrics.db_errors.labels("heartbeat").inc()
            event(log, "heartbeat failed", logging.WARNING, error=str(exc)[:300])

    def close(self) -> None:
        for pool in (self.compute, self.db, self.aux):
            pool.shutdown(wait=False, cancel_futures=True)
        self.sink.close()
        self.aux_sink.close()
