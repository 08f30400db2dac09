"""Scorer benchmark: every target of issue 11 in ONE run, each figure beside its same-run baseline.

Plain script (real Kafka + PostgreSQL from ``deploy/local/stack.sh``; fresh topics and database, deleted
at the end)::

    .venv/bin/python bench/bench_scorer.py --registry registry --json out.json
    .venv/bin/python bench/bench_scorer.py --quick --registry registry       # smaller, a few minutes
    .venv/bin/python bench/bench_scorer.py --only sweep --registry registry

What is measured (targets are judged PASS/MISS; the ratio column is measured / baseline):
1. throughput: a topic pre-loaded with ``--events`` readings of ``--turbines`` turbines; the real
   worker (``python -m scorer worker`` subprocess: windows, rescoring, every write to PostgreSQL) is
   timed from 10 % to 90 % of the events counted by its ``/metrics``. Baselines on the same topic: a
   bare aiokafka ``getmany`` + ``orjson.loads`` loop and a trivial faust agent (``noack_take`` +
   ``loads`` + ``ack``, the worker's consuming pattern). Targets: >= 20,000 events/s, >= 0.8x the agent.
2. latency: ``--rate`` events/s over ``--latency-turbines`` turbines for ``--seconds``; the worker's
   histogram (Kafka record timestamp -> its batch durably written: the event in its window and, when
   due, its turbine rescored and written) beside the bare loop's record timestamp -> decoded on the same
   paced stream. Twice: live traffic (event time = send time, each turbine every turbines/rate s;
   rescoring coalesced by event time, issue 11 point 4; steady state: one reading per turbine is sent
   and scored first, only the paced run's share of the histogram is judged) against p99 <= 250 ms (the
   exact le=0.25 bucket), and a history replay at the same rate (10-min readings: every touched turbine is
   rescored in every batch), reported only.
3. memory: RSS growth of the worker process after N turbines were ingested (28 readings each, one every
   6 h over 7 days), divided by N, at each of ``--memory-sizes``, beside ``WindowStore.nbytes()/N`` for
   the same readings when the store exists. Target: <= 20 KB per turbine.
4. sweep: in a child process per size, an in-process ``ScorerRuntime`` (the worker's own code, no faust
   app) holds N turbines restored from real checkpoint rows (one turbine's 7 days of 10-min readings
   through ``BatchProcessor`` + ``checkpoint``, copied N times in ``scorer_windows``), then runs
   ``run_sweep`` (claim, plan, features, predict, policy, rows, DB write). Parts measured again on the
   same windows: features, data quality, predict+policy (``score_features``), the DB write (the sweep's
   own ``sweep_finish`` timing); baseline: the bare model predict of the same rows. Restore: the
   worker's restore of N checkpointed windows (DB read + load into its state) beside the raw read of
   the same rows. Targets at 10,000: sweep <= 1 s, restore <= 0.5 s. At 100,000 (windows installed in
   memory, no DB copy): time and peak RSS of the process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402

from common.contracts import SIGNALS, make_event_id  # noqa: E402

ADMIN_URL = os.environ.get(
    "COCKPIT_BENCH_ADMIN_URL", "postgresql://cockpit_admin:cockpit_admin@127.0.0.1:5433/postgres"
)
BOOTSTRAP = os.environ.get("COCKPIT_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


# ---------------------------------------------------------------------------------------------- setup
def fresh_db() -> tuple[str, str]:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from common.db import migrate

    name = f"cockpit_bench_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER cockpit_writer")
    params = conninfo_to_dict(ADMIN_URL)
    params["dbname"] = name
    with psycopg.connect(make_conninfo(**params), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute("GRANT CREATE ON SCHEMA public TO cockpit_writer")
    params.update(user="cockpit_writer", password="cockpit_writer")
    url = make_conninfo(**params)  # type: ignore[arg-type]
    migrate(url)
    return name, url


def drop_db(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def make_topic(partitions: int = 3) -> str:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"bench-scorer-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    admin.close()
    return name


def delete_topics(names: list[str]) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    with contextlib.suppress(Exception):  # already gone
        admin.delete_topics(names)
    admin.close()


def delete_topic_family(topic: str) -> None:
    """``topic`` and every topic named after it: the worker's -dlq/-cmd, faust's assignor topics."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        family = [t for t in admin.list_topics() if t == topic or t.startswith(topic + "-")]
    finally:
        admin.close()
    delete_topics(family)
    for d in Path(tempfile.gettempdir()).glob(topic + "-*"):  # data dirs of the faust apps on it
        shutil.rmtree(d, ignore_errors=True)


def ensure_registry(path: Path | None) -> Path:
    if path is not None and (path / "PRODUCTION").exists():
        return path
    from models.pipeline import train_and_register
    from models.train import TrainSettings

    reg = path or Path(tempfile.mkdtemp(prefix="bench-registry-"))
    print(f"training a tiny model into {reg} ...", flush=True)
    train_and_register(
        reg,
        TrainSettings(
            n_turbines=12,
            days=240,
            seed=7,
            holdout_turbines=2,
            holdout_days=20,
            holdout_seed=1007,
            sample_every_hours=6.0,
            threads=1,
        ),
        promote_if="always",
    )
    return reg


def synthetic_events(
    turbines: int, per_turbine: int, end: datetime, step_s: int = 600, first: int = 0, prefix: str = "BT"
) -> list[tuple[bytes, bytes]]:
    """Time-major readings (every turbine at t, then t+step...) as the fleet would send them."""
    rng = random.Random(1 + first)
    tids = [f"{prefix}-{i:05d}" for i in range(first, first + turbines)]
    start = end - timedelta(seconds=step_s * per_turbine)
    out = []
    for k in range(per_turbine):
        t = start + timedelta(seconds=step_s * k)
        stamp = t.isoformat()
        for tid in tids:
            d: dict[str, object] = {
                "schema_version": 1,
                "event_id": make_event_id(tid, t),
                "turbine_id": tid,
                "site_id": f"SITE-{tid[-1]}",
                "event_time": stamp,
            }
            wind = 4 + 8 * rng.random()
            for name in SIGNALS:
                d[name] = round(40 + 20 * rng.random(), 2)
            d.update(
                wind_speed_ms=round(wind, 2),
                power_kw=round(min(2250.0, 15 * wind**3), 1),
                ambient_temp_c=round(8 + 4 * rng.random(), 2),
                wind_direction_deg=180.0,
                nacelle_direction_deg=180.0,
                rotor_rpm=12.0,
                generator_rpm=1500.0,
                pitch_angle_deg=2.0,
                vibration_mm_s=round(2 + rng.random(), 2),
                pitch_hydraulic_pressure_bar=180.0,
                status_code=0,
            )
            out.append((tid.encode(), orjson.dumps(d)))
    return out


def publish(topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, batch_size=1 << 20)
    t0 = time.perf_counter()
    for k, v in messages:
        p.send(topic, key=k, value=v)
    p.flush(120)
    p.close()
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProc:
    def __init__(self, db_url: str, topic: str, registry: Path, log: Path, **env: object) -> None:
        self.port = free_port()
        full = {
            **os.environ,
            "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "COCKPIT_TELEMETRY_TOPIC": topic,
            "COCKPIT_DEAD_LETTER_TOPIC": topic + "-dlq",
            "COCKPIT_COMMAND_TOPIC": topic + "-cmd",
            "COCKPIT_DATABASE_URL": db_url,
            "COCKPIT_REGISTRY_DIR": str(registry),
            "COCKPIT_CONSUMER_GROUP": f"bench-{uuid.uuid4().hex[:6]}",
            "COCKPIT_WEB_PORT": str(self.port),
            "COCKPIT_DATA_DIR": tempfile.mkdtemp(prefix=f"{topic}-worker-"),  # removed with the topic
            "COCKPIT_LOG_LEVEL": os.environ.get("COCKPIT_BENCH_LOG_LEVEL", "WARNING"),
        }
        full.update({f"COCKPIT_{k.upper()}": str(v) for k, v in env.items()})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scorer", "worker"],
            cwd=ROOT,
            env=full,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def rss(self) -> int:
        """Resident set size of the worker process, bytes (/proc/<pid>/status VmRSS)."""
        return _rss_of(self.proc.pid)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text.splitlines():
            if line and not line.startswith("#"):
                key, val = line.rsplit(" ", 1)
                out[key] = float(val)
        return out

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("worker exited")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("worker not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def histogram_quantile(m: dict[str, float], name: str, q: float) -> float:
    buckets = sorted(
        (float(k.split('le="')[1].split('"')[0]), v) for k, v in m.items() if k.startswith(name + "_bucket")
    )
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return buckets[-1][0]


# ---------------------------------------------------------------------------------------------- bare loop
async def bare_consume(topic: str, expect: int, latencies: list[float] | None = None) -> float:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await c.start()
    n = 0
    t_first = None
    loads = orjson.loads
    try:
        while n < expect:
            batch = await c.getmany(timeout_ms=1000, max_records=20000)
            for msgs in batch.values():
                for m in msgs:
                    loads(m.value)
                    if latencies is not None:
                        latencies.append(time.time() - m.timestamp / 1000)
                n += len(msgs)
                if t_first is None:
                    t_first = time.perf_counter()
    finally:
        await c.stop()
    return n / (time.perf_counter() - (t_first or time.perf_counter()))


def faust_probe(topic: str, expect: int) -> None:
    """Child-process mode: a trivial faust agent (noack_take + orjson.loads + ack) on ``topic``.

    Separates the framework's per-message cost from the scorer's own work; prints events/s and exits.
    """
    import faust

    app = faust.App(
        f"{topic}-probe-{uuid.uuid4().hex[:4]}",  # own group; its topics are deleted with the topic
        broker=f"kafka://{BOOTSTRAP}",
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        web_port=free_port(),  # faust binds its web port even when disabled; 6066 may be taken
        stream_wait_empty=False,
        stream_buffer_maxsize=16384,
        consumer_max_fetch_size=8 << 20,  # as the worker (and the bare loop's max_partition_fetch_bytes)
        consumer_auto_offset_reset="earliest",
        datadir=tempfile.mkdtemp(prefix=f"{topic}-probe-"),  # removed with the topic
    )
    state: dict[str, float] = {"n": 0}

    @app.agent(app.topic(topic, value_serializer="raw", key_serializer="raw"))
    async def probe(stream: Any) -> None:
        async for events in stream.noack_take(20_000, within=0.1):
            state.setdefault("t0", time.perf_counter())
            for ev in events:
                orjson.loads(ev.message.value)
                await stream.ack(ev)
            state["n"] += len(events)
            if state["n"] >= expect:
                print(f"PROBE {state['n'] / (time.perf_counter() - state['t0']):.0f}", flush=True)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


def run_faust_probe(topic: str, expect: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--probe-topic", topic, "--probe-expect", str(expect)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    for line in (out.stdout + out.stderr).splitlines():
        if "PROBE " in line:  # faust redirects stdout into its log format
            return float(line.split("PROBE ", 1)[1].split()[0])
    raise RuntimeError(f"faust probe failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")


def paced_publish(topic: str, rate: int, seconds: float, messages: list[tuple[bytes, bytes]]) -> int:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks=1, linger_ms=2, batch_size=256 << 10)
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    t0 = time.perf_counter()
    i = 0
    total = int(rate * seconds)
    while i < total:
        for k, v in messages[i : i + per_tick]:
            p.send(topic, key=k, value=v)
        i += per_tick
        delay = t0 + (i / rate) - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    p.flush(60)
    p.close()
    return i


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# ---------------------------------------------------------------------------------------------- report
def _rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Report:
    """Every figure of the run, each beside its same-run baseline, with PASS/MISS against its target."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self.info: dict[str, Any] = {}

    def add(
        self,
        section: str,
        metric: str,
        measured: float,
        unit: str,
        *,
        baseline: float | None = None,
        baseline_label: str = "",
        target: tuple[str, float] | None = None,
        verdict_value: float | None = None,
        note: str = "",
    ) -> None:
        """``target`` = ("<=" | ">=", limit), judged on ``verdict_value`` (default: ``measured``)."""
        verdict = ""
        if target is not None:
            v = measured if verdict_value is None else verdict_value
            ok = v <= target[1] if target[0] == "<=" else v >= target[1]
            verdict = "PASS" if ok else "MISS"
        self.rows.append(
            {
                "section": section,
                "metric": metric,
                "measured": measured,
                "unit": unit,
                "baseline_label": baseline_label,
                "baseline": baseline,
                "ratio": (measured / baseline) if baseline else None,
                "target": None if target is None else f"{target[0]} {_fmt(target[1], unit)}",
                "verdict": verdict,
                "note": note,
            }
        )
        base = f"{_fmt(baseline, unit)} ({baseline_label})" if baseline is not None else ""
        ratio = f"{measured / baseline:.3f}x" if baseline else ""
        print(
            f"  {metric:<46} {_fmt(measured, unit):>16} | {base:<44} {ratio:>8} "
            f"{(self.rows[-1]['target'] or ''):>14} {verdict}",
            flush=True,
        )

    def table(self) -> str:
        head = (
            f"{'metric':<46} {'measured':>16}   {'baseline (same run)':<44} {'ratio':>8} "
            f"{'target':>14} verdict"
        )
        lines = [head, "-" * len(head)]
        section = None
        for r in self.rows:
            if r["section"] != section:
                section = r["section"]
                lines.append(f"[{section}]")
            base = r["baseline"]
            bl = f"{_fmt(base, str(r['unit']))} ({r['baseline_label']})" if base is not None else ""
            ratio = f"{r['ratio']:.3f}x" if r["ratio"] is not None else ""
            lines.append(
                f"{r['metric']:<46} {_fmt(r['measured'], str(r['unit'])):>16}   {bl:<44} {ratio:>8} "
                f"{r['target'] or '':>14} {r['verdict']}"
            )
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [
            "| metric | measured | baseline (same run) | ratio | target | verdict |",
            "|---|---:|---|---:|---|---|",
        ]
        for r in self.rows:
            base = r["baseline"]
            bl = f"{_fmt(base, str(r['unit']))} ({r['baseline_label']})" if base is not None else ""
            ratio = f"{r['ratio']:.3f}x" if r["ratio"] is not None else ""
            lines.append(
                f"| {str(r['metric']).strip()} | {_fmt(r['measured'], str(r['unit']))} | {bl} | {ratio} "
                f"| {r['target'] or ''} | {r['verdict']} |"
            )
        return "\n".join(lines)


def _fmt(v: object, unit: str) -> str:
    if v is None:
        return ""
    x = float(v)  # type: ignore[arg-type]
    if unit == "events/s":
        return f"{x:,.0f} ev/s"
    if unit == "s":
        return f"{x * 1000:,.0f} ms" if x < 10 else f"{x:,.1f} s"
    if unit == "KB":
        return f"{x:,.1f} KB"
    if unit == "MB":
        return f"{x:,.0f} MB"
    if unit == "x":
        return f"{x:.3f}x"
    if unit == "%":
        return f"{x:.2f} %"
    if x.is_integer():
        return f"{x:,.0f} {unit}".rstrip()
    return f"{x:,.3g} {unit}"


# ---------------------------------------------------------------------------------------------- parts
def bench_throughput(args: argparse.Namespace, registry: Path, db_url: str, tmp: Path, rep: Report) -> None:
    per = args.events // args.turbines
    msgs = synthetic_events(args.turbines, per, datetime.now(UTC))
    topic = make_topic(3)
    try:
        took = publish(topic, msgs)
        n = len(msgs)
        print(
            f"\n[throughput] {n:,} events of {args.turbines:,} turbines pre-loaded in {took:.1f}s", flush=True
        )
        bare = asyncio.run(bare_consume(topic, n))
        probe = run_faust_probe(topic, n)
        w = WorkerProc(db_url, topic, registry, tmp / "worker-throughput.log", batch_max_size=args.batch)
        spy: subprocess.Popen[bytes] | None = None
        spy_out = tmp / "worker.pyspy.txt"
        try:
            w.wait_ready()
            samples: list[tuple[float, float]] = []
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                done = w.metrics().get("scorer_events_consumed_total", 0.0)
                samples.append((time.perf_counter(), done))
                if done >= n:
                    break
                if done > 0 and spy is None and args.py_spy:
                    spy = subprocess.Popen(
                        [
                            args.py_spy,
                            "record",
                            "--pid",
                            str(w.proc.pid),
                            "--rate",
                            "100",
                            "--nonblocking",
                            "--format",
                            "raw",
                            "--threads",
                            "--output",
                            str(spy_out),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                time.sleep(0.2)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
                prof = rep.info["worker_profile"] = worker_profile(spy_out)
                print(f"  worker profile ({prof['samples']:,} samples): inclusive share")
                for f, share in prof["inclusive"][:15]:
                    print(f"    {share:6.1%}  {f}")
                print("  own share")
                for f, share in prof["own"][:12]:
                    print(f"    {share:6.1%}  {f}")
            t_start = next(t for t, d in samples if d > 0)
            t10 = next(t for t, d in samples if d >= 0.1 * n)
            t90 = next(t for t, d in samples if d >= 0.9 * n)
            overall = n / (samples[-1][0] - t_start)
            sustained = 0.8 * n / (t90 - t10)
            m = w.metrics()
        finally:
            w.stop()
        rep.add("throughput", "bare aiokafka getmany + orjson.loads", bare, "events/s")
        rep.add(
            "throughput",
            "trivial faust agent (noack_take+loads+ack)",
            probe,
            "events/s",
            baseline=bare,
            baseline_label="bare loop",
        )
        rep.add(
            "throughput",
            "scorer worker, sustained 10-90 %",
            sustained,
            "events/s",
            baseline=bare,
            baseline_label="bare loop",
            target=(">=", 20_000),
            note=f"{overall:,.0f} events/s overall (first to last durable batch)",
        )
        rep.add(
            "throughput",
            "scorer worker / trivial faust agent",
            sustained / probe,
            "x",
            baseline=None,
            target=(">=", 0.8),
        )
        batches = m.get("scorer_batch_size_count", 0)
        rep.info["throughput"] = {
            "events": n,
            "turbines": args.turbines,
            "batches": batches,
            "mean_batch": n / max(batches, 1),
            "overall_events_per_s": overall,
            "scoring_s": m.get('scorer_scoring_duration_seconds_sum{operation="stream_batch"}', 0.0),
            "batch_db_write_s": m.get('scorer_db_write_duration_seconds_sum{kind="stream_batch"}', 0.0),
            "checkpoint_s": m.get('scorer_db_write_duration_seconds_sum{kind="checkpoint"}', 0.0),
        }
        print(f"  worker parts: {rep.info['throughput']}")
    finally:
        delete_topic_family(topic)


def _wait_consumed(w: Any, n: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if w.metrics().get("scorer_events_consumed_total", 0) >= n:
            return
        time.sleep(0.3)


def live_events(turbines: int, total: int, start: datetime, rate: int) -> list[tuple[bytes, bytes]]:
    """Live traffic: event ``i`` is due to be sent at ``start + i / rate`` and carries that event time
    (each turbine reports every ``turbines / rate`` s), as a fleet streaming in real time would."""
    base = synthetic_events(turbines, total // turbines + 1, start)[:total]
    out = []
    for i, (k, v) in enumerate(base):
        d = orjson.loads(v)
        t = start + timedelta(seconds=i / rate)
        d["event_time"] = t.isoformat()
        d["event_id"] = make_event_id(d["turbine_id"], t)
        out.append((k, orjson.dumps(d)))
    return out


def bench_latency(args: argparse.Namespace, registry: Path, db_url: str, tmp: Path, rep: Report) -> None:
    """Two paced streams at ``--rate``: live traffic (event time = send time; the target) and a history
    replay at the same rate (10-min readings, so every event moves its turbine by 10 min and every
    touched turbine is rescored in every batch; reported, not judged)."""
    _latency_run(args, registry, db_url, tmp, rep, live=True)
    if not args.latency_live_only:
        _latency_run(args, registry, db_url, tmp, rep, live=False)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, every thread (/proc/<pid>/stat), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency_stages(m: dict[str, float]) -> dict[str, dict[str, float]]:
    """The worker's per-batch stage histograms (scorer/ingest.py STAGES; ``m`` the paced run's share):
    per stage, batches, mean and interpolated p99 (ms); the event loop's lag and gc pauses likewise."""
    from scorer.ingest import STAGES as STAGE_NAMES

    out: dict[str, dict[str, float]] = {}
    series = [
        (f'scorer_batch_stage_seconds{{stage="{st}"}}', f"stage {st}")
        for st in (*STAGE_NAMES, "flush")
    ] + [
        ("scorer_event_loop_lag_seconds", "event loop lag"),
        *((f'scorer_gc_pause_seconds{{generation="{g}"}}', f"gc gen{g}") for g in (0, 1, 2)),
    ]
    for key, label in series:
        name, _, lab = key.partition("{")
        lab = lab.rstrip("}")
        count = m.get(f"{name}_count{{{lab}}}" if lab else f"{name}_count", 0.0)
        if not count:
            continue
        total = m.get(f"{name}_sum{{{lab}}}" if lab else f"{name}_sum", 0.0)
        sub = {  # the series' buckets, its own label taken out (prometheus orders labels by name)
            k.replace("," + lab, "").replace(lab + ",", ""): v
            for k, v in m.items()
            if k.startswith(name + "_bucket{") and (not lab or f",{lab}" in k or f"{{{lab}," in k)
        }
        out[label] = {
            "n": count,
            "mean_ms": 1000 * total / count,
            "p99_ms": 1000 * histogram_quantile(sub, name, 0.99),
            "sum_s": total,
        }
    return out


def _latency_run(
    args: argparse.Namespace, registry: Path, db_url: str, tmp: Path, rep: Report, *, live: bool
) -> None:
    total = int(args.rate * args.seconds)
    turbines = args.latency_turbines
    mode = "live" if live else "replay"
    topic = make_topic(3)
    try:
        w = WorkerProc(db_url, topic, registry, tmp / f"worker-latency-{mode}.log")
        try:
            w.wait_ready()
            time.sleep(3)
            warm = 0
            bare_lat: list[float] = []
            if live:
                # Steady state: every turbine is seen once first (its state created, its first score
                # written), then the histogram is read again and only the paced run's share is judged.
                warm = turbines
                loop_thread = threading.Thread(
                    target=lambda: asyncio.run(bare_consume(topic, total + warm, bare_lat)), daemon=True
                )
                loop_thread.start()
                first = live_events(turbines, warm, datetime.now(UTC), args.rate)
                paced_publish(topic, args.rate, warm / args.rate, first)
                _wait_consumed(w, warm)
                time.sleep(1.0)
                m0 = w.metrics()
                start = datetime.now(UTC) + timedelta(seconds=2 + total / 100_000)
                msgs = live_events(turbines, total, start, args.rate)
                time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
            else:
                m0 = {}
                msgs = synthetic_events(turbines, total // turbines + 1, datetime.now(UTC))
                loop_thread = threading.Thread(
                    target=lambda: asyncio.run(bare_consume(topic, total, bare_lat)), daemon=True
                )
                loop_thread.start()
            cpu0, wall0, load0 = _cpu_seconds(w.proc.pid), time.monotonic(), os.getloadavg()[0]
            sent = paced_publish(topic, args.rate, args.seconds, msgs)
            _wait_consumed(w, warm + sent)
            time.sleep(0.5)
            m = w.metrics()
            cpu_s, wall_s = _cpu_seconds(w.proc.pid) - cpu0, time.monotonic() - wall0
            load1 = os.getloadavg()[0]
            loop_thread.join(60)
            bare_lat = bare_lat[warm:]
        finally:
            w.stop()
        name = "scorer_event_to_score_latency_seconds"
        # what the paced run alone added to the worker's cumulative counters
        m = {k: v - m0.get(k, 0.0) for k, v in m.items()}
        p50 = histogram_quantile(m, name, 0.5)
        p99 = histogram_quantile(m, name, 0.99)
        count = m.get(f"{name}_count", 0.0)
        within = m.get(f'{name}_bucket{{le="0.25"}}', 0.0) / count if count else 0.0
        rescored = m.get('scorer_stream_rescores_total{outcome="rescored"}', 0.0)
        deferred = m.get('scorer_stream_rescores_total{outcome="deferred"}', 0.0)
        what = "live traffic" if live else "history replay (10-min readings)"
        print(
            f"\n[latency {mode}] {sent:,} events paced at {args.rate:,}/s over {turbines:,} turbines ({what})"
        )
        rep.add("latency", f"{mode}: bare loop p50 (record ts -> decoded)", pct(bare_lat, 0.5), "s")
        rep.add("latency", f"{mode}: scorer p50 (record ts -> batch written)", p50, "s")
        rep.add("latency", f"{mode}: bare loop p99", pct(bare_lat, 0.99), "s")
        label = f"{mode}: scorer p99 at {args.rate:,}/s, {turbines:,} turbines"
        note = "verdict from the exact le=0.25 bucket; value interpolated in the histogram" + (
            "; at the top finite bucket (60 s): saturated, the true p99 is larger" if p99 >= 60 else ""
        )
        if live:
            rep.add(
                "latency",
                label,
                p99,
                "s",
                baseline=pct(bare_lat, 0.99),
                baseline_label="bare loop p99",
                target=("<=", 0.25),
                verdict_value=0.0 if within >= 0.99 else 1.0,
                note=note,
            )
        else:
            rep.add("latency", label, p99, "s", baseline=pct(bare_lat, 0.99), baseline_label="bare loop p99")
        rep.add("latency", f"{mode}: scorer share of events <= 250 ms", 100 * within, "%")
        rep.add(
            "latency",
            f"{mode}: rescorings written (coalescing)",
            rescored,
            "rescorings",
            note=f"deferred {deferred:,.0f}",
        )
        print(
            f"  {mode}: worker CPU during the paced run {cpu_s:.1f} s over {wall_s:.1f} s "
            f"({cpu_s / wall_s:.2f} cores, {1e6 * cpu_s / max(sent, 1):.0f} us per event); "
            f"load average {load0:.1f} -> {load1:.1f}"
        )
        stages = latency_stages(m)
        for label, st in stages.items():
            print(
                f"  {mode}: {label:<20} n {st['n']:>6,.0f}  mean {st['mean_ms']:7.1f} ms  "
                f"p99 {st['p99_ms']:7.1f} ms  total {st['sum_s']:6.2f} s"
            )
        rep.info[f"latency_{mode}"] = {
            "stages": stages,
            "worker_cpu_s": cpu_s,
            "paced_wall_s": wall_s,
            "load_average": [load0, load1],
            "sent": sent,
            "scored_events": count,
            "share_le_250ms": within,
            "rescored": rescored,
            "deferred": deferred,
        }
    finally:
        delete_topic_family(topic)


def worker_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """py-spy samples of the worker (all its busy threads): own and inclusive share per function."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = [_frame_name(f) for f in stack.split(";")[1:]]
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + k
        for f in set(frames):
            incl[f] = incl.get(f, 0) + k
    ours = ("scorer/", "models/", "common/", "psycopg", "faust/", "mode/", "aiokafka/", "orjson", "sklearn")
    return {
        "tool": "py-spy record --nonblocking --rate 100 (all busy threads of the worker)",
        "samples": total,
        "own": [(f, n / total) for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]],
        "inclusive": [
            (f, n / total)
            for f, n in sorted(incl.items(), key=lambda kv: -kv[1])
            if any(o in f for o in ours) and not any(e in f for e in _ENTRY_FRAMES)
        ][:top],
    }


_ENTRY_FRAMES = ("__main__", "scorer/cli.py", "execute_from_commandline", "Service._execute_task")


def _frame_name(f: str) -> str:
    func, _, loc = f.partition(" (")
    path = loc.rstrip(")").rsplit(":", 1)[0]
    path = path.split("site-packages/")[-1].split("/lib/python3.11/")[-1].split("/main/")[-1]
    return f"{path}:{func}"


MEMORY_EVENTS_PER_TURBINE = 28  # one reading every 6 h over 7 days
MEMORY_STEP_S = 6 * 3600
#: two checkpoint periods (checkpoint_interval_s 5 s; more than one trim period, malloc_trim_interval_s)
MEMORY_SETTLE_S = 10.0


#: Worker settings of the memory run beside the judged one: glibc's allocator (COCKPIT_ALLOCATOR=glibc,
#: tuned by common/allocator.py as before jemalloc), the same readings in the same run.
MEMORY_GLIBC = {"allocator": "glibc"}


def bench_memory(registry: Path, db_url: str, tmp: Path, sizes: list[int], rep: Report) -> None:
    """RSS growth of the worker after N turbines were ingested, divided by N; the store's own nbytes.

    Twice: the worker as configured (judged: jemalloc when installed, see common/jemalloc.py), then
    with glibc's allocator, tuned (reported: the same readings in the same run).
    Each reading also splits the RSS growth by mapping kind (``rss_breakdown``)."""
    end = datetime.now(UTC)
    for tuned in (True, False):
        _memory_run(registry, db_url, tmp, sizes, rep, end, tuned)


def _memory_run(
    registry: Path, db_url: str, tmp: Path, sizes: list[int], rep: Report, end: datetime, tuned: bool
) -> None:
    topic = make_topic(3)
    suffix = "" if tuned else " (glibc's allocator, tuned)"
    print(
        f"\n[memory{suffix}] worker RSS after N turbines ({MEMORY_EVENTS_PER_TURBINE} readings each, one "
        "every 6 h over 7 days), minus its RSS after 10 warm-up turbines",
        flush=True,
    )
    try:
        env: dict[str, object] = {} if tuned else dict(MEMORY_GLIBC)
        w = WorkerProc(db_url, topic, registry, tmp / f"worker-memory{'' if tuned else '-glibc'}.log", **env)
        try:
            w.wait_ready()
            sent = 0

            def ingest(msgs: list[tuple[bytes, bytes]]) -> None:
                nonlocal sent
                publish(topic, msgs)
                sent += len(msgs)
                deadline = time.monotonic() + 900
                while w.metrics().get("scorer_events_consumed_total", 0) < sent:
                    if time.monotonic() > deadline:
                        raise RuntimeError("worker did not consume the memory test's events in 900 s")
                    time.sleep(0.3)
                # Steady state: the checkpoint covering these turbines committed (its snapshot copy of
                # the changed rows and their coded states are transient, freed after the commit;
                # their peak is reported apart), then one trim period.
                # (windows written >= turbines, then no new window written for two checkpoint periods)
                turbines = sent // MEMORY_EVENTS_PER_TURBINE
                seen = -1.0
                while True:
                    written = w.metrics().get("scorer_checkpoint_windows_total", 0)
                    if written >= turbines and written == seen:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("worker did not checkpoint the memory test's turbines in 900 s")
                    seen = written
                    time.sleep(MEMORY_SETTLE_S)

            ingest(synthetic_events(10, MEMORY_EVENTS_PER_TURBINE, end, MEMORY_STEP_S, prefix="MW"))
            rss0, parts0 = w.rss(), rss_breakdown(w.proc.pid)
            done = 0
            prev_rss, prev_n = rss0, 0
            for n in sizes:
                ingest(synthetic_events(n - done, MEMORY_EVENTS_PER_TURBINE, end, MEMORY_STEP_S, first=done))
                done = n
                rss, parts = w.rss(), rss_breakdown(w.proc.pid)
                store = store_nbytes_per_turbine(n, end)
                peak = _peak_rss_of(w.proc.pid)
                kinds = sorted(set(parts) | set(parts0))
                growth = {k: (parts.get(k, 0) - parts0.get(k, 0)) / n for k in kinds}
                split = ", ".join(f"{k} {v / 1024:.1f}" for k, v in growth.items() if abs(v) >= 102)
                print(f"  N={n:,}: KB/turbine by mapping: {split}", flush=True)
                rep.add(
                    "memory",
                    f"worker RSS growth / turbine at N={n:,}{suffix}",
                    (rss - rss0) / n / 1024,
                    "KB",
                    baseline=None if store is None else store / 1024,
                    baseline_label="store nbytes()/N" if store is not None else "",
                    # judged at the largest N (and the marginal cost below): at a small N the
                    # worker's batch-sized buffers (~5 MB, whatever the fleet) dominate the division
                    target=("<=", 20.0) if tuned and n == max(sizes) else None,
                    note=f"RSS {rss0 / 2**20:.0f} -> {rss / 2**20:.0f} MB, peak {peak / 2**20:.0f}",
                )
                if prev_n:
                    rep.add(
                        "memory",
                        f"marginal RSS / turbine, N={prev_n:,} -> {n:,}{suffix}",
                        (rss - prev_rss) / (n - prev_n) / 1024,
                        "KB",
                        target=("<=", 20.0) if tuned and n == max(sizes) else None,
                    )
                rep.info.setdefault("memory" if tuned else "memory_glibc", {})[str(n)] = {
                    "rss0_bytes": rss0,
                    "rss_bytes": rss,
                    "peak_rss_bytes": peak,
                    "store_nbytes_per_turbine": store,
                    "growth_bytes_per_turbine_by_mapping": growth,
                }
                prev_rss, prev_n = rss, n
        finally:
            w.stop()
    finally:
        delete_topic_family(topic)


def rss_breakdown(pid: int) -> dict[str, int]:
    """Resident bytes of a process by mapping kind (/proc/<pid>/smaps): ``heap`` (glibc's main heap),
    ``malloc arenas`` (its other heaps: 64 MB-aligned anonymous mappings), ``1 MB anon`` (CPython's
    object arenas), ``other anon`` (mmapped blocks: numpy arrays above the mmap threshold, stacks...),
    ``files`` (code, libraries, mapped files)."""
    out: dict[str, int] = {}
    kind, prev_end, prev_kind = "", -1, ""
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        head = line.split(maxsplit=5)
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            name = head[5].strip() if len(head) > 5 else ""
            if name == "[heap]":
                kind = "heap"
            elif name.startswith("/"):
                kind = "files"
            elif name:
                kind = "other"
            elif lo % (64 << 20) == 0 or (prev_kind == "malloc arenas" and prev_end == lo):
                kind = "malloc arenas"
            elif hi - lo == 1 << 20:
                kind = "1 MB anon"
            else:
                kind = "other anon"
            prev_end, prev_kind = hi, kind
        elif line.startswith("Rss:"):
            out[kind] = out.get(kind, 0) + int(line.split()[1]) * 1024
    return out


def _peak_rss_of(pid: int) -> int:
    """Peak resident set size of a process so far, bytes (/proc/<pid>/status VmHWM): the memory run's
    steady-state RSS leaves out the transient copies (fetched records, a checkpoint's snapshot)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def store_nbytes_per_turbine(n: int, end: datetime) -> float | None:
    """``WindowStore.nbytes()/n`` with n windows holding the memory test's readings (None: no store)."""
    try:
        from models.window_store import WindowStore
    except ImportError:
        return None
    from common.contracts import parse_telemetry
    from models.features import FeatureWindow

    win = FeatureWindow("MEM")
    for _k, v in synthetic_events(1, MEMORY_EVENTS_PER_TURBINE, end, MEMORY_STEP_S, prefix="MEM"):
        win.update(parse_telemetry(v, now=datetime.now(UTC)))
    blob = win.to_bytes()
    store = WindowStore()
    for i in range(n):
        store.load(f"MEM-{i:06d}", blob)
    return store.nbytes() / n


# ---------------------------------------------------------------------------------------------- sweep
#: The judged sweep fleet: this many distinct turbines simulated by ``simulator.Fleet`` (its default
#: "realistic" mix of healthy, degrading and faulty turbines and sensors, seed 0), 7 days of 10-min
#: readings each through the worker's own processor and checkpoint, copied round-robin up to N.
SWEEP_SIM_TURBINES = 256
SWEEP_SIM_DAYS = 7.0
#: Simulated before those days (not sent): degradations (5-30 days) already under way, as in a fleet
#: that has been running, not one that starts healthy.
SWEEP_SIM_WARMUP_DAYS = 30.0
#: ``BENCH_SCORER_SWEEP_FLEET`` of a sweep child: "simulated" (judged) or "one-degrading" (the old
#: fleet: N copies of one synthetic turbine whose gate probability is 0.41, so every row runs the TTF
#: model's conditional predicts; the worst case, reported beside it, not judged).
SWEEP_FLEETS = ("simulated", "one-degrading")


def describe_sweep_fleet(kind: str, n: int) -> str:
    """What the sweep fleet of a child is, in words (printed with its figures)."""
    if kind == "simulated":
        days = SWEEP_SIM_DAYS + SWEEP_SIM_WARMUP_DAYS
        return (
            f"{n:,} turbines = {SWEEP_SIM_TURBINES} distinct simulated turbines (simulator.Fleet, preset "
            f"realistic, seed 0, the last {SWEEP_SIM_DAYS:.0f} of {days:.0f} simulated days of 10-min "
            "readings) copied round-robin"
        )
    return f"{n:,} copies of ONE synthetic degrading turbine (gate probability 0.41: worst case)"


def bench_sweep(registry: Path, db_url: str, sizes: list[int], restore_max: int, rep: Report) -> None:
    """One child process per size (clean peak memory): the real sweep of an in-process ScorerRuntime.

    Judged: the simulated fleet (:data:`SWEEP_SIM_TURBINES` distinct turbines); at 10,000 the old fleet
    of copies of one degrading turbine is swept too and reported beside it as the worst case (its
    restore figure is the restore target's, unchanged)."""
    for n in sizes:
        kinds = SWEEP_FLEETS if n == 10_000 else SWEEP_FLEETS[:1]
        for kind in kinds:
            _bench_sweep_one(registry, db_url, n, kind, n > restore_max, rep)


def _bench_sweep_one(registry: Path, db_url: str, n: int, kind: str, in_memory: bool, rep: Report) -> None:
    cmd = [
        sys.executable,
        __file__,
        "--sweep-child",
        str(n),
        "--sweep-db",
        db_url,
        "--registry",
        str(registry),
    ]
    if in_memory:
        cmd.append("--sweep-in-memory")
    fleet = describe_sweep_fleet(kind, n)
    print(f"\n[sweep] {fleet} ...", flush=True)
    env = {**os.environ, "BENCH_SCORER_SWEEP_FLEET": kind}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SWEEP ")), None)
    if line is None:
        raise RuntimeError(f"sweep child failed: {out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    r = orjson.loads(line[6:])
    r["fleet"] = fleet
    rep.info.setdefault("sweep", {})[f"{n}" if kind == "simulated" else f"{n}-{kind}"] = r
    label = f"{n:,}" if kind == "simulated" else f"{n:,} {kind}"
    judged = kind == "simulated" and n == 10_000
    tiers = ", ".join(f"{t} {c:,}" for t, c in r.get("tier_counts", {}).items() if c)
    print(f"  fleet: {fleet}; tiers of the sweep: {tiers}", flush=True)
    rep.add(
        "sweep",
        f"sweep {label} turbines incl. DB write" + ("" if kind == "simulated" else " (worst case)"),
        r["sweep_s"],
        "s",
        baseline=r["bare_predict_s"],
        baseline_label="bare predict, same rows",
        target=("<=", 1.0) if judged else None,
        note=f"{fleet}; tiers: {tiers}",
    )
    for part in ("features_s", "data_quality_s", "predict_policy_s", "write_s"):
        rep.add("sweep", f"  {label}: {part[:-2].replace('_', ' ')}", r[part], "s")
    if r.get("sweep_cpu_s") is not None:  # less sensitive to a loaded box than the wall time
        rep.add("sweep", f"  {label}: CPU of the sweep process (all threads)", r["sweep_cpu_s"], "s")
    if r.get("pg_cpu_s") is not None:  # the sweep's own backend (claim, reads, write, commit), local server
        rep.add("sweep", f"  {label}: CPU of PostgreSQL for the sweep (its backend)", r["pg_cpu_s"], "s")
    rep.add("sweep", f"peak RSS of the sweep process, {label}", r["peak_rss_bytes"] / 2**20, "MB")
    rep.add("sweep", f"RSS held by {label} windows in the worker", r["windows_rss_bytes"] / 2**20, "MB")
    if r.get("restore_s") is not None:
        rep.add(
            "restore",
            f"restore {label} windows (DB read + load)",
            r["restore_s"],
            "s",
            baseline=r["raw_read_s"],
            baseline_label="raw DB read, same bytes",
            # the restore target keeps its fleet (copies of one turbine's checkpoint)
            target=("<=", 0.5) if n == 10_000 and kind == "one-degrading" else None,
            note=f"{r['raw_bytes'] / 2**20:.0f} MB of window + aux bytes",
        )


def _sweep_backend_pid(rt: Any) -> int | None:
    """Process id of the PostgreSQL backend of the sink that writes sweeps (connects it if needed)."""
    sink = getattr(rt, "aux_sink", None)
    try:
        return int(sink.run(lambda c: c.info.backend_pid))  # type: ignore[union-attr]
    except Exception:  # another sink (fake, older tree): not measured
        return None


def _backend_cpu_s(pid: int | None) -> float | None:
    """CPU time of a local PostgreSQL backend (/proc/<pid>/schedstat, ns); None when not readable here."""
    if pid is None:
        return None
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def sweep_child(n: int, db_url: str, registry: Path, in_memory: bool) -> None:
    from common.logging import configure_logging

    configure_logging("bench", os.environ.get("COCKPIT_BENCH_LOG_LEVEL", "WARNING"))
    print("SWEEP " + orjson.dumps(asyncio.run(_sweep_child(n, db_url, registry, in_memory))).decode())


def _sweep_settings(db_url: str, registry: Path) -> Any:
    from scorer.settings import ScorerSettings

    tag = uuid.uuid4().hex[:8]
    topic = f"bench-sweep-{tag}"  # a name only: nothing is consumed from Kafka here
    return ScorerSettings(
        kafka_bootstrap_servers=BOOTSTRAP,
        database_url=db_url,
        telemetry_topic=topic,
        dead_letter_topic=topic + "-dlq",
        command_topic=topic + "-cmd",
        registry_dir=registry,
        consumer_group=f"bench-sweep-{tag}",
        data_dir=Path(tempfile.mkdtemp(prefix="bench-sweep-")),
    )


def _runtime(settings: Any) -> Any:
    from models.policy import load_policy
    from scorer.model import ModelHolder
    from scorer.runtime import ScorerRuntime

    holder = ModelHolder(settings.registry_dir, load_policy())
    holder.refresh()
    if holder.scorer is None:
        raise RuntimeError(f"no production model in {settings.registry_dir}: {holder.error}")
    return ScorerRuntime(settings, holder)


def _windows(rt: Any) -> list[tuple[str, Any]]:
    """(turbine id, FeatureWindow) of every turbine the runtime holds in memory."""
    proc = rt.processor
    return [(tid, st.window) for tid, st in proc.turbines.items()]


async def _restore(rt: Any, partitions: list[int]) -> None:
    """The worker's own restore at assignment: checkpoint rows of ``partitions`` into its state."""
    checkpointer = getattr(rt, "checkpointer", None)
    if checkpointer is not None:  # scorer/checkpoint.py (runtime split)
        await checkpointer.restore_partitions(partitions)
    else:
        await rt._restore(partitions)


def _install_in_memory(rt: Any, n: int, rows: list[tuple[Any, ...]]) -> None:
    """``n`` turbines installed as the worker's restore installs them (no DB read): turbine ``i`` holds
    the checkpoint of ``rows[i % len(rows)]`` (and its site)."""
    from types import SimpleNamespace

    proc = rt.processor
    k = len(rows)
    if hasattr(proc, "restore"):  # columnar store: window bytes straight into the store
        blobs = [(r[1], bytes(r[3]), bytes(r[4])) for r in rows]
        stored = [
            SimpleNamespace(
                turbine_id=f"ST-{i:06d}",
                site_id=blobs[i % k][0],
                partition=i % 3,
                state=blobs[i % k][1],
                aux=blobs[i % k][2],
            )
            for i in range(n)
        ]
        proc.restore(stored)
    else:  # per-object windows
        from scorer.state import TurbineState

        proc.install(
            [
                TurbineState.restore(f"ST-{i:06d}", i % 3, bytes(rows[i % k][3]), bytes(rows[i % k][4]))
                for i in range(n)
            ]
        )
    rt.restored.update({0, 1, 2})


def simulated_batches(
    turbines: int, days: float, end: datetime, topic: str, hours: int
) -> Iterator[list[Any]]:
    """``days`` of 10-min readings of ``turbines`` simulated turbines (``simulator.Fleet``, preset
    realistic, seed 0, simulated from :data:`SWEEP_SIM_WARMUP_DAYS` before) ending at ``end``, as the
    worker's ``RawRecord``s (time-major), in batches of ``hours`` hours of readings (made as they are
    consumed: bounded memory)."""
    from scorer.processing import RawRecord
    from simulator.config import FleetConfig
    from simulator.fleet import Fleet

    end = end.replace(second=0, microsecond=0) - timedelta(minutes=end.minute % 10)
    total = days + SWEEP_SIM_WARMUP_DAYS
    fleet = Fleet(FleetConfig(n_turbines=turbines, duration_days=total, start=end - timedelta(days=total)))
    now = time.time()
    size = hours * 6 * turbines
    batch: list[Any] = []
    for i, rec in enumerate(fleet.iter_records(start=end - timedelta(days=days))):
        rec["schema_version"] = 1
        batch.append(RawRecord(0, i, now, orjson.dumps(rec), topic, rec["turbine_id"].encode()))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``: VmHWM); False where it cannot be."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    """Peak RSS since the last :func:`_reset_peak_rss` (VmHWM), else since the process started."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _data_quality(windows: list[Any], now: datetime) -> list[dict[str, Any]]:
    try:
        from models.features import window_data_quality  # columnar store: one pass over the arrays
    except ImportError:
        return [w.data_quality(now=now) for w in windows]
    return list(window_data_quality(windows, now))


async def _sweep_child(n: int, db_url: str, registry: Path, in_memory: bool) -> dict[str, Any]:
    import gc

    from models.scoring import MAX_BATCH
    from scorer.processing import RawRecord

    settings = _sweep_settings(db_url, registry)
    topic, group = settings.telemetry_topic, settings.consumer_group
    # The worker compiles (or loads from numba's cache) its kernels at start: so does this child, so
    # that no timed part below pays a first compilation (older trees may lack the state codec's).
    from models.feature_kernels import warm_up

    warm_up()
    try:
        from models.window_store import warm_up_codec  # type: ignore[attr-defined]
    except ImportError:
        pass
    else:
        warm_up_codec()
    # 1. Real checkpoint rows through the worker's own batch processor (batches of 1 or 6 hours of 10-min
    #    readings) and checkpoint (whatever format the code under test writes): the simulated
    #    fleet's distinct turbines, or the one synthetic degrading turbine (worst case).
    kind = os.environ.get("BENCH_SCORER_SWEEP_FLEET", "simulated")
    src = _runtime(settings)
    if kind == "simulated":  # 6-hour batches: the same windows as hourly ones, fewer rescorings
        end = datetime.now(UTC)
        for batch in simulated_batches(SWEEP_SIM_TURBINES, SWEEP_SIM_DAYS, end, topic, hours=6):
            src.processor.process(batch)
    elif kind == "one-degrading":
        msgs = synthetic_events(1, 7 * 24 * 6, datetime.now(UTC), prefix="SRC")
        now = time.time()
        records = [RawRecord(0, i, now, v, topic, k) for i, (k, v) in enumerate(msgs)]
        for start in range(0, len(records), 6):  # hourly batches, as live 10-min data arrives
            src.processor.process(records[start : start + 6])
    else:
        raise ValueError(f"BENCH_SCORER_SWEEP_FLEET={kind!r}: expected one of {SWEEP_FLEETS}")
    await src.checkpoint()
    src.close()
    sql_rows = (
        "SELECT turbine_id, site_id, partition, state, aux FROM scorer_windows "
        "WHERE consumer_group = %s AND topic = %s AND partition = ANY(%s)"
    )
    # source turbine k (in turbine order) is copied to ST-i for every i = k mod (number of sources)
    sources = (
        "(SELECT row_number() OVER (ORDER BY turbine_id) - 1 AS k, site_id, state, aux FROM scorer_windows "
        "WHERE consumer_group = %s AND topic = %s AND turbine_id NOT LIKE 'ST-%%') AS s "
        "JOIN generate_series(0, %s - 1) AS g ON s.k = g %% %s"
    )
    with psycopg.connect(db_url, autocommit=True) as c:
        src_rows = c.execute(sql_rows + " ORDER BY turbine_id", (group, topic, [0, 1, 2])).fetchall()
        assert src_rows, "the source turbines' checkpoint rows are missing"
        k = len(src_rows)
        c.execute(  # the fleet table the assessments refer to (the stream path fills it)
            "INSERT INTO turbines (turbine_id, site_id) SELECT 'ST-' || lpad(g::text, 6, '0'), s.site_id "
            "FROM " + sources + " ON CONFLICT DO NOTHING",
            (group, topic, n, k),
        )
        if not in_memory:  # 2. n turbines from them, spread over 3 partitions (what n turbines checkpoint)
            c.execute(
                "INSERT INTO scorer_windows (consumer_group, turbine_id, site_id, topic, partition, "
                "last_event_time, state, aux) SELECT %s, 'ST-' || lpad(g::text, 6, '0'), s.site_id, %s, "
                "g %% 3, %s, s.state, s.aux FROM " + sources,
                (group, topic, datetime.now(UTC), group, topic, n, k),
            )
        c.execute(
            "DELETE FROM scorer_windows WHERE consumer_group = %s AND turbine_id NOT LIKE 'ST-%%'", (group,)
        )
        if not in_memory:
            c.execute("VACUUM ANALYZE scorer_windows")
    out: dict[str, Any] = {
        "turbines": n,
        "fleet": kind,
        "distinct_turbines": k,
        "window_bytes": sum(len(r[3]) for r in src_rows) / k,
        "aux_bytes": sum(len(r[4]) for r in src_rows) / k,
    }
    gc.collect()
    _reset_peak_rss()  # the peak of restore + sweep, not of making the source turbines
    rt = _runtime(settings)
    rss0 = _rss_of(os.getpid())
    if in_memory:
        _install_in_memory(rt, n, src_rows)
        out.update(restore_s=None, raw_read_s=None, raw_bytes=None)
    else:
        # 3. baseline: the raw read of the same rows; 4. the worker's restore of them
        with psycopg.connect(db_url) as c:
            t0 = time.perf_counter()
            rows = c.execute(sql_rows, (group, topic, [0, 1, 2]), binary=True).fetchall()
            out["raw_read_s"] = time.perf_counter() - t0
        out["raw_bytes"] = sum(len(r[3]) + len(r[4]) for r in rows)
        del rows
        gc.collect()
        t0 = time.perf_counter()
        await _restore(rt, [0, 1, 2])
        out["restore_s"] = time.perf_counter() - t0
    gc.collect()
    out["windows_rss_bytes"] = _rss_of(os.getpid()) - rss0
    items = _windows(rt)
    assert len(items) >= n, f"{len(items)} windows in memory, expected {n}"
    # 5. the sweep itself: claim, plan, features, predict, policy, rows, DB write (one transaction)
    pg_pid = _sweep_backend_pid(rt)
    pg0 = _backend_cpu_s(pg_pid)
    t0, cpu0 = time.perf_counter(), time.process_time()
    status = await rt.run_sweep("on_demand", str(uuid.uuid4()), datetime.now(UTC))  # as a command does
    out["sweep_s"] = time.perf_counter() - t0
    out["sweep_cpu_s"] = time.process_time() - cpu0  # every thread of this process (not PostgreSQL's)
    pg1 = _backend_cpu_s(pg_pid)
    same = pg_pid is not None and _sweep_backend_pid(rt) == pg_pid  # no reconnection in between
    out["pg_cpu_s"] = pg1 - pg0 if same and pg0 is not None and pg1 is not None else None
    assert status == "succeeded", f"sweep {status}"
    reg = rt.metrics.registry

    def sample(name: str, labels: dict[str, str]) -> float:
        return float(reg.get_sample_value(name, labels) or 0.0)

    out["write_s"] = sample("scorer_db_write_duration_seconds_sum", {"kind": "sweep_finish"})
    out["tier_counts"] = {
        t: int(sample("scorer_turbines_by_tier", {"tier": t}))
        for t in ("low", "moderate", "high", "critical", "unknown")
    }
    # 6. its parts, measured again on the same windows (one pass each, chunks as the scorer's)
    scorer = rt.holder.scorer
    as_of = max(w.as_of for _, w in items)
    feats, dq_s, pp_s, bare_s = 0.0, 0.0, 0.0, 0.0
    for start in range(0, len(items), MAX_BATCH):
        chunk = items[start : start + MAX_BATCH]
        t0 = time.perf_counter()
        x = scorer.features(chunk)
        t1 = time.perf_counter()
        dqs = _data_quality([w for _, w in chunk], as_of)
        t2 = time.perf_counter()
        scorer.score_features([t for t, _ in chunk], x, [w.as_of for _, w in chunk], dqs)
        t3 = time.perf_counter()
        scorer.bundle.predict(x)
        t4 = time.perf_counter()
        feats, dq_s, pp_s, bare_s = feats + t1 - t0, dq_s + t2 - t1, pp_s + t3 - t2, bare_s + t4 - t3
    out.update(features_s=feats, data_quality_s=dq_s, predict_policy_s=pp_s, bare_predict_s=bare_s)
    out["rest_s"] = out["sweep_s"] - feats - dq_s - pp_s - out["write_s"]
    out["peak_rss_bytes"] = _peak_rss()
    rt.close()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute("DELETE FROM scorer_windows WHERE consumer_group = %s", (group,))
        c.execute("DELETE FROM turbine_state WHERE turbine_id LIKE 'ST-%%'")
    return out


# ---------------------------------------------------------------------------------------------- main
def _commit(given: str | None) -> str:
    """HEAD of the checkout under test (``--commit`` when run from an exported tree, e.g. git archive)."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return given or out.stdout.strip() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=Path, default=None)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--turbines", type=int, default=1_000)
    ap.add_argument("--batch", type=int, default=20_000, help="worker's COCKPIT_BATCH_MAX_SIZE")
    ap.add_argument("--rate", type=int, default=5_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--latency-turbines", type=int, default=1_000)
    ap.add_argument(
        "--latency-live-only", action="store_true", help="latency: the live run only (no history replay)"
    )
    ap.add_argument("--memory-sizes", default="1000,10000", help="N turbines at which worker RSS is read")
    ap.add_argument("--sweep-sizes", default="10000,100000")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="100,000 events, 10 s paced, memory at 1,000 and 3,000 turbines, sweep of 10,000",
    )
    ap.add_argument("--only", choices=["throughput", "latency", "memory", "sweep"], default=None)
    ap.add_argument("--json", type=Path, default=None, help="write every figure and its baseline here")
    ap.add_argument(
        "--py-spy", default=None, help="py-spy binary: sample the throughput worker (profile in --json)"
    )
    ap.add_argument("--commit", default=None, help="commit label when the tree is not a git checkout")
    ap.add_argument("--markdown", type=Path, default=None, help="write the figures table as Markdown here")
    ap.add_argument("--probe-topic", help=argparse.SUPPRESS)
    ap.add_argument("--probe-expect", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sweep-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sweep-db", help=argparse.SUPPRESS)
    ap.add_argument("--sweep-in-memory", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe_topic:
        faust_probe(args.probe_topic, args.probe_expect)
        return
    if args.sweep_child:
        sweep_child(args.sweep_child, args.sweep_db, args.registry, args.sweep_in_memory)
        return
    if args.quick:
        args.events, args.seconds = 100_000, 10.0
        args.memory_sizes, args.sweep_sizes = "1000,3000", "10000"
    registry = ensure_registry(args.registry)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scorer-"))
    name, url = fresh_db()
    commit = _commit(args.commit)
    started = datetime.now(UTC)
    print(f"commit {commit}, broker {BOOTSTRAP}, database {name}, logs in {tmp}, cpus {os.cpu_count()}")
    rep = Report()
    try:
        if args.only in (None, "throughput"):
            bench_throughput(args, registry, url, tmp, rep)
        if args.only in (None, "latency"):
            bench_latency(args, registry, url, tmp, rep)
        if args.only in (None, "memory"):
            sizes = [int(s) for s in args.memory_sizes.split(",") if s]
            bench_memory(registry, url, tmp, sizes, rep)
        if args.only in (None, "sweep"):
            bench_sweep(registry, url, [int(s) for s in args.sweep_sizes.split(",") if s], 10_000, rep)
    finally:
        drop_db(name)
        shutil.rmtree(tmp, ignore_errors=True) if not os.environ.get("COCKPIT_BENCH_KEEP") else None
        print(
            f"\nbench_scorer.py, commit {commit}, {started.isoformat(timespec='seconds')}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(rep.table())
        if args.markdown:
            args.markdown.write_text(rep.markdown() + "\n")
            print(f"written {args.markdown}")
        if args.json:
            args.json.write_text(
                orjson.dumps(
                    {
                        "when": started.isoformat(timespec="seconds"),
                        "commit": commit,
                        "argv": sys.argv[1:],
                        "cpus": os.cpu_count(),
                        "load_average_end": os.getloadavg()[0],
                        "rows": rep.rows,
                        "details": rep.info,
                    },
                    option=orjson.OPT_INDENT_2,
                ).decode()
            )
            print(f"written {args.json}")


if __name__ == "__main__":
    main()
