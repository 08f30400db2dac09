"""Scorer integration harness: a tiny trained registry, real worker subprocesses, Kafka helpers.

Why subprocesses (``python -m scorer worker``): the SIGKILL test must kill a real process, and the
worker's start-up path (settings from the environment, faust worker, web views) is what ships.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from tests.integration.registry import CHECK_SNIPPET, TRAIN_SNIPPET, ensure_compatible  # noqa: F401

if TYPE_CHECKING:
    from scorer.processing import BatchProcessor

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last={last!r})")


def show(worker: Any) -> str:
    return worker.log()[-6000:]


def query(url: str, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, tuple(params))
        return list(cur.fetchall()) if cur.description else []


@pytest.fixture(scope="session")
def _registry_dir(integration_registry_dir: Path) -> Path:
    return integration_registry_dir


@pytest.fixture
def tiny_registry(_registry_dir: Path) -> Path:
    """A real registry trained by the models package on a small simulated fleet (~30-50 s, once)."""
    return ensure_compatible(_registry_dir)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                return self.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, "worker /readyz")

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                key = line.split(" ")[0].split("{")[0]
                if key == name:
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Topics:
    telemetry: str
    dlq: str
    commands: str


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> Topics:
    return Topics(make_topic("telemetry", 3), make_topic("dlq", 1), make_topic("commands", 1))


@pytest.fixture
def start_worker(
    kafka_bootstrap: str, tiny_registry: Path, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """``start_worker(database_url, topics, group, **env)`` -> a running worker (stopped at teardown)."""
    started: list[Worker] = []

    def _start(
        database_url: str, topics: Topics, group: str, registry: Path | None = None, **extra: Any
    ) -> Worker:
        port = free_port()
        n = len(started)
        env = {
            **os.environ,
            "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "COCKPIT_TELEMETRY_TOPIC": topics.telemetry,
            "COCKPIT_DEAD_LETTER_TOPIC": topics.dlq,
            "COCKPIT_COMMAND_TOPIC": topics.commands,
            "COCKPIT_DATABASE_URL": database_url,
            "COCKPIT_REGISTRY_DIR": str(registry or tiny_registry),
            "COCKPIT_CONSUMER_GROUP": group,
            "COCKPIT_WORKER_ID": f"{group}-w{n}",
            "COCKPIT_WEB_PORT": str(port),
            "COCKPIT_DATA_DIR": str(tmp_path / f"faust-{n}"),
            "COCKPIT_LOG_FORMAT": "json",
            "COCKPIT_CHECKPOINT_INTERVAL_S": "1",
            "COCKPIT_HEARTBEAT_INTERVAL_S": "2",
            "COCKPIT_MODEL_POLL_INTERVAL_S": "2",
            "COCKPIT_SWEEP_CHECK_INTERVAL_S": "5",
            "COCKPIT_BATCH_WITHIN_S": "0.1",
            "COCKPIT_SESSION_TIMEOUT_S": "6",
            "COCKPIT_HEARTBEAT_EVERY_S": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env.update({f"COCKPIT_{k.upper()}": str(v) for k, v in extra.items()})
        log_path = tmp_path / f"worker-{n}.log"
        fh = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "scorer", "worker"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
        w = Worker(proc, port, log_path, env)
        started.append(w)
        return w

    yield _start
    for w in started:
        w.stop()


# ---------------------------------------------------------------------------------------------- Kafka


def producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)


def publish(bootstrap: str, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> int:
    p = producer(bootstrap)
    n = 0
    try:
        for key, value in items:
            p.send(topic, key=key, value=value)
            n += 1
        p.flush(60)
    finally:
        p.close()
    return n


def encode(records: Iterable[dict[str, Any]]) -> Iterator[tuple[bytes, bytes]]:
    from producers.serialize import encode_record

    for rec in records:
        yield encode_record(rec)


def consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[bytes]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for msg in c:
                out.append(msg.value)
    finally:
        c.close()
    return out


def recent_fleet_records(
    n_turbines: int, days: float, end: datetime | None = None, seed: int = 101
) -> list[dict[str, Any]]:
    """Healthy simulated fleet whose last reading is just before ``end`` (default: now)."""
    from simulator.scenarios import load_scenario

    scenario = load_scenario("healthy_fleet")
    end = end or datetime.now(UTC)
    end = end.replace(second=0, microsecond=0) - timedelta(minutes=end.minute % 10)
    start = end - timedelta(days=days)
    cfg = scenario.config.model_copy(
        update={"start": start, "duration_days": days, "n_turbines": n_turbines, "seed": seed}
    )
    from simulator.fleet import Fleet

    return list(Fleet(type(cfg).model_validate(cfg.model_dump())).iter_records())


def offline_replay(messages: list[tuple[bytes, bytes]], chunk: int) -> BatchProcessor:
    """The uninterrupted reference: every record once, in order, through the same processing code
    (fed ``chunk`` records at a time)."""
    from common.settings import load_settings
    from scorer.processing import BatchProcessor, RawRecord
    from scorer.settings import ScorerSettings

    proc = BatchProcessor(load_settings(ScorerSettings))
    records = [RawRecord(0, i, None, v, "t", k) for i, (k, v) in enumerate(messages)]
    for start in range(0, len(records), chunk):
        out = proc.process(records[start : start + chunk])
        assert not out.invalid and not out.duplicates and not out.late
    return proc


def assert_history_policy(db: str) -> int:
    """Every stream row of score_history obeys the history policy against its predecessor (SQL LAG)."""
    from common.settings import load_settings
    from scorer.settings import ScorerSettings
    from scorer.state import HistoryMark, should_write_history

    s = load_settings(ScorerSettings)
    rows = query(
        db,
        "SELECT turbine_id, time, score, tier, lag(time) OVER w, lag(score) OVER w, lag(tier) OVER w "
        "FROM score_history WHERE trigger = 'stream' "
        "WINDOW w AS (PARTITION BY turbine_id ORDER BY time) ORDER BY turbine_id, time",
    )
    bad = []
    for tid, t, score, tier, pt, ps, ptier in rows:
        prev = None if pt is None else HistoryMark(pt.timestamp(), ps, ptier)
        ok = should_write_history(
            prev,
            t.timestamp(),
            score,
            tier,
            min_interval_s=s.history_min_interval_s,
            max_interval_s=s.history_max_interval_s,
            score_delta=s.history_score_delta,
        )
        if not ok:
            bad.append((tid, t, score, tier, pt, ps, ptier))
    assert not bad, f"{len(bad)} stream rows the history policy forbids, e.g. {bad[:3]}"
    return len(rows)


def new_group() -> str:
    return f"scorer-test-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def noop() -> Iterator[None]:
    yield
