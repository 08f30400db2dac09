"""The live batch cut follows the database writer (``batch_cut_when_writer_idle``), and every written
batch reports its stages (``scorer_batch_stage_seconds``, the ``scoring`` log line's ``spans_ms``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import pytest

from scorer.ingest import STAGES, FetchedBatch, RecordQueue
from scorer.processing import RawRecord
from scorer.runtime import ScorerRuntime
from tests.unit.scorer.runtime_helpers import make_runtime, reading

pytestmark = pytest.mark.unit

WITHIN = 30.0  # far beyond any wait below: a cut that closes did so for another reason


def _runtime(tmp_path: Path, **update: object) -> ScorerRuntime:
    rt, _ = make_runtime(tmp_path)
    rt.settings = rt.settings.model_copy(
        update={
            "batch_max_size": 1000,
            "batch_within_s": WITHIN,
            "batch_cut_when_writer_idle": True,
            **update,
        }
    )
    rt.processor.settings = rt.settings
    return rt


def _live(offset: int, highwater: int | None = None, ts: float | None = None) -> FetchedBatch:
    """One fresh record (Kafka timestamp now) of a live stream (nothing more in Kafka)."""
    rec = RawRecord(
        0, offset, time.time() if ts is None else ts, reading("WT-1", offset), "telemetry", b"WT-1"
    )
    return FetchedBatch(None, [rec], offset + 1 if highwater is None else highwater, time.time())


def test_the_cut_closes_at_once_when_no_write_is_in_flight(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    q = RecordQueue(1000)
    q.put_nowait(_live(0))

    async def go() -> list[FetchedBatch]:
        return await asyncio.wait_for(rt.ingest.collect(q), 5.0)

    try:
        got = asyncio.run(go())
    finally:
        rt.close()
    assert [r.offset for b in got for r in b.records] == [0]


def test_the_cut_stays_open_while_a_write_runs_and_closes_when_it_ends(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    q = RecordQueue(1000)

    async def go() -> tuple[bool, list[int]]:
        write: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rt.ingest.inflight = write
        q.put_nowait(_live(0))
        cut = asyncio.ensure_future(rt.ingest.collect(q))
        await asyncio.sleep(0.05)
        q.put_nowait(_live(1))  # joins the open batch
        await asyncio.sleep(0.05)
        open_meanwhile = not cut.done()
        write.set_result(None)  # the database is free: the batch goes
        got = await asyncio.wait_for(cut, 5.0)
        await rt.ingest.drain()
        return open_meanwhile, [r.offset for b in got for r in b.records]

    try:
        open_meanwhile, offsets = asyncio.run(go())
    finally:
        rt.close()
    assert open_meanwhile
    assert offsets == [0, 1]
    assert len(q) == 0


def test_a_failed_write_closes_the_cut_and_its_error_is_left_to_drain(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    q = RecordQueue(1000)

    async def go() -> tuple[list[int], str]:
        write: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rt.ingest.inflight = write
        q.put_nowait(_live(0))
        cut = asyncio.ensure_future(rt.ingest.collect(q))
        await asyncio.sleep(0.02)
        write.set_exception(RuntimeError("write refused"))
        got = await asyncio.wait_for(cut, 5.0)
        with pytest.raises(RuntimeError) as err:
            await rt.ingest.drain()
        return [r.offset for b in got for r in b.records], str(err.value)

    try:
        offsets, error = asyncio.run(go())
    finally:
        rt.close()
    assert offsets == [0] and error == "write refused"


@pytest.mark.parametrize("compute_s", [0.9, 0.1])
def test_the_cut_closes_when_the_write_in_flight_ends_within_the_expected_compute(
    tmp_path: Path, compute_s: float
) -> None:
    """A write expected to take 1 s started now: with a batch expected to compute in 0.9 s the cut
    closes about 0.1 s from now (the batch is computed while the write ends); with 0.1 s of compute it
    stays open for ~0.9 s; both while the write is still running."""
    rt = _runtime(tmp_path)
    q = RecordQueue(1000)

    async def go() -> tuple[float, bool, list[int]]:
        loop = asyncio.get_running_loop()
        write: asyncio.Future[None] = loop.create_future()
        rt.ingest.inflight = write
        rt.ingest._write_started = loop.time()
        rt.ingest._write_s, rt.ingest._compute_s = 1.0, compute_s
        q.put_nowait(_live(0))
        t0 = loop.time()
        cut = asyncio.ensure_future(rt.ingest.collect(q))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(cut), 0.5)
        closed_early = cut.done()
        got = await asyncio.wait_for(cut, 5.0)
        waited = loop.time() - t0
        write_running = not write.done()
        write.set_result(None)
        await rt.ingest.drain()
        return waited, closed_early and write_running, [r.offset for b in got for r in b.records]

    try:
        waited, early_while_writing, offsets = asyncio.run(go())
    finally:
        rt.close()
    assert offsets == [0]
    if compute_s == 0.9:
        assert early_while_writing  # closed within 0.5 s, the write still running
    else:
        assert waited >= 0.5  # waited for the write to come closer to its end


def test_the_writer_lead_without_estimates_waits_for_the_write_and_is_zero_when_idle(
    tmp_path: Path,
) -> None:
    rt = _runtime(tmp_path)

    async def go() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        idle = rt.ingest.writer_lead(loop.time())
        write: asyncio.Future[None] = loop.create_future()
        rt.ingest.inflight = write
        unknown = rt.ingest.writer_lead(loop.time())
        rt.ingest._write_started, rt.ingest._write_s, rt.ingest._compute_s = loop.time(), 0.2, 0.05
        known = rt.ingest.writer_lead(loop.time())
        write.set_result(None)
        await rt.ingest.drain()
        return idle, unknown, known

    try:
        idle, unknown, known = asyncio.run(go())
    finally:
        rt.close()
    assert idle == 0.0
    assert unknown == float("inf")
    assert 0.1 < known <= 0.15


def test_written_batches_teach_the_cut_their_compute_and_write_times(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    q = RecordQueue(1000)

    async def go() -> tuple[float | None, float | None]:
        for k in range(3):
            q.put_nowait(_live(k))
            await rt.ingest.handle_batch(await rt.ingest.collect(q))
        await rt.ingest.drain()
        return rt.ingest._compute_s, rt.ingest._write_s

    try:
        compute_s, write_s = asyncio.run(go())
    finally:
        rt.close()
    assert compute_s is not None and compute_s > 0
    assert write_s is not None and write_s > 0


@pytest.mark.parametrize("why", ["backlog", "setting off"])
def test_the_cut_waits_for_batch_within_s_behind_a_backlog_or_when_turned_off(
    tmp_path: Path, why: str
) -> None:
    rt = _runtime(tmp_path, batch_cut_when_writer_idle=why != "setting off")
    q = RecordQueue(1000)
    q.put_nowait(_live(0, highwater=5000 if why == "backlog" else None))  # 4,999 more in Kafka

    async def go() -> bool:
        cut = asyncio.ensure_future(rt.ingest.collect(q))
        await asyncio.sleep(0.1)
        still_open = not cut.done()
        cut.cancel()
        return still_open

    try:
        assert asyncio.run(go())
    finally:
        rt.close()


def test_a_written_batch_reports_its_stages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rt = _runtime(tmp_path)
    q = RecordQueue(1000)
    sent = time.time() - 0.2  # the record waited 200 ms before its fetch
    q.put_nowait(_live(0, ts=sent))

    async def go() -> None:
        batches = await rt.ingest.collect(q)
        await rt.handle_batch(batches)
        await rt.ingest.drain()

    caplog.set_level(logging.INFO, logger="scorer")
    try:
        asyncio.run(go())
        done = time.time()
        counts = {
            s: rt.metrics.registry.get_sample_value("scorer_batch_stage_seconds_count", {"stage": s})
            for s in STAGES
        }
        fetch = rt.metrics.registry.get_sample_value("scorer_batch_stage_seconds_sum", {"stage": "fetch"})
        total = sum(
            rt.metrics.registry.get_sample_value("scorer_batch_stage_seconds_sum", {"stage": s}) or 0.0
            for s in STAGES
        )
    finally:
        rt.close()
    assert counts == dict.fromkeys(STAGES, 1.0)
    assert fetch is not None and fetch >= 0.2
    assert 0.2 <= total <= done - sent  # the stages add up to the oldest record's latency
    lines = [r for r in caplog.records if r.getMessage() == "scoring"]
    assert len(lines) == 1
    ctx = getattr(lines[0], "ctx", {})
    assert set(ctx["spans_ms"]) == set(STAGES) and ctx["oldest_ms"] >= 200


def test_the_ingest_loop_sets_the_young_gc_threshold_and_times_collections(tmp_path: Path) -> None:
    import gc

    rt = _runtime(tmp_path, gc_young_threshold=12_345)
    before = gc.get_threshold()

    async def go() -> tuple[int, bool, float | None]:
        loop = asyncio.ensure_future(rt.run_ingest())
        await asyncio.sleep(0.01)
        gc.collect(0)
        seen = gc.get_threshold()[0], rt.ingest._on_gc in gc.callbacks
        timed = rt.metrics.registry.get_sample_value("scorer_gc_pause_seconds_count", {"generation": "0"})
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        return seen[0], seen[1] and rt.ingest._on_gc not in gc.callbacks, timed

    try:
        threshold, callback_added_then_removed, timed = asyncio.run(go())
    finally:
        gc.set_threshold(*before)
        rt.close()
    assert threshold == 12_345
    assert callback_added_then_removed
    assert timed == 1.0


def test_a_batch_handed_in_directly_times_only_what_the_ingest_saw(tmp_path: Path) -> None:
    """No fetch, take or cut time (a batch given to ``handle_batch`` directly, records a year old): the
    record's age is not counted as lock wait, and no stage before the lock is invented."""
    rt = _runtime(tmp_path)
    old = time.time() - 365 * 86_400
    rec = RawRecord(0, 0, old, reading("WT-1", 0), "telemetry", b"WT-1")

    async def go() -> None:
        await rt.handle_batch([FetchedBatch(None, [rec], 1, None)])
        await rt.ingest.drain()

    t0 = time.time()
    try:
        asyncio.run(go())
        elapsed = time.time() - t0
        sample = rt.metrics.registry.get_sample_value
        lock_wait = sample("scorer_batch_stage_seconds_sum", {"stage": "lock_wait"})
        before_lock = [
            sample("scorer_batch_stage_seconds_count", {"stage": s}) for s in ("fetch", "queue", "cut")
        ]
    finally:
        rt.close()
    assert lock_wait is not None and 0.0 <= lock_wait <= elapsed
    assert before_lock == [None, None, None] or before_lock == [0.0, 0.0, 0.0]


def test_a_batch_of_known_turbines_is_parsed_and_applied_in_one_hand_off(tmp_path: Path) -> None:
    """The first batch of a turbine restores it between parse and apply; later ones (every turbine in
    memory) go to the compute thread once, with the same stages reported and the same rows written."""
    rt = _runtime(tmp_path)
    q = RecordQueue(1000)
    restored: list[list[str]] = []
    hand_offs: list[str] = []
    restore = rt.checkpointer.restore_turbines
    run_in = rt._in

    async def spy_restore(ids):  # type: ignore[no-untyped-def]
        restored.append(sorted(ids))
        await restore(ids)

    async def spy_in(pool, fn, *args):  # type: ignore[no-untyped-def]
        if pool is rt.compute:
            hand_offs.append(getattr(fn, "__name__", "?"))
        return await run_in(pool, fn, *args)

    rt.checkpointer.restore_turbines = spy_restore  # type: ignore[method-assign]
    rt._in = spy_in  # type: ignore[method-assign]

    async def go() -> list[list[str]]:
        per_batch: list[list[str]] = []
        for k in range(2):
            q.put_nowait(_live(k))
            hand_offs.clear()
            await rt.ingest.handle_batch(await rt.ingest.collect(q))
            await rt.ingest.drain()
            per_batch.append(list(hand_offs))
        return per_batch

    try:
        per_batch = asyncio.run(go())
    finally:
        rt.close()
    assert restored == [["WT-1"]]  # the first batch only: WT-1 was not in memory
    first = per_batch[0]  # also the new partition's restore before, the turbine's decode between
    assert first.count("_parse_then_apply") == 1 and first[-1] == "apply"
    assert per_batch[1] == ["_parse_then_apply"]
    assert rt.consumed == 2
