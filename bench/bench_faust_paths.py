"""Where faust's per-message path spends its time, and what consuming differently inside faust gives.

Plain script (real Kafka from ``deploy/local/stack.sh``; no database)::

    .venv/bin/python bench/bench_faust_paths.py                 # 100,000 events, every path + profile
    .venv/bin/python bench/bench_faust_paths.py --quick         # 40,000 events
    .venv/bin/python bench/bench_faust_paths.py --json out.json

One topic (3 partitions) is pre-loaded with scorer-shaped readings (``bench_scorer.synthetic_events``),
then each path reads ALL of it and decodes every value with ``orjson.loads``; events/s from the first
record to the last, each path in its own process (one faust app each, fresh consumer group):

a. ``bare``: aiokafka ``getmany`` (the baseline every ratio is against);
b. ``agent_iter``: a trivial faust agent, ``async for value in stream`` (raw values, auto-ack);
c. ``agent_take`` / ``agent_noack_take``: ``stream.take`` batches, and ``stream.noack_take`` + one
   ``stream.ack`` per event (what ``scorer/agents.py`` does);
d. ``agent_events``: ``stream.noack().events()`` with a manual ``stream.ack`` per event;
e. ``consumer_getmany`` / ``consumer_batch``: inside the same faust app, the consumer's drain loop
   (``Consumer._drain_messages``, run by faust's Fetcher service) replaced in a ``Consumer`` subclass:
   ``consumer_getmany`` iterates faust's own ``Consumer.getmany`` (ConsumerMessage objects, generation
   and flow checks, ``track_message``/``ack`` per message, so offsets are committed as usual);
   ``consumer_batch`` takes the fetched record batch whole (``_wait_next_records``) and acks the
   batch's last offset per partition. Both skip the Conductor -> channel queue -> stream hop.

``--profile`` (default on) runs the trivial agent (b) once more under cProfile (main thread only, where
faust's per-message path runs; the aiokafka fetch runs in faust's consumer thread) from its first
event to its last, and prints the functions with the largest own time and their share.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import orjson  # noqa: E402
from bench_scorer import (  # noqa: E402
    BOOTSTRAP,
    bare_consume,
    delete_topic_family,
    free_port,
    make_topic,
    publish,
    synthetic_events,
)

MODES = (
    "agent_iter",
    "agent_take",
    "agent_noack_take",
    "agent_events",
    "consumer_getmany",
    "consumer_batch",
)
LABELS = {
    "bare": "a. bare aiokafka getmany + loads",
    "agent_iter": "b. faust agent: async for value in stream",
    "agent_take": "c. faust agent: stream.take(20000, 0.1)",
    "agent_noack_take": "c. faust agent: noack_take + ack/event (scorer)",
    "agent_events": "d. faust agent: noack().events() + manual ack",
    "consumer_getmany": "e. faust app, Consumer.getmany drain (no stream)",
    "consumer_batch": "e. faust app, record-batch drain (no stream)",
}
BATCH = 20_000


# ---------------------------------------------------------------------------------------------- child
class _Counter:
    """Counts decoded events in the child; prints the rate and ends the process at ``expect``."""

    def __init__(self, expect: int, profile_to: str | None, started_file: str | None = None) -> None:
        self.expect = expect
        self.started_file = started_file
        self.n = 0
        self.t0 = 0.0
        self.profile_to = profile_to
        self.prof: cProfile.Profile | None = None

    def start(self) -> None:
        if self.t0 == 0.0:
            self.t0 = time.perf_counter()
            if self.started_file:
                Path(self.started_file).write_text(str(os.getpid()))
            if self.profile_to:
                self.prof = cProfile.Profile()
                self.prof.enable()

    def add(self, k: int) -> None:
        self.n += k
        if self.n >= self.expect:
            took = time.perf_counter() - self.t0
            if self.prof is not None:
                self.prof.disable()
                self.prof.dump_stats(self.profile_to)  # type: ignore[arg-type]
            print(f"RESULT {self.n} {took:.4f}", flush=True)
            os._exit(0)


def child(mode: str, topic: str, expect: int, profile_to: str | None, started_file: str | None) -> None:
    import faust
    from faust.transport.drivers import aiokafka as driver

    counter = _Counter(expect, profile_to, started_file)
    loads = orjson.loads

    if mode.startswith("consumer_"):
        base = driver.Consumer

        class BatchDrainConsumer(base):  # type: ignore[misc, valid-type]
            """Faust's consumer with its per-message drain loop replaced (everything else unchanged)."""

            async def _drain_messages(self, fetcher: Any) -> None:
                stopped = self._stopped.is_set
                fetcher_stopped = fetcher._stopped.is_set
                while not (stopped() or fetcher_stopped()):
                    if mode == "consumer_getmany":
                        k = 0
                        ait: AsyncIterator[Any] = self.getmany(timeout=1.0)
                        async for _tp, message in ait:
                            counter.start()
                            self.track_message(message)
                            loads(message.value)
                            self.ack(message)
                            k += 1
                        counter.add(k)
                    else:
                        records, _active = await self._wait_next_records(1.0)
                        if not records:
                            continue
                        counter.start()
                        k = 0
                        gen = self.app.consumer_generation_id
                        for tp, recs in records.items():
                            for r in recs:
                                loads(r.value)
                            k += len(recs)
                            # ack the batch's last offset: faust commits it with its commit handler
                            last = self._to_message(tp, recs[-1])
                            last.generation_id = gen
                            self.track_message(last)
                            self.ack(last)
                        counter.add(k)
                    await asyncio.sleep(0)

        driver.Transport.Consumer = BatchDrainConsumer

    app = faust.App(
        f"{topic}-{mode}-{uuid.uuid4().hex[:4]}",  # own group; its topics are deleted with the topic
        broker=f"kafka://{BOOTSTRAP}",
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        web_port=free_port(),  # faust binds its web port even when disabled; 6066 may be taken
        stream_wait_empty=False,
        stream_buffer_maxsize=16384,
        consumer_max_fetch_size=8 << 20,
        consumer_auto_offset_reset="earliest",
        datadir=tempfile.mkdtemp(prefix=f"{topic}-{mode}-"),  # removed with the topic
    )
    src = app.topic(topic, value_serializer="raw", key_serializer="raw")

    @app.agent(src)
    async def agent(stream: Any) -> None:
        if mode == "agent_iter":
            async for value in stream:
                counter.start()
                loads(value)
                counter.add(1)
        elif mode == "agent_take":
            async for values in stream.take(BATCH, within=0.1):
                counter.start()
                for v in values:
                    loads(v)
                counter.add(len(values))
        elif mode == "agent_noack_take":
            async for events in stream.noack_take(BATCH, within=0.1):
                counter.start()
                for ev in events:
                    loads(ev.message.value)
                    await stream.ack(ev)
                counter.add(len(events))
        elif mode == "agent_events":
            manual = stream.noack()
            async for ev in manual.events():
                counter.start()
                loads(ev.value)
                await manual.ack(ev)
                counter.add(1)
        else:  # consumer_*: the subclassed drain loop consumes; this agent only subscribes the topic
            async for _ in stream:
                pass

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


# ---------------------------------------------------------------------------------------------- parent
def run_child(mode: str, topic: str, expect: int, profile_to: str | None = None) -> float:
    cmd = [sys.executable, __file__, "--child", mode, "--topic", topic, "--expect", str(expect)]
    if profile_to:
        cmd += ["--profile-to", profile_to]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    for line in (out.stdout + out.stderr).splitlines():
        if "RESULT " in line:  # faust redirects stdout into its log format
            n, took = line.split("RESULT ", 1)[1].split()[:2]
            return int(n) / float(took)
    raise RuntimeError(f"{mode} failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")


def run_child_pyspy(py_spy: str, topic: str, expect: int, out: str, rate: int) -> float:
    """The trivial agent (b) sampled by py-spy from its first event to its exit (no pause of the target)."""
    started = out + ".started"
    cmd = [sys.executable, __file__, "--child", "agent_iter", "--topic", topic, "--expect", str(expect)]
    proc = subprocess.Popen(
        [*cmd, "--started-file", started],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not os.path.exists(started):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("agent_iter child ended before its first event")
        time.sleep(0.05)
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(proc.pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--threads",
            "--nonblocking",
            "--output",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    text, _ = proc.communicate(timeout=900)
    spy.wait(60)
    for line in text.splitlines():
        if "RESULT " in line:
            n, took = line.split("RESULT ", 1)[1].split()[:2]
            return int(n) / float(took)
    raise RuntimeError(f"agent_iter under py-spy failed: {text[-2000:]}")


def pyspy_summary(path: str, top: int) -> dict[str, Any]:
    """Samples of the thread running the agent (faust's event loop): own share of each function."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0]
        threads[thread] = threads.get(thread, 0) + int(count)
        if not any("child (" in f and "bench_faust_paths" in f for f in frames):
            continue  # aiokafka's consumer thread, faust's other threads
        n = int(count)
        total += n
        leaf = _frame(frames[-1])
        own[leaf] = own.get(leaf, 0) + n
        for f in set(_frame(f) for f in frames[1:]):
            incl[f] = incl.get(f, 0) + n
    groups: dict[str, int] = {}
    for f, n in own.items():
        g = _group(f)
        groups[g] = groups.get(g, 0) + n
    pick = ("faust/", "mode/", "asyncio/", "aiokafka/", "orjson")
    return {
        "tool": "py-spy (sampling, --nonblocking)",
        "samples_main_thread": total,
        "samples_all_threads": sum(threads.values()),
        "top": [
            {"function": f, "share": n / total, "samples": n}
            for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]
        ],
        "inclusive": [
            {"function": f, "share": n / total}
            for f, n in sorted(incl.items(), key=lambda kv: -kv[1])
            if any(p in f for p in pick) and n < 0.95 * total  # below the loop's own entry frames
        ][:top],
        "by_package": dict(sorted(((g, n / total) for g, n in groups.items()), key=lambda x: -x[1])),
    }


def _frame(f: str) -> str:
    """``func (path:line)`` -> ``pkg/module.py:func`` (site-packages prefix cut, line dropped)."""
    func, _, loc = f.partition(" (")
    path = loc.rstrip(")").rsplit(":", 1)[0]
    path = path.split("site-packages/")[-1].split("/lib/python3.11/")[-1]
    return f"{path}:{func}"


def profile_summary(path: str, top: int) -> dict[str, Any]:
    st = pstats.Stats(path)
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())  # own time of every function = the profiled wall time
    rows = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        rows.append((tottime, ncalls, cumtime, _short(file, line, func)))
    rows.sort(reverse=True)
    groups: dict[str, float] = {}
    for (file, _line, _func), v in raw.items():
        g = _group(file)
        groups[g] = groups.get(g, 0.0) + v[2]
    return {
        "tool": "cProfile (deterministic; its per-call cost inflates small functions)",
        "profiled_s": total,
        "top": [
            {"function": name, "own_s": t, "share": t / total, "calls": n, "cum_s": c}
            for t, n, c, name in rows[:top]
        ],
        "by_package": dict(sorted(((g, t / total) for g, t in groups.items()), key=lambda x: -x[1])),
    }


def _short(file: str, line: int, func: str) -> str:
    if file == "~":
        return func
    p = file.split("site-packages/")[-1].split("/lib/python3.11/")[-1]
    return f"{p}:{line}({func})"


def _group(file: str) -> str:
    if file == "~":
        return "builtins/C"
    for key in ("faust", "mode", "aiokafka", "asyncio", "orjson", "contextlib", "weakref", "typing"):
        if f"/{key}/" in file or file.endswith(f"/{key}.py") or f"{key}/" in file.split("site-packages/")[-1]:
            return key
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--turbines", type=int, default=1_000)
    ap.add_argument("--quick", action="store_true", help="40,000 events")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument(
        "--profiler",
        choices=["py-spy", "cprofile"],
        default="py-spy",
        help="py-spy (sampling; on PATH or beside this Python) or cProfile (deterministic, slows asyncio)",
    )
    ap.add_argument("--py-spy", default=None, help="path of the py-spy binary")
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--commit", default=None, help="commit label when the tree is not a git checkout")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--profile-to", help=argparse.SUPPRESS)
    ap.add_argument("--started-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.topic, args.expect, args.profile_to, args.started_file)
        return
    if args.quick:
        args.events = 40_000
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}; known: {', '.join(MODES)}")
    msgs = synthetic_events(args.turbines, max(1, args.events // args.turbines), datetime.now(UTC))
    n = len(msgs)
    topic = make_topic(3)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    commit = args.commit or commit or "unknown"
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "events": n,
        "cpus": os.cpu_count(),
        "events_per_s": {},
    }
    try:
        took = publish(topic, msgs)
        print(f"{n:,} events of {args.turbines:,} turbines on {topic} (3 partitions), loaded in {took:.1f}s")
        rates: dict[str, float] = results["events_per_s"]
        rates["bare"] = asyncio.run(bare_consume(topic, n))
        for m in modes:
            rates[m] = run_child(m, topic, n)
            print(f"  {LABELS[m]:<50} {rates[m]:>10,.0f} events/s", flush=True)
        if not args.no_profile:
            with tempfile.TemporaryDirectory() as d:
                spy = (
                    args.py_spy
                    or shutil.which("py-spy")
                    or shutil.which("py-spy", path=str(Path(sys.executable).parent))
                )
                if args.profiler == "py-spy" and spy:
                    path = os.path.join(d, "agent_iter.txt")
                    rates["agent_iter_profiled"] = run_child_pyspy(spy, topic, n, path, args.rate)
                    results["profile"] = pyspy_summary(path, args.top)
                else:
                    if args.profiler == "py-spy":
                        print("py-spy not found (pip install py-spy, or --py-spy PATH): using cProfile")
                    path = os.path.join(d, "agent_iter.prof")
                    rates["agent_iter_profiled"] = run_child("agent_iter", topic, n, profile_to=path)
                    results["profile"] = profile_summary(path, args.top)
    finally:
        delete_topic_family(topic)

    bare = rates["bare"]
    print(f"\nevents/s, ratio to (a) in this run (commit {commit}, {os.cpu_count()} cpus):")
    for m, r in rates.items():
        if m == "agent_iter_profiled":
            continue
        print(f"  {LABELS[m]:<50} {r:>10,.0f}  {r / bare:6.3f}x of (a)")
    ratios = {m: r / bare for m, r in rates.items()}
    results["ratio_to_bare"] = ratios
    if "agent_iter" in rates:
        results["ratio_to_agent_iter"] = {m: r / rates["agent_iter"] for m, r in rates.items()}
        print("  ratio to (b): " + ", ".join(f"{m} {r / rates['agent_iter']:.2f}x" for m, r in rates.items()))
    prof = results.get("profile")
    if prof:
        print(
            f"\nprofile of (b), {prof['tool']}: {rates['agent_iter_profiled']:,.0f} events/s while profiled "
            f"(unprofiled {rates.get('agent_iter', float('nan')):,.0f}); main thread (faust's loop) only"
        )
        print("  own time by package: " + ", ".join(f"{g} {s:.0%}" for g, s in prof["by_package"].items()))
        print("  own share  function")
        for row in prof["top"]:
            print(f"  {row['share']:>8.1%}  {row['function']}")
        if prof.get("inclusive"):
            print("  inclusive share (faust, mode, asyncio, aiokafka, orjson frames)")
            for row in prof["inclusive"]:
                print(f"  {row['share']:>8.1%}  {row['function']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
