"""Faust's Kafka consumer with a record-batch drain: telemetry goes to the ingest queue a fetch at a time.

Why: faust's own drain loop (``Consumer._drain_messages``, run by its Fetcher service) builds a message
per record and awaits ``wait_first(callback(message), suspend_flow.wait())`` for each (four tasks per
record), then the Conductor turns it into an event for a stream; the scorer's agent then acked each one.
That path tops out near 5k records/s on this machine (bench/bench_faust_paths.py). Here the same loop
takes the fetched record batches whole (``_wait_next_records``: faust's flow control and active
partitions kept) and:

- records of the telemetry topic go, one :class:`scorer.ingest.FetchedBatch` per partition (plain
  ``RawRecord`` objects, stamped with the consumer generation), into the runtime's bounded queue; the
  drain waits while it is full, and drops the batch if a rebalance starts meanwhile (faust seeks the
  partitions back to their committed offsets when it resumes);
- records of any other topic (the commands topic) go through faust's per-message callback exactly as
  faust's loop does (message, read offset, gap bookkeeping), so their agent works unchanged.

Commits stay faust's: the checkpoint calls :meth:`BatchConsumer.ack_offsets` with the next offset of
every partition it made durable, and faust's commit handler commits it (its committed offsets, lag
sensors and "Discarded commit for revoked partitions" rule included).

Installed per app (:func:`install`): the app's transport is a :class:`BatchTransport` whose ``Consumer``
is :class:`BatchConsumer`; faust's aiokafka driver module is not modified.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from time import monotonic, time
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from common.logging import event
from scorer.ingest import FetchedBatch, RecordQueue
from scorer.processing import RawRecord

log = logging.getLogger("scorer.consumer")

__all__ = ["BatchConsumer", "BatchTransport", "install"]


class BatchConsumer(driver.Consumer):
    """faust's aiokafka consumer; only the drain loop and the commit source of the telemetry topic differ."""

    transport: BatchTransport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Next offset to commit per telemetry partition, set by the checkpoint (ack_offsets).
        self._checkpointed: dict[TP, int] = {}

    # ------------------------------------------------------------------ subscription
    async def on_start(self) -> None:
        # Subscribe the telemetry topic like an agent's stream would (the Conductor subscribes every
        # topic it holds); the consumer starts before the agents and the Conductor.
        self.app.topics.add(self.transport.telemetry_channel)
        await super().on_start()

    # ------------------------------------------------------------------ acks (called by the checkpoint)
    def ack_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        """Mark ``offsets`` (partition -> next offset, durably checkpointed) for faust's next commit.

        Only partitions assigned now; an offset never moves back. Faust's commit handler (every
        ``broker_commit_interval``) and its final commit at stop pick them up through :meth:`_new_offset`.
        """
        assignment = self.assignment()
        for partition, nxt in offsets.items():
            tp = TP(topic, partition)
            if tp not in assignment:
                continue
            if nxt > self._checkpointed.get(tp, -1):
                self._checkpointed[tp] = nxt
            self._acked.setdefault(tp, [])  # listed by _filter_tps_with_pending_acks: the commit visits it

    def _new_offset(self, tp: TP) -> int | None:
        nxt = self._checkpointed.pop(tp, None)
        if nxt is not None:
            return nxt
        return super()._new_offset(tp)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._checkpointed.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    # ------------------------------------------------------------------ the drain loop
    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised end to end
        """faust's Fetcher runs this until it or the consumer stops (same contract as faust's loop)."""
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        telemetry = self.transport.telemetry_channel.get_topic_name()
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                # faust's getmany reads the generation after the fetch returned: the same here
                generation = self.app.consumer_generation_id
                await self.sleep(0)
                if not records or self.should_stop:
                    unset_flag(CONSUMER_FETCHING)
                    continue
                if not self.flow_active:
                    # As faust's getmany: records fetched while the flow is stopped are not delivered;
                    # the positions go back to the committed offsets.
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    unset_flag(CONSUMER_FETCHING)
                    continue
                for tp, recs in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        break  # a rebalance started: the rest is fetched again after it
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    highwater = self.highwater(tp)
                    self.app.monitor.track_tp_end_offset(tp, highwater)
                    if tp.topic == telemetry:
                        await self._hand_over(tp, recs, generation, highwater)
                    else:
                        await self._deliver(tp, recs)
                # Not held while the next fetch is awaited (a fetch's records would otherwise stay
                # resident while the worker idles: its values are the ingest queue's to keep).
                records, recs = {}, []
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, tp: TP, recs: list[Any], generation: int, highwater: int | None) -> None:
        """One partition's fetched telemetry records into the ingest queue (read offset advanced after)."""
        r_offset = self._read_offset[tp]
        if r_offset is not None and recs[0].offset < r_offset:
            # faust's rule: a record below the read offset (before a seek back) is dropped
            recs = [r for r in recs if r.offset >= r_offset]
            if not recs:
                return
        partition = tp.partition
        topic = tp.topic
        batch = FetchedBatch(
            generation,
            [
                RawRecord(
                    partition,
                    r.offset,
                    None if r.timestamp is None else r.timestamp / 1000.0,
                    r.value,
                    topic,
                    r.key,
                )
                for r in recs
            ],
            highwater,
            time(),
        )
        queue = self.transport.record_queue
        if queue.has_room():
            queue.put_nowait(batch)
        else:
            # Backpressure: wait for room, unless a rebalance suspends the flow or the consumer stops
            # first (then the batch is dropped; faust seeks back to the committed offsets on resume).
            res = await self.wait_first(queue.put(batch), self.suspend_flow.wait())
            if res.stopped or not self.flow_active:
                return
        self._read_offset[tp] = recs[-1].offset
        self.app.monitor.stream_inbound_time[tp] = monotonic()  # faust's "stream idle" check

    async def _deliver(self, tp: TP, recs: list[Any]) -> None:
        """faust's per-message path for one partition of a non-telemetry topic (its drain loop's body)."""
        callback = self.callback
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        commit_every = self._commit_every
        for n, record in enumerate(recs, 1):
            if not self.flow_active:
                return
            if n % 100 == 0:
                await asyncio.sleep(0)
            message = self._to_message(tp, record)
            offset = message.offset
            r_offset = self._read_offset[tp]
            if r_offset is None or offset >= r_offset:
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled:
                    await self._add_gap(tp, r_offset + 1, offset)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                await self.wait_first(callback(message), self.suspend_flow.wait())
                self._read_offset[tp] = offset
            else:
                self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)


class BatchTransport(driver.Transport):
    """The aiokafka transport of one app, creating :class:`BatchConsumer` consumers."""

    Consumer = BatchConsumer

    telemetry_channel: Any
    record_queue: RecordQueue
    consumer: BatchConsumer | None = None

    def create_consumer(self, callback: Any, **kwargs: Any) -> Any:
        consumer = super().create_consumer(callback, **kwargs)
        assert isinstance(consumer, BatchConsumer)
        self.consumer = consumer
        return consumer

    def ack_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        """The checkpoint's acks, to the consumer this transport made (none yet: nothing to ack)."""
        if self.consumer is not None:
            self.consumer.ack_offsets(topic, offsets)


def install(app: faust.App, telemetry_channel: Any, queue: RecordQueue) -> BatchTransport:
    """Make ``app`` consume through :class:`BatchConsumer` (before it created its transport)."""
    if app._transport is not None:  # type: ignore[attr-defined]
        raise RuntimeError("install the batch consumer before the app creates its transport")
    transport = BatchTransport(app.conf.broker_consumer, app)
    transport.telemetry_channel = telemetry_channel
    transport.record_queue = queue
    app.transport = transport
    event(log, "record-batch consumer installed", topic=telemetry_channel.get_topic_name())
    return transport
