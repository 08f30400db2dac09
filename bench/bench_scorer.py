"""Scorer benchmark: sustained events/s and event-to-score latency of ONE worker, each beside a bare
aiokafka consume-and-decode loop on the same broker and data, plus fleet-sweep time.

Plain script (real Kafka + PostgreSQL from ``deploy/local/stack.sh``)::

    .venv/bin/python bench/bench_scorer.py --registry var/registry
    .venv/bin/python bench/bench_scorer.py --quick          # smaller numbers, ~1 minute

What is measured:
1. Throughput: a topic pre-loaded with ``--events`` readings of ``--turbines`` turbines; the worker
   (``python -m scorer worker`` subprocess, rescoring every touched turbine per micro-batch, writing
   everything to PostgreSQL) is timed from its first to its last durable batch (``/metrics``). The
   bare loop (aiokafka ``getmany`` + ``orjson.loads``) reads the same topic.
2. Latency: a producer paced at ``--rate`` events/s for ``--seconds``; the worker's histogram
   (Kafka record timestamp -> durable write of the score) gives p50/p99; the bare loop measures
   record timestamp -> decoded on the same paced stream.
3. Sweep: scoring 1,000 and 10,000 in-memory windows with one batched call (the leader's path),
   restoring windows from checkpoint bytes (a multi-worker sweep) and writing the rows.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    turbines: int, per_turbine: int, end: datetime, step_s: int = 600
) -> list[tuple[bytes, bytes]]:
    """Time-major readings (every turbine at t, then t+step...) as the fleet would send them."""
    rng = random.Random(1)
    tids = [f"BT-{i:05d}" for i in range(turbines)]
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
            "COCKPIT_DATA_DIR": tempfile.mkdtemp(prefix="bench-faust-"),
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
        f"bench-probe-{uuid.uuid4().hex[:6]}",
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
        datadir=tempfile.mkdtemp(prefix="bench-probe-"),
    )
    state: dict[str, float] = {"n": 0}

    @app.agent(app.topic(topic, value_serializer="raw", key_serializer="raw"))
    async def probe(stream: object) -> None:
        async for events in stream.noack_take(20_000, within=0.1):  # type: ignore[attr-defined]
            state.setdefault("t0", time.perf_counter())
            for ev in events:
                orjson.loads(ev.message.value)
                await stream.ack(ev)  # type: ignore[attr-defined]
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


# ---------------------------------------------------------------------------------------------- parts
def bench_throughput(args: argparse.Namespace, registry: Path, db_url: str, tmp: Path) -> None:
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
        try:
            w.wait_ready()
            samples: list[tuple[float, float]] = []
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = w.metrics().get("scorer_events_consumed_total", 0.0)
                samples.append((time.perf_counter(), done))
                if done >= n:
                    break
                time.sleep(0.2)
            t_start = next(t for t, d in samples if d > 0)
            t10 = next(t for t, d in samples if d >= 0.1 * n)
            t90 = next(t for t, d in samples if d >= 0.9 * n)
            overall = n / (samples[-1][0] - t_start)
            sustained = 0.8 * n / (t90 - t10)
            m = w.metrics()
        finally:
            w.stop()
        print(f"  bare aiokafka consume+orjson.loads : {bare:>10,.0f} events/s")
        print(f"  faust trivial agent (take+loads+ack): {probe:>10,.0f} events/s  (framework ceiling)")
        print(
            f"  scorer worker (rescoring, DB)      : {sustained:>10,.0f} events/s sustained (10%-90%),"
            f" {overall:,.0f} overall  -> ratio {sustained / bare:.2f}x of bare"
        )
        batches = m.get("scorer_batch_size_count", 0)
        scoring = m.get('scorer_scoring_duration_seconds_sum{operation="stream_batch"}', 0.0)
        db_s = m.get('scorer_db_write_duration_seconds_sum{kind="stream_batch"}', 0.0)
        ckpt_s = m.get('scorer_db_write_duration_seconds_sum{kind="checkpoint"}', 0.0)
        print(
            f"  batches {batches:.0f}, mean size {n / max(batches, 1):.0f}, "
            f"time in batched model calls {scoring:.1f}s, batch DB writes {db_s:.1f}s, "
            f"checkpoints {ckpt_s:.1f}s"
        )
    finally:
        delete_topics([topic])


def bench_latency(args: argparse.Namespace, registry: Path, db_url: str, tmp: Path) -> None:
    total = int(args.rate * args.seconds)
    turbines = args.latency_turbines
    msgs = synthetic_events(turbines, total // turbines + 1, datetime.now(UTC))
    topic = make_topic(3)
    try:
        w = WorkerProc(db_url, topic, registry, tmp / "worker-latency.log")
        try:
            w.wait_ready()
            time.sleep(3)
            bare_lat: list[float] = []
            loop_thread = threading.Thread(
                target=lambda: asyncio.run(bare_consume(topic, total, bare_lat)), daemon=True
            )
            loop_thread.start()
            sent = paced_publish(topic, args.rate, args.seconds, msgs)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                m = w.metrics()
                if m.get("scorer_events_consumed_total", 0) >= sent:
                    break
                time.sleep(0.3)
            time.sleep(0.5)
            m = w.metrics()
            loop_thread.join(60)
        finally:
            w.stop()
        name = "scorer_event_to_score_latency_seconds"
        p50 = histogram_quantile(m, name, 0.5)
        p99 = histogram_quantile(m, name, 0.99)
        print(f"\n[latency] {sent:,} events paced at {args.rate:,}/s over {turbines:,} turbines")
        print(
            f"  bare aiokafka loop  : p50 {pct(bare_lat, 0.5) * 1000:6.1f} ms  "
            f"p99 {pct(bare_lat, 0.99) * 1000:6.1f} ms"
            " (record timestamp -> decoded)"
        )
        print(
            f"  scorer worker       : p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms"
            " (record timestamp -> score durably written; histogram interpolation)"
        )
    finally:
        delete_topics([topic])


def bench_sweep(registry: Path, db_url: str, sizes: list[int]) -> None:
    from models.features import FeatureWindow
    from models.policy import load_policy
    from models.registry import load_production
    from models.scoring import BatchScorer
    from scorer.processing import assessment_rows
    from scorer.sink import Sink

    scorer = BatchScorer(load_production(registry), load_policy())
    # One realistic 7-day window (hourly bins full), cloned per turbine with its own id.
    base = FeatureWindow("T")
    rng = random.Random(2)
    end = datetime.now(UTC)
    for k in range(7 * 24 * 6):
        t = end - timedelta(minutes=10 * (7 * 24 * 6 - k))
        ev = {"event_time": t, "status_code": 0}
        for name in SIGNALS:
            ev[name] = 40 + 20 * rng.random()
        ev.update(power_kw=1200 + 200 * rng.random(), wind_speed_ms=9.0, ambient_temp_c=10.0)
        base.update(ev)
    blob = base.to_bytes()
    print(f"\n[sweep] window state {len(blob):,} bytes (7 days, 10-min data)")
    sink = Sink(db_url, "bench", "bench")
    for n in sizes:
        t0 = time.perf_counter()
        windows = [FeatureWindow.from_bytes(blob) for _ in range(n)]
        restore_s = time.perf_counter() - t0
        items = [(f"ST-{i:05d}", w) for i, w in enumerate(windows)]
        t0 = time.perf_counter()
        assessments = scorer.score(items, now=end)
        score_s = time.perf_counter() - t0
        hist, state = [], []
        for a in assessments:
            h, s = assessment_rows(a, "sweep", "SITE", a.as_of, end, str(uuid.uuid4()))
            hist.append(h)
            state.append(s)
        rows_s = time.perf_counter() - t0 - score_s
        sink.run(lambda c, items=items: sink._upsert(c, "turbines", [(tid, "SITE", end) for tid, _ in items]))  # type: ignore[misc]
        t0 = time.perf_counter()
        sink.run(
            lambda c, hist=hist, state=state: (  # type: ignore[misc]
                sink._upsert(c, "score_history", hist),
                sink._upsert(c, "turbine_state", state),
            )
        )
        write_s = time.perf_counter() - t0
        total = score_s + rows_s + write_s
        print(
            f"  {n:>6,} turbines: score {score_s:.2f}s + rows {rows_s:.2f}s + DB write {write_s:.2f}s "
            f"= {total:.2f}s (leader, windows in memory); restoring {n:,} windows from checkpoint "
            f"bytes adds {restore_s:.2f}s (multi-worker sweep)"
        )
    sink.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=Path, default=None)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--turbines", type=int, default=1_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--rate", type=int, default=5_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--latency-turbines", type=int, default=1_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["throughput", "latency", "sweep"], default=None)
    ap.add_argument("--probe-topic", help=argparse.SUPPRESS)
    ap.add_argument("--probe-expect", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe_topic:
        faust_probe(args.probe_topic, args.probe_expect)
        return
    if args.quick:
        args.events, args.seconds = 100_000, 10.0
    registry = ensure_registry(args.registry)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scorer-"))
    name, url = fresh_db()
    print(f"broker {BOOTSTRAP}, database {name}, logs in {tmp}, cpus {os.cpu_count()}")
    try:
        if args.only in (None, "throughput"):
            bench_throughput(args, registry, url, tmp)
        if args.only in (None, "latency"):
            bench_latency(args, registry, url, tmp)
        if args.only in (None, "sweep"):
            bench_sweep(registry, url, [1_000, 10_000])
    finally:
        drop_db(name)
        shutil.rmtree(tmp, ignore_errors=True) if not os.environ.get("COCKPIT_BENCH_KEEP") else None


if __name__ == "__main__":
    main()
