"""Checkpoint and restore of one worker's in-memory state (windows, bookkeeping, next offsets).

Why a module of its own: this is where "nothing lost, nothing twice" is decided (docs/scorer.md,
"Windows" and "Delivery"). A checkpoint first waits for the pipelined batch write, then writes the
changed windows with the next offset of every owned partition in ONE transaction, and only then acks
the offsets whose rows are durable. A restore installs a partition's next offsets and windows the first
time the worker sees the partition, and, per batch, the checkpoint of every turbine not in memory
whatever partition wrote it, with the newest ``stream`` row of ``score_history`` as its history mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from common.gc_pause import without_cyclic_gc
from common.logging import event
from common.rows import WindowRow
from models.features import FeatureWindow
from scorer.ingest import WorkerStopping
from scorer.restore_rows import StoredChunk

if TYPE_CHECKING:
    from models.window_store import WindowStore
    from scorer.ports import StoredWindow
    from scorer.runtime import ScorerRuntime
    from scorer.state import AuxInputs, HistoryMark

log = logging.getLogger("scorer")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Changed:
    """One changed turbine as taken under the lock: what its checkpoint row is encoded from."""

    turbine_id: str
    site_id: str
    partition: int
    aux: AuxInputs
    taken: int  # its row in the snapshot's store copy, or -1 (a window held elsewhere: ``blob``)
    blob: bytes = b""
    as_of: datetime | None = None  # of a window held elsewhere


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A checkpoint taken under the lock, encoded and written outside it: a copy of the changed
    windows' rows and the bookkeeping they are encoded from, next offsets, and the batch write that was
    running then (the checkpoint commits after it)."""

    changed: list[_Changed]
    store: WindowStore | None  # the copy of the changed rows of the worker's store
    offsets: dict[int, int]
    prior: asyncio.Future[None] | None


class _Pipeline:
    """Chunks of checkpointed windows restored on the compute thread (one at a time, in order) as the
    DB read hands them over from the DB thread: the window kernel releases the GIL, so decoding chunk
    k overlaps reading chunk k+1. ``BatchProcessor.restore`` skips turbines already in memory, so a
    read retried after a DB failure installs each turbine once."""

    def __init__(self, rt: ScorerRuntime) -> None:
        self.rt = rt
        self.futures: list[Future[int]] = []
        self.before: set[str] | None = None
        self.ids: list[str] = []
        self.spans: list[tuple[float, float, float]] = []  # per chunk: start, end, thread CPU (s)

    def begin(self, count: int) -> None:  # DB thread: room for every row at once (no growth copies)
        self.futures.append(self.rt.compute.submit(self._begin, count))

    def _begin(self, count: int) -> int:
        proc = self.rt.processor
        if self.before is None:
            self.before = set(proc.turbines)
        proc.store.reserve(count)
        proc.store.prefault(count)  # the decode then writes into resident pages (see WindowStore.prefault)
        return 0

    def feed(self, rows: StoredChunk | list[StoredWindow]) -> None:  # DB thread
        self.ids.extend(rows.turbine_ids if isinstance(rows, StoredChunk) else [w.turbine_id for w in rows])
        self.futures.append(self.rt.compute.submit(self._timed, self.rt.processor.restore, rows))

    def _timed(self, fn: Callable[[T], int], chunk: T) -> int:  # compute thread
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(chunk)
        finally:
            if isinstance(chunk, StoredChunk):  # decoded (or failed): its buffer serves a later chunk
                chunk.states.release()
            self.spans.append((t0, time.perf_counter(), time.thread_time() - c0))

    async def finish(self, marks: dict[str, HistoryMark]) -> int:
        n = 0
        for f in self.futures:
            n += await asyncio.wrap_future(f)
        await self.rt._in(self.rt.compute, self.rt.processor.install, [], marks)
        return n

    async def undo(self) -> None:
        """Forget every turbine this restore installed (after its pending chunks ran)."""
        for f in self.futures:
            with contextlib.suppress(BaseException):
                await asyncio.wrap_future(f)
        if self.before is not None:
            before = self.before
            gone = [t for t in self.ids if t not in before]
            with contextlib.suppress(Exception):  # the worker is stopping: its pools are closed
                await self.rt._in(self.rt.compute, self.rt.processor.forget, gone)


class Checkpointer:
    """Checkpoints and restores against the runtime's sinks; snapshots under the runtime's lock."""

    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime
        self.serial = asyncio.Lock()

    async def checkpoint(self, *, hold_lock: bool = False) -> None:
        """Snapshot under the lock, then write it while the stream goes on (``hold_lock``: the stream
        waits for the commit too, as at a rebalance or the final checkpoint of a stop)."""
        async with self.serial:  # one checkpoint at a time: their commits stay in snapshot order
            if hold_lock:
                async with self.rt.lock:
                    await self.checkpoint_locked()
                return
            async with self.rt.lock:
                snap = await self.snapshot()
            if snap is not None:
                await self.commit(snap)

    def _take(self, dirty: Sequence[str]) -> tuple[list[_Changed], WindowStore | None]:
        """Under the lock (compute thread): the changed rows of the worker's store copied (one
        fancy-index copy per array) and each turbine's bookkeeping copied; nothing is encoded here."""
        proc = self.rt.processor
        store = proc.store
        states = [st for st in (proc.turbines.get(tid) for tid in dirty) if st is not None]
        held = [st.window.row for st in states if st.window.store is store]
        taken = store.take(np.array(held, dtype=np.intp)) if held else None
        changed = []
        i = 0
        for st in states:
            w = st.window
            if w.store is store:
                changed.append(_Changed(st.turbine_id, st.site_id, st.partition, st.aux_inputs(), i))
                i += 1
            else:  # a window held elsewhere (a state put in place by hand): coded now, on its own
                aux = st.aux_inputs()
                changed.append(
                    _Changed(st.turbine_id, st.site_id, st.partition, aux, -1, w.to_bytes(), w.as_of)
                )
        return changed, taken

    def _encode(self, snap: _Snapshot) -> list[WindowRow]:
        """The checkpoint rows of a snapshot (checkpoint thread, outside the lock): every changed window
        of the copy coded in one kernel call (format 4), the same bytes as coded from the live store."""
        topic = self.rt.settings.telemetry_topic
        group = self.rt.settings.consumer_group
        taken = snap.store
        coded = taken.to_bytes_many(np.arange(len(taken), dtype=np.intp)) if taken is not None else []
        rows = []
        for c in snap.changed:
            if c.taken >= 0:
                assert taken is not None
                blob, as_of = coded[c.taken], FeatureWindow.view(taken, c.taken).as_of
            else:
                blob, as_of = c.blob, c.as_of
            rows.append(
                WindowRow(
                    consumer_group=group,
                    turbine_id=c.turbine_id,
                    site_id=c.site_id,
                    topic=topic,
                    partition=c.partition,
                    last_event_time=as_of,
                    state=blob,
                    aux=c.aux.encode(),
                )
            )
        return rows

    async def checkpoint_locked(self) -> None:
        """Changed windows + next offsets, then the acks of every durably written batch (lock held)."""
        snap = await self.snapshot()
        if snap is not None:
            await self.commit(snap)

    async def snapshot(self) -> _Snapshot | None:
        """What the next checkpoint writes, taken under the runtime's lock (a few ms: a copy of the
        changed windows' rows and bookkeeping, the next offsets; :meth:`commit` encodes it). Their dirty
        marks are cleared now: a window changed after this is dirty again and goes in the next checkpoint."""
        rt = self.rt
        rt.ingest.refuse_if_broken()
        proc = rt.processor
        prior = rt.ingest.inflight
        if prior is not None and prior.done():
            prior = None  # written (its acks are pending) or failed (broken: raised below)
        if not proc.dirty and not rt.pending_acks and prior is None:
            return None
        dirty = list(proc.dirty)
        changed, taken = await rt._in(rt.compute, self._take, dirty)
        offsets = {p: o for p, o in proc.next_offset.items() if p in rt.assigned or not rt.assigned}
        proc.dirty.difference_update(dirty)
        # The batch write still running when the snapshot was taken: the checkpoint commits after it
        # (its offsets are in ``offsets``; a checkpoint never gets ahead of the rows it covers).
        return _Snapshot(changed, taken, offsets, prior)

    async def commit(self, snap: _Snapshot) -> None:
        """Write a snapshot on the checkpoint's own connection, then ack the offsets it covers.

        It first waits for the batch write that was running at the snapshot (a failure there
        propagates: crash-only); a write that fails for good marks the runtime broken."""
        rt = self.rt
        try:
            # encoded on the checkpoint's thread while the batch write may still run; the snapshot's
            # dirty marks are cleared, so an encode that fails marks the runtime broken too
            rows = await rt._in(rt.checkpoint_pool, self._encode, snap)
        except WorkerStopping:
            raise
        except Exception as exc:
            rt.broken = exc
            raise
        if snap.prior is not None:
            await asyncio.shield(snap.prior)
        rt.ingest.refuse_if_broken()  # a write that failed before the snapshot was taken
        try:
            await rt._retry(
                "checkpoint",
                rt.checkpoint_sink.write_checkpoint,
                rt.settings.telemetry_topic,
                rows,
                snap.offsets,
                pool=rt.checkpoint_pool,
            )
        except WorkerStopping:
            raise
        except Exception as exc:  # not unavailability: the next batch raises, the worker stops
            rt.broken = exc
            raise
        rt.metrics.checkpoint_windows.inc(len(rows))
        # Per partition, the newest next offset of a durably written batch the snapshot covers (every
        # batch up to the snapshot is written: its last write was awaited above). Later batches'
        # acks wait for the next checkpoint. Faust's commit handler commits them.
        commit: dict[int, int] = {}
        rest = []
        for a in rt.pending_acks:
            covered = snap.offsets.get(a.partition)
            if covered is not None and a.next_offset <= covered:
                if a.next_offset > commit.get(a.partition, -1):
                    commit[a.partition] = a.next_offset
            else:
                rest.append(a)
        rt.pending_acks = rest
        if commit and rt.committer is not None:
            rt.committer.ack_offsets(rt.settings.telemetry_topic, commit)

    async def restore_partitions(self, partitions: Sequence[int]) -> None:
        """Next offsets of newly owned partitions, and the windows checkpointed on them.

        Windows of turbines that now arrive on another partition are restored per turbine
        (:meth:`restore_turbines`); loading the partition's windows too keeps the turbines that sent
        nothing since the start in memory, where the sweep scores them.

        The rows are decoded into the store chunk by chunk on the compute thread while the next chunk
        is read (:class:`_Pipeline`); a restore that fails leaves none of its turbines in memory.
        """
        rt = self.rt
        proc = rt.processor
        topic = rt.settings.telemetry_topic
        streamed = getattr(rt.sink, "load_partitions_streamed", None)
        t0 = time.perf_counter()
        timing: dict[str, float] = {}
        was = gc.isenabled()
        gc.disable()  # see common/gc_pause.py: the whole read + decode allocates a few objects per turbine
        try:
            if streamed is None:  # a sink without streaming (tests' fakes): read all, then decode
                offsets, stored, marks = await rt._retry(
                    "restore", rt.sink.load_partitions, topic, list(partitions)
                )
                n = await rt._in(rt.compute, proc.restore, stored, marks)
            else:
                pipe = _Pipeline(rt)
                try:
                    offsets, marks = await rt._retry(
                        "restore", streamed, topic, list(partitions), pipe.begin, pipe.feed
                    )
                    timing["read"] = time.perf_counter() - t0
                    n = await pipe.finish(marks)
                except BaseException:
                    await pipe.undo()
                    raise
                if pipe.spans:  # the compute thread's chunks: busy time, and how long it ran after the read
                    timing["chunks_busy"] = sum(b - a for a, b, _c in pipe.spans)
                    timing["chunks_cpu"] = sum(c for _a, _b, c in pipe.spans)
                    timing["first_chunk_at"] = pipe.spans[0][0] - t0
                    timing["last_chunk_end"] = pipe.spans[-1][1] - t0
        finally:
            t1 = time.perf_counter()
            if was:
                # The restored windows and bookkeeping live as long as the worker: out of the cyclic
                # gc's generations before it resumes (re-enabled, its next young collection walked
                # every object the restore made: ~7 ms of CPU per 10,000 bookkeeping records alone).
                gc.freeze()
                gc.enable()
            timing["gc_freeze"] = time.perf_counter() - t1
        timing["total"] = time.perf_counter() - t0
        for p in partitions:
            if p in offsets and p not in proc.next_offset:
                proc.next_offset[p] = offsets[p]
            rt.restored.add(p)
        event(
            log,
            "partitions restored from checkpoint",
            partitions=list(partitions),
            windows=n,
            history_marks=len(marks),
            offsets={str(k): v for k, v in offsets.items()},
            timing_ms={k: round(v * 1e3, 1) for k, v in timing.items()},
        )

    async def restore_turbines(self, turbine_ids: Collection[str]) -> None:
        """Install the checkpoint of every given turbine not in memory, whatever its partition.

        One query per batch, and only for turbines not seen yet by this worker (after a start, a
        rebalance, a partition-count change, a key change). The newest ``stream`` row of each one in
        ``score_history`` raises its history mark, so a replay after a crash never writes a row the
        history policy forbids.
        """
        rt = self.rt
        missing = rt.processor.missing(turbine_ids)
        if not missing:
            return
        stored, marks = await rt._retry("restore", rt.sink.load_turbines, missing)
        n = await rt._in(rt.compute, without_cyclic_gc(rt.processor.restore), stored, marks)
        event(
            log,
            "turbines restored from checkpoint",
            turbines=len(missing),
            windows=n,
            history_marks=len(marks),
            moved=sum(1 for w in stored if w.partition not in rt.restored),
        )
