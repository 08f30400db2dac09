"""The record-batch consumer and the ingest queue, without Kafka: faust's real consumer class with its
fetch (``_wait_next_records``) and broker lookups replaced, driven through its own drain loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from scorer.batch_consumer import BatchConsumer, install
from scorer.ingest import FetchedBatch, RecordQueue
from scorer.processing import RawRecord
from tests.unit.scorer.runtime_helpers import events, make_runtime, records

pytestmark = pytest.mark.unit

TELEMETRY, COMMANDS = "telemetry", "commands"


def _record(topic: str, partition: int, offset: int, value: bytes = b"{}") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic, partition, offset, 1_700_000_000_000 + offset, 0, b"k", value, None, 1, 2, []
    )


def _app(queue: RecordQueue) -> faust.App:
    app = faust.App(
        "unit-batch-consumer", broker="kafka://127.0.0.1:1", autodiscover=False, web_enabled=False
    )
    install(app, app.topic(TELEMETRY, value_serializer="raw", key_serializer="raw"), queue)
    return app


class _Fetcher:
    def __init__(self) -> None:
        self._stopped = asyncio.Event()


def _drive(
    queue: RecordQueue,
    fetches: list[dict[TP, list[Any]]],
    check: Callable[[BatchConsumer, list[Any]], Awaitable[None]] | None = None,
    *,
    flow_active: bool = True,
    read_offsets: dict[TP, int] | None = None,
) -> tuple[BatchConsumer, list[Any], list[str]]:
    """Run faust's drain loop of a BatchConsumer over ``fetches`` (one per round), then stop it."""
    delivered: list[Any] = []
    calls: list[str] = []

    async def go() -> BatchConsumer:
        app = _app(queue)
        app.consumer_generation_id = 7

        async def callback(message: Any) -> None:
            delivered.append(message)

        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)
        consumer.callback = callback
        pending = list(fetches)
        fetcher = _Fetcher()

        async def wait_next_records(timeout: float) -> tuple[dict[TP, list[Any]], set[TP] | None]:
            if not pending:
                fetcher._stopped.set()
                return {}, None
            return pending.pop(0), None

        async def perform_seek() -> None:
            calls.append("perform_seek")

        consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
        consumer.perform_seek = perform_seek  # type: ignore[method-assign]
        consumer.highwater = lambda tp: 1000  # type: ignore[method-assign]
        consumer.flow_active = flow_active
        for tp, off in (read_offsets or {}).items():
            consumer._read_offset[tp] = off
        await consumer._drain_messages(fetcher)
        if check is not None:
            await check(consumer, delivered)
        return consumer

    return asyncio.run(go()), delivered, calls


def test_telemetry_goes_to_the_queue_as_one_batch_per_partition_stamped_with_the_generation() -> None:
    queue = RecordQueue(10_000)
    t0, t2 = TP(TELEMETRY, 0), TP(TELEMETRY, 2)
    consumer, delivered, _ = _drive(
        queue, [{t0: [_record(TELEMETRY, 0, o) for o in range(5)], t2: [_record(TELEMETRY, 2, 40)]}]
    )
    first, second = queue.get_nowait(), queue.get_nowait()
    assert first is not None and second is not None and queue.get_nowait() is None
    assert first.generation == 7 and first.highwater == 1000
    assert [r.offset for r in first.records] == [0, 1, 2, 3, 4]
    assert first.records[0] == RawRecord(0, 0, 1_700_000_000.0, b"{}", TELEMETRY, b"k")
    assert [r.offset for r in second.records] == [40] and second.records[0].partition == 2
    assert delivered == []  # no faust message for a telemetry record
    assert consumer._read_offset[t0] == 4 and consumer._read_offset[t2] == 40


def test_the_commands_topic_goes_through_faust_per_message_callback() -> None:
    queue = RecordQueue(10_000)
    cmd, tel = TP(COMMANDS, 0), TP(TELEMETRY, 1)
    consumer, delivered, _ = _drive(
        queue,
        [{cmd: [_record(COMMANDS, 0, 3, b'{"command": "sweep"}')], tel: [_record(TELEMETRY, 1, 0)]}],
    )
    assert [(m.topic, m.partition, m.offset, m.value, m.generation_id) for m in delivered] == [
        (COMMANDS, 0, 3, b'{"command": "sweep"}', 7)
    ]
    assert consumer._read_offset[cmd] == 3
    assert len(queue) == 1  # the telemetry record still went to the queue


def test_records_below_the_read_offset_are_dropped_as_faust_does() -> None:
    queue = RecordQueue(10_000)
    tp = TP(TELEMETRY, 0)
    _drive(queue, [{tp: [_record(TELEMETRY, 0, o) for o in range(10, 15)]}], read_offsets={tp: 12})
    batch = queue.get_nowait()
    assert batch is not None and [r.offset for r in batch.records] == [12, 13, 14]


def test_records_fetched_while_the_flow_is_stopped_are_not_delivered_and_the_consumer_seeks_back() -> None:
    queue = RecordQueue(10_000)
    tp = TP(TELEMETRY, 0)
    _, delivered, calls = _drive(queue, [{tp: [_record(TELEMETRY, 0, 0)]}], flow_active=False)
    assert len(queue) == 0 and delivered == [] and calls == ["perform_seek"]


def test_a_full_queue_holds_the_drain_until_the_ingest_takes_a_batch() -> None:
    queue = RecordQueue(3)
    tp = TP(TELEMETRY, 0)
    fetches = [{tp: [_record(TELEMETRY, 0, o) for o in range(3)]}, {tp: [_record(TELEMETRY, 0, 3)]}]

    async def go() -> list[int]:
        app = _app(queue)
        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)
        fetcher = _Fetcher()
        pending = list(fetches)

        async def wait_next_records(timeout: float) -> tuple[dict[TP, list[Any]], set[TP] | None]:
            if not pending:
                fetcher._stopped.set()
                return {}, None
            return pending.pop(0), None

        consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
        consumer.highwater = lambda tp: 4  # type: ignore[method-assign]
        drain = asyncio.ensure_future(consumer._drain_messages(fetcher))
        await asyncio.sleep(0.05)
        held = [queue.events, int(drain.done())]  # 3 queued, the 4th waits: the drain is held
        first = await queue.get(1.0)
        await asyncio.wait_for(drain, 1.0)
        assert first is not None
        return [*held, len(first.records), queue.events, consumer._read_offset[tp]]

    assert asyncio.run(go()) == [3, 0, 3, 1, 3]


def test_a_full_queue_drops_the_waiting_batch_when_a_rebalance_suspends_the_flow() -> None:
    queue = RecordQueue(1)
    tp = TP(TELEMETRY, 0)

    async def go() -> tuple[int, Any]:
        app = _app(queue)
        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)
        queue.put_nowait(FetchedBatch(1, records([("WT-1", 0)])))
        task = asyncio.ensure_future(consumer._hand_over(tp, [_record(TELEMETRY, 0, 5)], 7, 6))
        await asyncio.sleep(0.05)
        consumer.stop_flow()  # what faust does first when partitions are revoked
        await asyncio.wait_for(task, 1.0)
        return queue.events, consumer._read_offset[tp]

    assert asyncio.run(go()) == (1, None)  # not queued, read offset not advanced


def test_checkpoint_acks_become_faust_commit_offsets_of_assigned_partitions_only() -> None:
    async def go() -> list[Any]:
        app = _app(RecordQueue(10))
        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)
        consumer.assignment = lambda: {TP(TELEMETRY, 0), TP(TELEMETRY, 1)}  # type: ignore[method-assign]
        consumer.ack_offsets(TELEMETRY, {0: 10, 1: 5, 2: 9})  # partition 2 is not ours (any more)
        consumer.ack_offsets(TELEMETRY, {0: 8})  # never backwards
        first = consumer._filter_committable_offsets(consumer._filter_tps_with_pending_acks())
        consumer._committed_offset.update(first)
        again = consumer._filter_committable_offsets(consumer._filter_tps_with_pending_acks())
        consumer.ack_offsets(TELEMETRY, {1: 7})
        await consumer.on_partitions_revoked({TP(TELEMETRY, 1)})  # revoked before faust committed it
        revoked = consumer._filter_committable_offsets(consumer._filter_tps_with_pending_acks())
        return [first, again, revoked]

    first, again, revoked = asyncio.run(go())
    assert first == {TP(TELEMETRY, 0): 10, TP(TELEMETRY, 1): 5}
    assert again == {} and revoked == {}


def test_queue_bound_in_events_put_back_and_clear() -> None:
    q = RecordQueue(4)
    big = FetchedBatch(1, records([("WT-1", m) for m in range(6)]))
    assert q.has_room()
    q.put_nowait(big)  # an empty queue takes a batch larger than its bound
    assert q.events == 6 and not q.has_room()
    taken = q.get_nowait()
    assert taken is big and q.events == 0 and q.has_room()
    q.put_nowait(FetchedBatch(1, records([("WT-1", 0)])))
    q.put_back(FetchedBatch(1, records([("WT-2", 0)])))
    head = q.get_nowait()
    assert head is not None and head.records[0].key == b"WT-2"
    assert q.clear() == 1 and q.events == 0 and len(q) == 0
    assert asyncio.run(q.get(0.01)) is None


def _collect(
    queue: RecordQueue, batch_max_size: int, within: float, gen: int | None = 7
) -> list[FetchedBatch]:
    from pathlib import Path

    rt, _ = make_runtime(Path("/nonexistent-registry"))
    rt.settings = rt.settings.model_copy(update={"batch_max_size": batch_max_size, "batch_within_s": within})

    class App:
        consumer_generation_id = gen

    rt.app = App()
    try:
        return asyncio.run(rt.ingest.collect(queue))
    finally:
        rt.close()


def test_collect_cuts_at_batch_max_size_and_keeps_the_rest_first_in_line() -> None:
    q = RecordQueue(1000)
    for part, start in ((0, 0), (1, 0)):
        for fb in events([("WT-1", 10 * i) for i in range(6)], partition=part, start=start, generation=7):
            q.put_nowait(fb)
    got = _collect(q, 8, 5.0)  # 12 queued: 8 now, without waiting batch_within_s
    assert sum(len(b.records) for b in got) == 8
    rest = q.get_nowait()
    assert (
        rest is not None
        and rest.records[0].partition == 1
        and [r.offset for r in rest.records] == [2, 3, 4, 5]
    )


def test_collect_drops_batches_of_an_older_generation() -> None:
    q = RecordQueue(1000)
    q.put_nowait(FetchedBatch(6, records([("WT-1", 0)])))  # before the rebalance
    q.put_nowait(FetchedBatch(7, records([("WT-1", 10)], start=1)))
    q.put_nowait(FetchedBatch(6, records([("WT-1", 20)], start=2)))
    assert _collect(q, 100, 0.01) == []  # the first was stale: nothing to process yet
    got = _collect(q, 100, 0.01)
    assert [r.offset for b in got for r in b.records] == [1]


def test_collect_sends_live_traffic_after_batch_within_s() -> None:
    q = RecordQueue(1000)
    q.put_nowait(FetchedBatch(7, records([("WT-1", 0)]), highwater=1))  # nothing more in Kafka
    got = _collect(q, 20_000, 0.05)
    assert [r.offset for b in got for r in b.records] == [0]


def test_collect_waits_for_more_while_kafka_holds_a_backlog() -> None:
    q = RecordQueue(1000)
    q.put_nowait(FetchedBatch(7, records([("WT-1", 0)]), highwater=500))  # 499 more in Kafka

    async def later() -> None:
        await asyncio.sleep(0.1)  # beyond batch_within_s: the backlog keeps the batch open
        q.put_nowait(FetchedBatch(7, records([("WT-1", 10 * i) for i in range(1, 4)], start=1), highwater=4))

    async def go() -> list[FetchedBatch]:
        from pathlib import Path

        rt, _ = make_runtime(Path("/nonexistent-registry"))
        rt.settings = rt.settings.model_copy(update={"batch_max_size": 8, "batch_within_s": 0.02})
        try:
            feeder = asyncio.ensure_future(later())
            got = await rt.ingest.collect(q)
            await feeder
            return got
        finally:
            rt.close()

    got = asyncio.run(go())
    assert [r.offset for b in got for r in b.records] == [0, 1, 2, 3]
