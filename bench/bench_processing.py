"""CPU cost of the stream path's per-event work (``BatchProcessor.parse`` + ``apply``), no Kafka, no DB.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_processing.py --registry registry
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_processing.py --registry registry --json out.json
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_processing.py --only memory --memory 10000
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_processing.py --only 10min --profile 25

Issue 11 asks a worker for >= 20,000 events/s with windows, rescoring and every write; the worker also
spends its 2 cores on the Kafka fetch, faust and the database write, so the CPU part measured here has
its own targets (judged PASS/MISS by this script):

- ``10min``: 20,000-event batches of 1,000 turbines with 10-minute data (time-major: every turbine at t,
  then t + 10 min ...), so every touched turbine is due for rescoring in every batch, scored by the
  production model of ``--registry``: target >= 60,000 events/s for ``parse`` + ``apply``;
- ``1s``: the same with 1-second data (coalesced: a turbine is rescored once a minute of event time);
  the batches in which no turbine is due: target >= 150,000 events/s.

Baseline (same run, same bytes): ``msgspec.json.decode`` of every value alone (no validation, no
state), i.e. the floor of any decoding; each figure is printed beside it with the ratio. The inputs
are frozen out of the cyclic GC (``gc.freeze``) before timing (a worker holds one batch, not the whole
run). Times are the
CPU time of the benchmark thread (``time.thread_time``: waiting for a core on a shared machine does not
count), best of ``--repeat`` passes over the same batches into fresh processors; the first batch of
each pass (turbines created) is not timed.

``memory``: tracemalloc of a processor after ``--memory`` turbines were ingested through ``parse`` +
``apply`` with scoring (28 readings each, one every 6 h over 7 days: the worker memory test's data of
bench_scorer.py) and after the same turbines were restored from their checkpoint (``restore``):
bytes per turbine, the store's ``nbytes()`` per turbine, and the largest allocation sites.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec
import orjson
from bench_scorer import synthetic_events  # type: ignore[import-not-found]

#: CPU time of this thread: on a shared machine, waiting for a core does not count (OMP_NUM_THREADS=1).
_clock = time.thread_time
TURBINES = 1000
BATCH = 20_000
TARGET_10MIN = 60_000.0
TARGET_1S = 150_000.0
MEMORY_EVENTS_PER_TURBINE = 28
MEMORY_STEP_S = 6 * 3600


def settings(registry: Path, tmp: Path) -> Any:
    from scorer.settings import ScorerSettings

    return ScorerSettings(
        kafka_bootstrap_servers="127.0.0.1:1",
        database_url="postgresql://bench@127.0.0.1:1/bench",
        telemetry_topic="bench-telemetry",
        dead_letter_topic="bench-dlq",
        command_topic="bench-commands",
        registry_dir=registry,
        consumer_group="bench",
        data_dir=tmp,
    )


def scorer_for(registry: Path) -> Any:
    from models.policy import load_policy
    from scorer.model import ModelHolder

    holder = ModelHolder(registry, load_policy())
    holder.refresh()
    if holder.scorer is None:
        raise SystemExit(f"no production model the code accepts in {registry}: {holder.error}")
    return holder.scorer


def records_of(events: list[tuple[bytes, bytes]]) -> list[Any]:
    from scorer.processing import RawRecord

    now_ms = time.time()
    return [RawRecord(i % 3, i, now_ms, v, "bench-telemetry", k) for i, (k, v) in enumerate(events)]


@dataclass
class Pass:
    seconds: float = 0.0
    parse_s: float = 0.0
    events: int = 0
    idle_seconds: float = 0.0  # batches in which nothing was rescored
    idle_events: int = 0
    rescored: int = 0
    agg_rows: int = 0
    latest_rows: int = 0
    state_rows: int = 0
    dead_letters: int = 0


def run_pass(
    make: Callable[[], Any], batches: list[list[Any]], now: datetime, prof: cProfile.Profile | None
) -> Pass:
    proc = make()
    proc.process(batches[0], now)  # turbines created: not timed
    res = Pass()
    gc.collect()
    for batch in batches[1:]:
        if prof is not None:
            prof.enable()
        t0 = _clock()
        parsed = proc.parse(batch, now)
        t1 = _clock()
        out = proc.apply(parsed)
        dt = _clock() - t0
        if prof is not None:
            prof.disable()
        res.seconds += dt
        res.parse_s += t1 - t0
        res.events += len(batch)
        if out.rescored == 0:
            res.idle_seconds += dt
            res.idle_events += len(batch)
        res.rescored += out.rescored
        res.agg_rows += len(out.agg_rows)
        res.latest_rows += len(out.latest_rows)
        res.state_rows += len(out.state_rows)
        res.dead_letters += len(out.dead_letters)
    return res


def bare_decode(values: list[bytes], repeat: int) -> float:
    """Events/s of ``msgspec.json.decode`` of the values alone (best of ``repeat``)."""
    decode = msgspec.json.decode
    best = float("inf")
    for _ in range(repeat):
        t0 = _clock()
        for v in values:
            decode(v)
        best = min(best, _clock() - t0)
    return len(values) / best


def bench_stream(name: str, args: argparse.Namespace, step_s: int, report: dict[str, Any]) -> None:
    from scorer.processing import BatchProcessor

    per = max(2, args.batches + 1) * BATCH // TURBINES
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    events = synthetic_events(TURBINES, per, end, step_s)
    recs = records_of(events)
    batches = [recs[i : i + BATCH] for i in range(0, len(recs), BATCH)]
    now = end + timedelta(seconds=30)  # constant wall clock: the wall-clock flush never fires
    s = settings(args.registry, args.tmp)
    scorer = scorer_for(args.registry)

    def make() -> Any:
        return BatchProcessor(s, scorer)

    timed_values = [r.value for b in batches[1:] for r in b]
    del events
    # The inputs (every batch of the run at once) are moved out of the cyclic GC's reach: a worker holds
    # one batch, not 140,000 records, and the collector's full passes would time the bench's own heap.
    gc.collect()
    gc.freeze()
    base = bare_decode(timed_values, args.repeat)
    best: Pass | None = None
    for _ in range(args.repeat):
        res = run_pass(make, batches, now, None)
        if best is None or res.seconds < best.seconds:
            best = res
    assert best is not None
    rate = best.events / best.seconds
    parse_rate = best.events / best.parse_s
    apply_rate = best.events / (best.seconds - best.parse_s)
    idle = best.idle_events / best.idle_seconds if best.idle_seconds else None
    timed = len(batches) - 1
    print(f"\n[{name}] {TURBINES:,} turbines, {step_s}-s data, {timed} timed batches of {BATCH:,} events")
    print(f"  baseline msgspec.json.decode alone      {base:>12,.0f} ev/s")
    print(f"  parse + apply (all batches)             {rate:>12,.0f} ev/s   {rate / base:.3f}x baseline")
    print(f"    parse alone                           {parse_rate:>12,.0f} ev/s")
    print(f"    apply alone                           {apply_rate:>12,.0f} ev/s")
    if idle is not None:
        label = f"batches with nothing due ({best.idle_events // BATCH})"
        print(f"  {label:<40}{idle:>12,.0f} ev/s   {idle / base:.3f}x")
    print(
        f"  per batch: rescored {best.rescored / timed:,.0f}, agg rows {best.agg_rows / timed:,.0f}, "
        f"latest rows {best.latest_rows / timed:,.0f}, dead letters {best.dead_letters}"
    )
    target, judged = (TARGET_10MIN, rate) if step_s >= 600 else (TARGET_1S, idle)
    verdict = "n/a" if judged is None else ("PASS" if judged >= target else "MISS")
    label = "parse + apply" if step_s >= 600 else "nothing-due batches"
    print(f"  target {label} >= {target:,.0f} ev/s: {verdict}")
    report[name] = {
        "baseline_decode_ev_s": base,
        "ev_s": rate,
        "ratio": rate / base,
        "parse_ev_s": parse_rate,
        "apply_ev_s": apply_rate,
        "idle_ev_s": idle,
        "rescored_per_batch": best.rescored / timed,
        "agg_rows_per_batch": best.agg_rows / timed,
        "target_ev_s": target,
        "verdict": verdict,
    }
    gc.unfreeze()
    if args.profile:
        prof = cProfile.Profile()
        run_pass(make, batches, now, prof)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(args.profile)
        print(buf.getvalue())


@dataclass(frozen=True)
class _Stored:
    turbine_id: str
    partition: int
    state: bytes
    aux: bytes


def _site(frame: tracemalloc.Frame) -> str:
    path = frame.filename
    for cut in ("site-packages/", "/lib/python3.11/", "/main/"):
        path = path.split(cut)[-1]
    return f"{path}:{frame.lineno}"


def _measure(fn: Callable[[], Any], n: int, top: int) -> tuple[float, list[tuple[str, float]], Any]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = fn()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    sites = [(_site(s.traceback[0]), s.size_diff / n) for s in stats[:top]]
    return total / n, sites, kept


def bench_memory(args: argparse.Namespace, report: dict[str, Any]) -> None:
    from scorer.processing import BatchProcessor

    n = args.memory
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    s = settings(args.registry, args.tmp)
    scorer = scorer_for(args.registry)
    recs = records_of(synthetic_events(n, MEMORY_EVENTS_PER_TURBINE, end, MEMORY_STEP_S))
    now = datetime.now(UTC)
    print(
        f"\n[memory] {n:,} turbines, {MEMORY_EVENTS_PER_TURBINE} readings each (one every 6 h): tracemalloc"
    )
    warm = BatchProcessor(s, scorer)  # imports, caches and kernels compiled outside the measurement
    warm_events = synthetic_events(10, MEMORY_EVENTS_PER_TURBINE, end, MEMORY_STEP_S, prefix="W")
    warm.process(records_of(warm_events), now)

    def ingest() -> Any:
        proc = BatchProcessor(s, scorer)
        for i in range(0, len(recs), BATCH):
            proc.process(recs[i : i + BATCH], now)
        return proc

    per, sites, proc = _measure(ingest, n, args.top)
    store = proc.store.nbytes() / n
    print(f"  ingested: {per / 1024:8.1f} KB per turbine (store arrays nbytes()/N {store / 1024:.1f} KB)")
    for site, size in sites:
        print(f"    {size:10,.0f} B/turbine  {site}")
    stored = [
        _Stored(tid, st.partition, st.window.to_bytes(), st.aux_bytes()) for tid, st in proc.turbines.items()
    ]
    del proc
    gc.collect()

    def restore() -> Any:
        proc = BatchProcessor(s, scorer)
        proc.restore(stored)
        return proc

    rper, rsites, rproc = _measure(restore, n, args.top)
    rstore = rproc.store.nbytes() / n
    print(f"  restored: {rper / 1024:8.1f} KB per turbine (store arrays nbytes()/N {rstore / 1024:.1f} KB)")
    for site, size in rsites:
        print(f"    {size:10,.0f} B/turbine  {site}")
    report["memory"] = {
        "turbines": n,
        "ingested_bytes_per_turbine": per,
        "ingested_store_bytes_per_turbine": store,
        "ingested_sites": sites,
        "restored_bytes_per_turbine": rper,
        "restored_store_bytes_per_turbine": rstore,
        "restored_sites": rsites,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=Path, default=Path("registry"), help="holds the production model")
    ap.add_argument("--only", choices=("10min", "1s", "memory"), action="append", help="sections to run")
    ap.add_argument("--batches", type=int, default=6, help="timed batches per pass (default 6)")
    ap.add_argument("--repeat", type=int, default=3, help="passes; the best is reported (default 3)")
    ap.add_argument("--memory", type=int, default=10_000, help="turbines of the memory section")
    ap.add_argument("--top", type=int, default=15, help="allocation sites shown by the memory section")
    ap.add_argument("--profile", type=int, default=0, help="cProfile one more pass; show N functions")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/bench-processing"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from models.feature_kernels import warm_up

    warm_up()
    sections = args.only or ["10min", "1s", "memory"]
    report: dict[str, Any] = {"commit": os.environ.get("BENCH_COMMIT"), "at": datetime.now(UTC).isoformat()}
    if "10min" in sections:
        bench_stream("10min", args, 600, report)
    if "1s" in sections:
        bench_stream("1s", args, 1, report)
    if "memory" in sections:
        bench_memory(args, report)
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
