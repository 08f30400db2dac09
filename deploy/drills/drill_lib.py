"""What every incident drill shares: timed steps, a sandbox cockpit on free ports, its clean-up.

A drill never touches the dev cockpit (ports 8000/6066, database ``cockpit``, topics ``telemetry.v1``...):
it runs the real entry points (``python -m scorer worker``, ``python -m api serve``, the ``cockpit`` CLI,
``python -m models``, ``python -m producers``) against its OWN database (``cockpit_drill_<id>``) and topics
(``drill-<id>.*``) on the shared Kafka and PostgreSQL, on free ports, each process in its own session,
and removes all of it at the end. Each step prints what it does, what it saw and how long it took; the
summary goes to ``test-artifacts/drills/<drill>.json``.

Settings: the command-line options of :func:`parse_args` (no environment is read; the processes get an
environment built here, never the caller's ``COCKPIT_*`` variables).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ARTIFACTS = ROOT / "test-artifacts" / "drills"
LOCAL_KAFKA = "127.0.0.1:9092"
LOCAL_ADMIN_URL = "postgresql://cockpit_admin:cockpit_admin@127.0.0.1:5433/postgres"
CHECK_MODEL = "import sys; from models.registry import load_production; load_production(sys.argv[1])"
TINY_TRAIN = [
    "-m", "models", "train", "--turbines", "16", "--days", "365", "--holdout-turbines", "2",
    "--holdout-days", "20", "--every", "4", "--threads", "1", "--promote", "always",
]  # fmt: skip


class DrillFailed(AssertionError):
    """A check of the drill did not hold: the message says what was expected and what was seen."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise DrillFailed(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """A clean process environment: no COCKPIT_* of the caller, one numeric thread."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }


def indent(text: str, lines: int = 12) -> str:
    rows = [r for r in text.rstrip().splitlines() if r.strip()][-lines:]
    return "\n".join(f"      | {r[:220]}" for r in rows) or "      | (nothing)"


# ---------------------------------------------------------------------------------------------- steps
@dataclass
class StepRecord:
    title: str
    seconds: float = 0.0
    ok: bool = True
    error: str | None = None


@dataclass
class Drill:
    """Numbered, timed steps; ``show`` prints a signal the operator would see (log line, answer...)."""

    name: str
    steps: list[StepRecord] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    facts: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(text, flush=True)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[StepRecord]:
        rec = StepRecord(title)
        self.steps.append(rec)
        self.say(f"\n[{self.name}] step {len(self.steps)}: {title}")
        t0 = time.monotonic()
        try:
            yield rec
        except Exception as exc:
            rec.ok, rec.error = False, f"{type(exc).__name__}: {exc}"
            raise
        finally:
            rec.seconds = round(time.monotonic() - t0, 2)
            self.say(f"    -> {'ok' if rec.ok else 'FAILED'} in {rec.seconds:.1f} s")

    def show(self, label: str, text: str, lines: int = 12) -> None:
        self.say(f"    {label}:\n{indent(text, lines)}")

    def finish(self, error: BaseException | None = None) -> int:
        total = round(time.monotonic() - self.started, 2)
        ok = error is None and all(s.ok for s in self.steps)
        self.say(f"\n[{self.name}] {'PASSED' if ok else 'FAILED'} in {total:.1f} s")
        for i, s in enumerate(self.steps, 1):
            self.say(f"    {i:2d}. {'ok ' if s.ok else 'KO '} {s.seconds:6.1f} s  {s.title}")
        if error is not None:
            self.say(f"    error: {error}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        report = {
            "drill": self.name,
            "ok": ok,
            "seconds": total,
            "steps": [asdict(s) for s in self.steps],
            "facts": self.facts,
            "error": None if error is None else str(error),
        }
        (ARTIFACTS / f"{self.name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        return 0 if ok else 1


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--kafka", default=LOCAL_KAFKA, help=f"Kafka bootstrap servers (default {LOCAL_KAFKA})")
    p.add_argument("--admin-url", default=LOCAL_ADMIN_URL, help="PostgreSQL superuser URL (local stack's)")
    p.add_argument(
        "--model-from",
        type=Path,
        default=ROOT / "registry",
        help="registry whose production model the drill installs (default ./registry; a tiny model is "
        "trained when it has none that loads)",
    )
    p.add_argument("--keep", action="store_true", help="keep the sandbox's files (database still dropped)")
    return p.parse_args(argv)


def run(
    cmd: list[str], env: dict[str, str], timeout: float = 120, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def model_source(wanted: Path, workdir: Path) -> Path:
    """A registry with a production model that loads with this code (``wanted``, else a tiny one)."""
    if (wanted / "PRODUCTION").is_file() and run(
        [PY, "-c", CHECK_MODEL, str(wanted)], base_env()
    ).returncode == 0:
        return wanted
    target = workdir / "tiny-registry"
    print(f"    no loadable model in {wanted}: training a tiny one in {target} (~1 min)", flush=True)
    res = run([PY, *TINY_TRAIN, "--registry", str(target)], base_env(), timeout=900)
    expect(res.returncode == 0, f"tiny model training failed:\n{res.stderr[-2000:]}")
    return target


def install_model(source: Path, registry: Path) -> str:
    """Copy the production version of ``source`` into ``registry`` and promote it there."""
    version = (source / "PRODUCTION").read_text().strip()
    registry.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / version, registry / version, dirs_exist_ok=True)
    res = run([PY, "-m", "models", "promote", version, "--registry", str(registry)], base_env())
    expect(res.returncode == 0, f"models promote failed: {res.stdout}{res.stderr}")
    return version


# ---------------------------------------------------------------------------------------------- processes
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def grep(self, needle: str) -> list[str]:
        try:
            return [line for line in self.log.read_text(errors="replace").splitlines() if needle in line]
        except OSError:
            return []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int | None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.popen.returncode


class TcpProxy:
    """A TCP forwarder on a fixed local port that can be cut and restored (a database "outage")."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones (what a stopped server does)."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------------------------------------- sandbox
class Sandbox:
    """Own database, topics, registry, ports and processes on the shared Kafka and PostgreSQL."""

    def __init__(self, drill: Drill, kafka: str, admin_url: str, keep: bool = False) -> None:
        from psycopg.conninfo import conninfo_to_dict

        self.drill = drill
        self.kafka = kafka
        self.admin_url = admin_url
        self.keep = keep
        self.id = uuid.uuid4().hex[:8]
        self.db = f"cockpit_drill_{self.id}"
        self.prefix = f"drill-{self.id}."
        self.dir = Path(tempfile.mkdtemp(prefix=f"cockpit-drill-{drill.name}-"))
        self.registry = self.dir / "registry"
        self.api_key = uuid.uuid4().hex
        p = conninfo_to_dict(admin_url)
        self.pg_host, self.pg_port = str(p.get("host") or "127.0.0.1"), int(p.get("port") or 5432)
        self.procs: list[Proc] = []
        self.reader_port = self.pg_port  # the API reads through this port (a TcpProxy in drill 3)
        self.api_port, self.scorer_port = free_port(), free_port()

    def url(self, role: str, port: int | None = None) -> str:
        return f"postgresql://{role}:{role}@{self.pg_host}:{port or self.pg_port}/{self.db}"

    def create(self) -> None:
        """Database owned by the writer, migrated with `python -m common migrate`, topics created."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER cockpit_writer").format(sql.Identifier(self.db)))
        for cmd in (["-m", "common", "migrate"], ["-m", "common", "topics"]):
            res = run([PY, *cmd], self.env(), cwd=self.dir)
            expect(res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}{res.stderr}")
        self.drill.say(f"    sandbox: database {self.db}, topics {self.prefix}*, files {self.dir}")

    def env(self, **extra: str | None) -> dict[str, str]:
        """The sandbox's settings; ``extra`` adds or replaces variables (None removes one)."""
        env = base_env()
        env.update(
            COCKPIT_KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            COCKPIT_TELEMETRY_TOPIC=f"{self.prefix}telemetry.v1",
            COCKPIT_DEAD_LETTER_TOPIC=f"{self.prefix}telemetry.dlq.v1",
            COCKPIT_COMMAND_TOPIC=f"{self.prefix}scorer.commands.v1",
            COCKPIT_TELEMETRY_PARTITIONS="2",
            COCKPIT_DATABASE_URL=self.url("cockpit_writer"),
            COCKPIT_READER_DATABASE_URL=self.url("cockpit_reader", self.reader_port),
            COCKPIT_REGISTRY_DIR=str(self.registry),
            COCKPIT_CONSUMER_GROUP=f"drill-{self.id}",
            COCKPIT_WEB_PORT=str(self.scorer_port),
            COCKPIT_DATA_DIR=str(self.dir / "scorer-data"),
            COCKPIT_PORT=str(self.api_port),
            COCKPIT_API_URL=f"http://127.0.0.1:{self.api_port}",
            COCKPIT_API_KEY=self.api_key,
            COCKPIT_MODEL_POLL_INTERVAL_S="2",
            COCKPIT_HEARTBEAT_INTERVAL_S="2",
            COCKPIT_CHECKPOINT_INTERVAL_S="1",
            COCKPIT_SESSION_TIMEOUT_S="6",
            COCKPIT_HEARTBEAT_EVERY_S="1",
            COCKPIT_SWEEP_CHECK_INTERVAL_S="3600",
            COCKPIT_LOG_FORMAT="json",
        )
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def start(self, name: str, args: list[str], port: int, **extra: str | None) -> Proc:
        log = self.dir / f"{name}-{len(self.procs)}.log"
        with log.open("wb") as fh:
            popen = subprocess.Popen(
                [PY, *args],
                cwd=self.dir,  # not the checkout: its .env (if any) is the dev cockpit's
                env=self.env(**extra),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log, port)
        self.procs.append(proc)
        return proc

    def start_scorer(self, **extra: str | None) -> Proc:
        return self.start("scorer", ["-m", "scorer", "worker"], self.scorer_port, **extra)

    def start_api(self, **extra: str | None) -> Proc:
        return self.start("api", ["-m", "api", "serve"], self.api_port, **extra)

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """The `cockpit` CLI as an operator types it (COCKPIT_API_URL of the sandbox)."""
        return run([PY, "-m", "api.cli", *args], self.env(COLUMNS="160"), timeout=timeout, cwd=self.dir)

    def get(self, url: str, timeout: float = 5) -> tuple[int, Any]:
        """(status, JSON body or text); status 0 with the error text when nothing answers."""
        import httpx

        try:
            res = httpx.get(url, timeout=timeout)
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        try:
            return res.status_code, res.json()
        except ValueError:
            return res.status_code, res.text[:300]

    def wait(self, what: str, predicate: Any, timeout: float, proc: Proc | None = None) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            if proc is not None and not proc.alive():
                raise DrillFailed(
                    f"{proc.name} exited ({proc.popen.returncode}) while waiting for {what}:\n{proc.tail()}"
                )
            time.sleep(0.5)
        raise DrillFailed(f"{what}: not reached within {timeout:.0f} s (last: {last!r})")

    def readyz(self, proc: Proc) -> dict[str, Any]:
        """The scorer's /readyz body ({} while it does not answer)."""
        _, body = self.get(f"{proc.url}/readyz")
        return body if isinstance(body, dict) else {}

    def scorer_ready(self, proc: Proc, timeout: float = 120) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            status, body = self.get(f"{proc.url}/readyz")
            return body if status == 200 and isinstance(body, dict) and body.get("partitions") else None

        result: dict[str, Any] = self.wait("scorer ready with partitions", ready, timeout, proc)
        return result

    def api_up(self, proc: Proc, timeout: float = 60) -> None:
        self.wait("API answering /healthz", lambda: self.get(f"{proc.url}/healthz")[0] == 200, timeout, proc)

    def metric(self, url: str, name: str) -> float | None:
        import httpx

        try:
            text = httpx.get(f"{url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return None
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.split("{")[0].split(" ")[0] == name
        ]
        return sum(values) if values else None

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        try:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db))
                )
        except Exception as exc:  # report, never hide the drill's own outcome
            self.drill.say(f"    clean-up: could not drop {self.db}: {exc}")
        try:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=self.kafka, client_id=f"drill-{self.id}")
            try:
                names = [t for t in admin.list_topics() if t.startswith(self.prefix)]
                if names:
                    admin.delete_topics(names)
            finally:
                admin.close()
        except Exception as exc:
            self.drill.say(f"    clean-up: could not delete topics {self.prefix}*: {exc}")
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
