"""Time a periodic checkpoint holds the runtime's lock, per 1,000 dirty windows: the snapshot taken
now (``Checkpointer._take``: row copy + bookkeeping copy) against the previous code's (``_rows`` of
``scorer/checkpoint.py`` at ``--base``, default fcf7756: every window and aux encoded under the lock).

In-process, no services: a runtime on fake sinks (tests/unit/scorer/runtime_helpers.py) holding
``--turbines`` turbines whose windows hold 7 days of 10-min readings; the two paths run interleaved
``--rounds`` times on the same state (thread CPU and wall time of each call)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_checkpoint_lock.py [--worker-allocator]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _old_checkpointer(base: str) -> type:
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{base}:scorer/checkpoint.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    mod = types.ModuleType("old_checkpoint")
    sys.modules["old_checkpoint"] = mod
    exec(compile(src, "old_checkpoint.py", "exec"), mod.__dict__)
    return mod.Checkpointer  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turbines", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument(
        "--worker-allocator",
        action="store_true",
        help="glibc tuned as the worker tunes it (ScorerSettings' malloc_*: blocks from 256 KB mmapped, "
        "so every snapshot copy faults in fresh pages)",
    )
    ap.add_argument("--base", default="fcf7756")  # the last commit encoding under the lock
    a = ap.parse_args()
    from models.features import TRACKED_SIGNALS
    from scorer.checkpoint import Checkpointer
    from tests.unit.scorer.runtime_helpers import T0, events, make_runtime

    old_cls = _old_checkpointer(a.base)
    if a.worker_allocator:
        from common.allocator import configure
        from common.settings import load_settings
        from scorer.settings import ScorerSettings

        ws = load_settings(ScorerSettings)
        print(
            configure(
                mmap_threshold_bytes=ws.malloc_mmap_threshold_bytes,
                trim_threshold_bytes=ws.malloc_trim_threshold_bytes,
                arena_max=ws.malloc_arena_max,
            )
        )
    tmp = tempfile.TemporaryDirectory()
    rt, _ = make_runtime(Path(tmp.name))
    fleet = [f"WT-{i:05d}" for i in range(a.turbines)]
    asyncio.run(rt.handle_batch(events([(t, m) for m in (0, 10, 20) for t in fleet])))
    proc = rt.processor
    rows = np.array([proc.turbines[t].window.row for t in fleet], dtype=np.intp)
    # 7 days of 10-min readings in every window (before the stream's own readings)
    rng = np.random.default_rng(0)
    n = 7 * 24 * 6
    ts0 = T0.timestamp() - 600.0 * n
    for r in rows:
        k = len(TRACKED_SIGNALS)
        proc.store.ingest(
            np.full(n, r), ts0 + 600.0 * np.arange(n), rng.normal(60, 20, (n, k)), np.zeros(n, int), None
        )
    print("events in a window:", proc.store.data_quality(rows[:1])[0]["events_in_window"])
    new, old = Checkpointer(rt), old_cls(rt)
    res: dict[str, list[tuple[float, float]]] = {"old _rows (encode under the lock)": [], "new _take": []}
    for i in range(a.rounds):
        order = [("old _rows (encode under the lock)", old._rows), ("new _take", new._take)]
        if i % 2:
            order.reverse()
        for name, fn in order:
            c0, w0 = time.thread_time(), time.perf_counter()
            fn(fleet)
            res[name].append((time.thread_time() - c0, time.perf_counter() - w0))
    scale = 1000 / a.turbines
    for name, v in res.items():
        cpu = sorted(x[0] * 1e3 * scale for x in v)
        wall = sorted(x[1] * 1e3 * scale for x in v)
        print(
            f"{name:36s} per 1,000 windows: thread CPU median {statistics.median(cpu):6.1f} ms "
            f"(min {cpu[0]:.1f}, max {cpu[-1]:.1f}); wall median {statistics.median(wall):6.1f} ms "
            f"(min {wall[0]:.1f}, max {wall[-1]:.1f})"
        )
    rt.close()


if __name__ == "__main__":
    main()
