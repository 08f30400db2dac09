"""Ops harness: Prometheus + Alertmanager started by deploy/local/monitoring.sh (the script `make run` uses)
on free ports, with a temporary data directory and 1 s scrape and evaluation intervals, scraping real cockpit
processes (scorer worker, API, producer) started on free ports against this run's topics and database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.scorer.conftest import Topics, Worker, ensure_compatible, free_port, wait_for

ROOT = Path(__file__).resolve().parents[3]
MONITORING_SH = ROOT / "deploy/local/monitoring.sh"
ALERT_RULES = ROOT / "deploy/prometheus/alerts.yml"


def clean_env(**cockpit: str) -> dict[str, str]:
    """The test process's environment without its COCKPIT_* variables, plus ``cockpit``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **cockpit})
    return env


def rules_with_shorter_for(tmp_path: Path, durations: dict[str, str]) -> Path:
    """alerts.yml with the `for:` of the named alerts shortened; expressions, labels and annotations unchanged
    (each rule's own `for:` is tested by promtool, deploy/prometheus/tests/alerts_test.yml)."""
    rules = yaml.safe_load(ALERT_RULES.read_text())
    seen = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] in durations:
                rule["for"] = durations[rule["alert"]]
                seen.add(rule["alert"])
    assert seen == set(durations), f"no such alerts in {ALERT_RULES}: {set(durations) - seen}"
    out = tmp_path / "alerts.yml"
    out.write_text(yaml.safe_dump(rules, sort_keys=False))
    return out


@dataclass
class Monitoring:
    prometheus: str
    alertmanager: str
    env: dict[str, str]
    directory: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert body["status"] == "success", f"{expr}: {body}"
        return list(body["data"]["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """Prometheus's active alerts of that name (state pending or firing)."""
        body = httpx.get(f"{self.prometheus}/api/v1/alerts", timeout=10).json()
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]

    def alertmanager_alerts(self, name: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.alertmanager}/api/v2/alerts", timeout=10).json()
        return [a for a in body if a["labels"]["alertname"] == name]

    def targets(self) -> dict[str, str]:
        body = httpx.get(f"{self.prometheus}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t["health"] for t in body["data"]["activeTargets"]}

    def log(self, name: str) -> str:
        path = self.directory / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


@pytest.fixture
def start_monitoring(tmp_path: Path) -> Iterator[Callable[..., Monitoring]]:
    """``start_monitoring(scorer=port, api=port, producer=port, rules=path, webhook=url)``: monitoring.sh up
    with this checkout's configuration on free ports; monitoring.sh down at teardown."""
    started: list[dict[str, str]] = []

    def _start(
        scorer: int, api: int, producer: int, rules: Path = ALERT_RULES, webhook: str | None = None
    ) -> Monitoring:
        directory = tmp_path / "monitoring"
        env = clean_env(
            COCKPIT_MONITORING_DIR=str(directory),
            COCKPIT_PROMETHEUS_PORT=str(free_port()),
            COCKPIT_ALERTMANAGER_PORT=str(free_port()),
            COCKPIT_WEB_PORT=str(scorer),
            COCKPIT_PORT=str(api),
            COCKPIT_PRODUCER_METRICS_PORT=str(producer),
            COCKPIT_PROMETHEUS_SCRAPE_INTERVAL="1s",
            COCKPIT_PROMETHEUS_EVALUATION_INTERVAL="1s",
            COCKPIT_ALERTMANAGER_GROUP_WAIT="1s",
            COCKPIT_ALERT_RULES=str(rules),
            **({"COCKPIT_ALERT_WEBHOOK_URL": webhook} if webhook else {}),
        )
        started.append(env)
        done = subprocess.run(
            ["bash", str(MONITORING_SH), "up"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"monitoring.sh up failed:\n{done.stdout}\n{done.stderr}"
        mon = Monitoring(
            f"http://127.0.0.1:{env['COCKPIT_PROMETHEUS_PORT']}",
            f"http://127.0.0.1:{env['COCKPIT_ALERTMANAGER_PORT']}",
            env,
            directory,
        )
        # monitoring.sh reports started only once /-/ready answers: no waiting here
        assert httpx.get(f"{mon.prometheus}/-/ready", timeout=5).status_code == 200
        assert httpx.get(f"{mon.alertmanager}/-/ready", timeout=5).status_code == 200
        return mon

    yield _start
    for env in started:
        subprocess.run(["bash", str(MONITORING_SH), "down"], env=env, capture_output=True, timeout=60)


@dataclass
class Webhook:
    """An HTTP receiver for Alertmanager's webhook: the notifications it got."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def alert_names(self, status: str = "firing") -> set[str]:
        return {a["labels"]["alertname"] for n in self.received for a in n["alerts"] if a["status"] == status}


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture
def ops_topics(make_topic: Callable[..., str]) -> Topics:
    return Topics(make_topic("ops-telemetry", 3), make_topic("ops-dlq", 1), make_topic("ops-commands", 1))


@pytest.fixture(scope="session")
def ops_registry(integration_registry_dir: Path) -> Path:
    """The session's small trained registry (tests/integration/conftest.py), shared with the scorer tests."""
    return ensure_compatible(integration_registry_dir)


@dataclass
class Processes:
    """Cockpit processes started by a test, stopped (SIGTERM, then SIGKILL) at teardown."""

    tmp_path: Path
    kafka: str
    workers: list[Worker] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str], port: int) -> Worker:
        log_path = self.tmp_path / f"{name}.log"
        with log_path.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT
            )
        worker = Worker(proc, port, log_path, env)
        self.workers.append(worker)
        return worker

    def scorer(self, database_url: str, topics: Topics, registry: Path) -> Worker:
        port = free_port()
        env = clean_env(
            COCKPIT_KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            COCKPIT_TELEMETRY_TOPIC=topics.telemetry,
            COCKPIT_DEAD_LETTER_TOPIC=topics.dlq,
            COCKPIT_COMMAND_TOPIC=topics.commands,
            COCKPIT_DATABASE_URL=database_url,
            COCKPIT_REGISTRY_DIR=str(registry),
            COCKPIT_CONSUMER_GROUP=f"ops-{port}",
            COCKPIT_WORKER_ID=f"ops-{port}",
            COCKPIT_WEB_PORT=str(port),
            COCKPIT_DATA_DIR=str(self.tmp_path / f"faust-{port}"),
            COCKPIT_LOG_FORMAT="json",
            COCKPIT_CHECKPOINT_INTERVAL_S="1",
            COCKPIT_HEARTBEAT_INTERVAL_S="2",
            COCKPIT_MODEL_POLL_INTERVAL_S="2",
            COCKPIT_SWEEP_CHECK_INTERVAL_S="5",
            COCKPIT_BATCH_WITHIN_S="0.1",
            COCKPIT_SESSION_TIMEOUT_S="6",
        )
        return self.start("scorer", ["-m", "scorer", "worker"], env, port)

    def api(self, reader_url: str, topics: Topics) -> Worker:
        port = free_port()
        env = clean_env(
            COCKPIT_READER_DATABASE_URL=reader_url,
            COCKPIT_KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            COCKPIT_TELEMETRY_TOPIC=topics.telemetry,
            COCKPIT_DEAD_LETTER_TOPIC=topics.dlq,
            COCKPIT_COMMAND_TOPIC=topics.commands,
            COCKPIT_LOG_FORMAT="json",
        )
        args = ["-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)]
        return self.start("api", args, env, port)

    def producer(self, topics: Topics, args: list[str], port: int) -> Worker:
        env = clean_env(
            COCKPIT_KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            COCKPIT_TELEMETRY_TOPIC=topics.telemetry,
            COCKPIT_LOG_FORMAT="json",
        )
        cmd = ["-m", "producers", "simulate", *args, "--metrics-port", str(port)]
        return self.start("producer", cmd, env, port)

    def wait_answers(self, worker: Worker, path: str, timeout: float = 90) -> None:
        def answers() -> bool:
            if worker.proc.poll() is not None:
                raise AssertionError(f"exited with {worker.proc.returncode}:\n{worker.log()[-4000:]}")
            try:
                return worker.get(path).status_code < 500
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout, f"{worker.log_path.stem} {path}", interval=0.5)


@pytest.fixture
def processes(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Processes]:
    procs = Processes(tmp_path, kafka_bootstrap)
    yield procs
    for worker in reversed(procs.workers):
        worker.stop()
