"""Where the worker's memory per turbine goes: the memory readings of ``bench_scorer.py --only memory``
through the worker's own code in this process, with each allocator's counters read between N1 and N2.

What it runs: an in-process ``ScorerRuntime`` (the worker's processor, ingest, coalescing, checkpoints;
the real ``scorer.sink.Sink`` on a fresh database, no faust, no Kafka) fed ``bench_memory``'s readings
(28 per turbine, one every 6 h over 7 days, time-major, ``--batch`` records per fetched batch), a
checkpoint after each step, then ``gc.collect()`` and ``malloc_trim(0)`` before each reading. What it
prints per turbine, between N1 and N2: the RSS growth; the window store's arrays (rows in use x bytes
per row); CPython's object allocator (pymalloc: bytes in live blocks, free blocks in used pools, wholly
unused pools kept inside arenas that still hold live pools, arenas); glibc's heaps (``mallinfo2``: in
use, free, mmapped); with ``--trace-frames`` the live Python allocations that grew most (tracemalloc,
slow: several times the run time)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_memory_split.py --registry registry --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_scorer as bs  # noqa: E402

from common.allocator import MallocStats, configure, rss_bytes, stats, trim  # noqa: E402

#: lines of ``sys._debugmallocstats()`` read (CPython 3.11's wording)
_PYMALLOC = {
    "arenas": re.compile(r"# arenas allocated current\s*=\s*([\d,]+)"),
    "live": re.compile(r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
    "free_blocks": re.compile(r"# bytes in available blocks\s*=\s*([\d,]+)"),
    "unused_pools": re.compile(r"(\d+) unused pools \* (\d+) bytes"),
}


def pymalloc_stats() -> dict[str, int]:
    """pymalloc's counters in bytes (``arenas``: 1 MiB each), from ``sys._debugmallocstats()`` (it
    writes to the C stderr: read through a pipe)."""
    r, w = os.pipe()
    saved = os.dup(2)
    os.dup2(w, 2)
    os.close(w)
    try:
        sys._debugmallocstats()  # type: ignore[attr-defined]
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    chunks = []
    while True:
        os.set_blocking(r, False)
        try:
            data = os.read(r, 1 << 16)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(r)
    text = b"".join(chunks).decode(errors="replace")
    out: dict[str, int] = {}
    for key, rx in _PYMALLOC.items():
        m = rx.search(text)
        if m is None:
            continue
        if key == "unused_pools":
            out[key] = int(m.group(1)) * int(m.group(2))
        elif key == "arenas":
            out[key] = int(m.group(1).replace(",", "")) << 20
        else:
            out[key] = int(m.group(1).replace(",", ""))
    return out


class Harness:
    def __init__(self, registry: Path, db_url: str, batch: int) -> None:
        from common.fleet import FleetRegister
        from common.settings import load_settings
        from models.policy import load_policy
        from scorer.fleet import RegisterHolder
        from scorer.model import ModelHolder
        from scorer.runtime import ScorerRuntime
        from scorer.settings import ScorerSettings

        settings = load_settings(
            ScorerSettings,
            registry_dir=str(registry),
            telemetry_topic="memory-split",
            consumer_group="memory-split",
            database_url=db_url,
        )
        configure(
            mmap_threshold_bytes=settings.malloc_mmap_threshold_bytes,
            trim_threshold_bytes=settings.malloc_trim_threshold_bytes,
            arena_max=settings.malloc_arena_max,
        )
        holder = ModelHolder(registry, load_policy())
        holder.refresh()
        registers = RegisterHolder("", 3600.0, loader=lambda _url: FleetRegister(turbines={}))
        self.rt = ScorerRuntime(settings, holder, registers=registers)
        self.rt.model_ready.set()
        self.rt.committer = _Committer()
        self.batch = batch
        self.offset = 0
        self.end = datetime.now(UTC)

    async def feed(self, n: int, first: int, prefix: str = "BT") -> None:
        from scorer.ingest import FetchedBatch
        from scorer.processing import RawRecord

        msgs = bs.synthetic_events(
            n, bs.MEMORY_EVENTS_PER_TURBINE, self.end, bs.MEMORY_STEP_S, first=first, prefix=prefix
        )
        topic = self.rt.settings.telemetry_topic
        for i in range(0, len(msgs), self.batch):
            chunk = msgs[i : i + self.batch]
            now = time.time()
            recs = [RawRecord(0, self.offset + j, now, v, topic, k) for j, (k, v) in enumerate(chunk)]
            self.offset += len(chunk)
            await self.rt.handle_batch([FetchedBatch(None, recs)])
            if self.rt.ingest.inflight is not None:
                await self.rt.ingest.inflight
        del msgs
        await self.rt.flush_rescores()
        await self.rt.checkpoint()

    def reading(self) -> dict[str, Any]:
        gc.collect()
        trim()
        store = self.rt.processor.store
        row_bytes = store.nbytes() // max(store.capacity, 1)
        m: MallocStats | None = stats()
        return {
            "rss": rss_bytes() or 0,
            "store_rows": len(store) * row_bytes,
            **{f"pymalloc_{k}": v for k, v in pymalloc_stats().items()},
            "glibc_in_use": 0 if m is None else m.in_use_bytes,
            "glibc_free": 0 if m is None else m.free_bytes,
            "glibc_mmapped": 0 if m is None else m.mmapped_bytes,
        }


class _Committer:
    def ack_offsets(self, topic: str, offsets: Any) -> None:  # what a checkpoint acks: unused here
        pass


def _table(a: dict[str, Any], b: dict[str, Any], n: int) -> str:
    rows = []
    for key in b:
        if key in a:
            rows.append(f"  {key:<26} {(b[key] - a[key]) / n / 1024:8.2f} KB/turbine")
    return "\n".join(rows)


async def run(args: argparse.Namespace, db_url: str) -> None:
    n1, n2 = (int(s) for s in args.sizes.split(","))
    h = Harness(args.registry, db_url, args.batch)
    await h.feed(10, 0, prefix="MW")
    await h.feed(n1, 0)
    before = h.reading()
    snap = None
    if args.trace_frames:
        tracemalloc.start(args.trace_frames)
        snap = tracemalloc.take_snapshot()
    await h.feed(n2 - n1, n1)
    after = h.reading()
    n = n2 - n1
    print(f"N={n1:,} -> {n2:,}, batches of {args.batch:,} records, load {os.getloadavg()[0]:.1f}")
    print(_table(before, after, n))
    if snap is not None:
        own = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = tracemalloc.take_snapshot().filter_traces(own).compare_to(snap.filter_traces(own), "traceback")
        print(f"  tracemalloc: live Python allocations {sum(d.size_diff for d in diff) / n:,.0f} B/turbine")
        for d in diff[: args.top]:
            frames = [f for f in reversed(d.traceback) if "concurrent" not in f.filename]
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames)
            print(f"  {d.size_diff / n:8.1f} B/turbine {d.count_diff / n:5.2f} blocks  {where}")
    h.rt.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=Path, default=ROOT / "registry")
    ap.add_argument("--sizes", default="1000,10000", help="N1,N2: turbines before and after")
    ap.add_argument("--batch", type=int, default=20_000, help="records per fetched batch (the worker's max)")
    ap.add_argument("--trace-frames", type=int, default=0, help="tracemalloc frames (0: off)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    name, url = bs.fresh_db()
    try:
        asyncio.run(run(args, url))
    finally:
        bs.drop_db(name)


if __name__ == "__main__":
    main()
