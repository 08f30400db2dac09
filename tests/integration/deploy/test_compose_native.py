"""docker-compose.yml and the Kubernetes manifests, proven without a Docker engine.

Each cockpit service of docker-compose.yml runs with its exact command and environment (plus the image's
ENV from the Dockerfile), natively, against the real local Kafka and PostgreSQL, as the image's
unprivileged user (uid 10001) in a root-owned copy of the image's tree where only the image's writable
paths (/app/var, /registry) belong to that user, with the Python packages of the production lock
(requirements-prod.lock, what the image installs). What differs from a container is only the rewrite of
tests/integration/deploy/native.py (host names -> local services, one free port per container port, the
test's own database, topics and consumer group so a running cockpit is not disturbed).

It asserts what the deployment needs: the migrations run as the compose admin role and the scorer then
writes with the writer role (grants by deploy/docker/init-roles.sql), the API reads with the reader role;
each service listens (on every interface) where its healthcheck, the Prometheus scrape targets and the
Kubernetes probes and scrape annotations look, and they answer; telemetry published by the compose
producer becomes scores readable through the API. `docker compose config` cannot run here (no compose
plugin); tests/unit/test_deploy_config.py validates the file against the Compose schema instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.integration.deploy.native import (
    ROOT,
    NativeMap,
    compose_services,
    container_ports,
    environment,
    healthcheck_urls,
    image_config,
    k8s_containers,
    listening_ports,
    prometheus_targets,
)

UID = 10001
#: Long-running compose services, the one-shot jobs before them, and what each serves.
ONE_SHOTS = ("migrate", "topics", "models")
SERVERS = ("scorer", "api", "producer")
#: Roles that Kubernetes runs with the same command as compose.
K8S_ROLES = {
    "cockpit-migrate/migrate": "migrate",
    "cockpit-scorer/topics": "topics",
    "cockpit-api/topics": "topics",
    "cockpit-models/models": "models",
    "cockpit-scorer/scorer": "scorer",
    "cockpit-api/api": "api",
}
METRIC_PREFIX = {"scorer": "scorer_", "api": "cockpit_api_", "producer": "producer_"}
TRAIN_TINY = """
import sys
from pathlib import Path
from models.pipeline import train_and_register
from models.train import TrainSettings
settings = TrainSettings(n_turbines=16, days=365, seed=7, holdout_turbines=2, holdout_days=20,
                         holdout_seed=1007, sample_every_hours=4.0, threads=1)
train_and_register(Path(sys.argv[1]), settings, promote_if="always")
"""
LOADS = "import sys; from models.registry import load_production; load_production(sys.argv[1])"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


# ------------------------------------------------------------------------------------ the "image"
def _image_user() -> tuple[int, int, str]:
    """The image's user (uid 10001): created as a system user like the Dockerfile's useradd, if absent."""
    try:
        entry = pwd.getpwuid(UID)
    except KeyError:
        if shutil.which("useradd"):
            subprocess.run(
                ["useradd", "--system", "--uid", str(UID), "--user-group", "--no-create-home",
                 "--shell", "/usr/sbin/nologin", "cockpit"],
                check=False, capture_output=True,
            )  # fmt: skip
        with contextlib.suppress(KeyError):
            entry = pwd.getpwuid(UID)
            return entry.pw_uid, entry.pw_gid, entry.pw_name
        return UID, UID, str(UID)
    return entry.pw_uid, entry.pw_gid, entry.pw_name


def _production_python() -> Path:
    """A virtualenv with requirements-prod.lock only (what the image installs), cached per lock content."""
    lock = ROOT / "requirements-prod.lock"
    # An interpreter the image's user can run (not one under root's home, e.g. pyenv's).
    base = next(
        (p for p in ("/usr/local/bin/python3.11", "/usr/bin/python3.11") if Path(p).exists()), sys.executable
    )
    digest = hashlib.sha256(lock.read_bytes() + base.encode()).hexdigest()[:12]
    venv = Path(f"/var/tmp/cockpit-native-venv-{digest}")
    python = venv / "bin/python"
    if (venv / ".complete").exists():
        return python
    uv = shutil.which("uv") or str(ROOT / ".venv/bin/uv")
    building = Path(tempfile.mkdtemp(prefix=f"cockpit-native-venv-{digest}-", dir="/var/tmp"))
    subprocess.run([uv, "venv", "-q", "--python", base, str(building)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(building / "bin/python"), "-r", str(lock)], check=True
    )
    (building / ".complete").touch()
    building.chmod(0o755)
    try:
        building.rename(venv)  # atomic: a concurrent run either sees nothing or a complete venv
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
    # The venv records its own path in scripts; `python -m` through bin/python works from any path.
    return python


@dataclass
class Image:
    """A native copy of the image's tree: root-owned /app and home, the user's writable paths only."""

    root: Path
    app: Path
    registry: Path
    home: Path
    python: Path
    uid: int
    gid: int
    env: dict[str, str]
    writable: tuple[Path, ...]

    def files_outside_writable(self) -> set[str]:
        """Every path under /app that is not under one of the image's writable paths."""
        return {
            str(path.relative_to(self.app))
            for path in self.app.rglob("*")
            if not any(path == w or w in path.parents for w in self.writable)
        }


def _build_image(tmp_root: Path) -> Image:
    config = image_config()
    uid, gid, _ = _image_user()
    python = _production_python()
    tmp_root.chmod(0o755)
    app = tmp_root / config.workdir.strip("/")
    app.mkdir(parents=True)
    for item in config.copied:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, app / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, app / item)
    paths = {config.workdir: str(app)}
    writable = []
    for image_path in config.writable:
        native = tmp_root / image_path.strip("/")
        native.mkdir(parents=True, exist_ok=True)
        paths[image_path] = str(native)
        writable.append(native)
    # The home exists but is not writable: Kubernetes runs the scorer and the API with a read-only root
    # file system (only /app/var and /tmp are volumes), so nothing may depend on writing there.
    home = tmp_root / "home/cockpit"
    home.mkdir(parents=True)
    for directory in writable:
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, uid, gid)
    registry = Path(paths["/registry"])
    env = {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        **config.env,
    }
    return Image(tmp_root, app, registry, home, python, uid, gid, env, tuple(writable))


def _model_cache() -> Path:
    """Where a small model trained by this test is kept, per content of the models package."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "models").rglob("*.py")):
        digest.update(path.read_bytes())
    return Path(f"/var/tmp/cockpit-native-model-{digest.hexdigest()[:12]}")


def _put_a_model(image: Image, tmp_root: Path, shared: Path | None = None) -> str:
    """A loadable production model in the registry volume: a prebuilt one, else a small one trained once.

    Tried in order: COCKPIT_TEST_REGISTRY, the checkout's registry/ (made by `make run`; only read), the
    cache of an earlier run with the same models code; otherwise a small fleet is trained (minutes on busy
    cores) and cached.
    """
    cache = _model_cache()
    candidates = (
        [Path(os.environ["COCKPIT_TEST_REGISTRY"])] if os.environ.get("COCKPIT_TEST_REGISTRY") else []
    )
    candidates += [ROOT / "registry", cache]
    if shared is not None:  # the session's tiny registry (trained once for all integration tests)
        from tests.integration.registry import ensure_compatible

        candidates.append(ensure_compatible(shared))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    staging = tmp_root / "model-candidate"
    chosen = None
    for source in candidates:
        if not (source / "PRODUCTION").exists():
            continue
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging, symlinks=True)
        loads = subprocess.run(
            [str(image.python), "-c", LOADS, str(staging)], cwd=image.app, env=env, capture_output=True
        )
        if loads.returncode == 0:
            chosen = str(source)
            break
    else:
        shutil.rmtree(staging, ignore_errors=True)
        trained = subprocess.run(
            [str(image.python), "-c", TRAIN_TINY, str(staging)], cwd=image.app, env=env, capture_output=True
        )
        assert trained.returncode == 0, trained.stderr[-3000:]
        building = Path(tempfile.mkdtemp(prefix=cache.name + "-", dir="/var/tmp"))
        shutil.copytree(staging, building, symlinks=True, dirs_exist_ok=True)
        with contextlib.suppress(OSError):
            building.rename(cache)
        chosen = "a small model trained now"
    shutil.copytree(staging, image.registry, symlinks=True, dirs_exist_ok=True)
    for path in [image.registry, *image.registry.rglob("*")]:
        os.chown(path, image.uid, image.gid, follow_symlinks=False)
    return chosen


# ------------------------------------------------------------------------------------ the stack
@dataclass
class Native:
    image: Image
    mapping: NativeMap
    services: dict[str, dict[str, Any]]
    isolation: dict[str, str]
    logs: Path
    admin_url: str
    db_name: str
    procs: dict[str, subprocess.Popen[bytes]]

    def env(self, name: str) -> dict[str, str]:
        compose_env = self.mapping.env(environment(self.services[name]))
        return {**self.image.env, **self.mapping.env(self.image.env), **compose_env, **self.isolation}

    def command(self, name: str) -> list[str]:
        return self.mapping.command([str(a) for a in self.services[name]["command"]])

    def run(self, name: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(name),
            cwd=self.image.app,
            env=self.env(name),
            user=self.image.uid,
            group=self.image.gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            self.command(name),
            cwd=self.image.app,
            env=self.env(name),
            user=self.image.uid,
            group=self.image.gid,
            extra_groups=[],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def get(self, container_host: str, container_port: int, path: str, timeout: float = 10) -> httpx.Response:
        host, port = self.mapping.address(container_host, container_port)
        return httpx.get(f"http://{host}:{port}{path}", timeout=timeout)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def native(services: Any, kafka_bootstrap: str, run_id: str) -> Iterator[Native]:
    compose = compose_services()
    suffix = uuid.uuid4().hex[:6]
    db_name = f"cockpit_native_{run_id}_{suffix}"
    admin = conninfo_to_dict(services.admin_url)
    kafka_host, _, kafka_port = kafka_bootstrap.partition(",")[0].rpartition(":")
    cockpit_ports = {p for name in SERVERS for p in container_ports(compose[name])}
    cockpit_ports |= {int(t.rpartition(":")[2]) for ts in prometheus_targets().values() for t in ts}
    tmp_root = Path(tempfile.mkdtemp(prefix="cockpit-native-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    topics = {
        "COCKPIT_TELEMETRY_TOPIC": f"native-{run_id}-{suffix}-telemetry",
        "COCKPIT_DEAD_LETTER_TOPIC": f"native-{run_id}-{suffix}-dlq",
        "COCKPIT_COMMAND_TOPIC": f"native-{run_id}-{suffix}-commands",
    }
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        # As the TimescaleDB container does: POSTGRES_DB created by POSTGRES_USER (cockpit_admin).
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    try:
        image = _build_image(tmp_root)
        mapping = NativeMap(
            hosts={
                "kafka:9092": (kafka_host, int(kafka_port)),
                "timescaledb:5432": (str(admin.get("host", "127.0.0.1")), int(str(admin.get("port", 5432)))),
            },
            database=db_name,
            ports={port: free_port() for port in sorted(cockpit_ports)},
            paths={
                "/app": str(image.app),
                "/registry": str(image.registry),
                "/app/var": str(tmp_root / "app/var"),
            },
        )
        logs = tmp_root / "logs"
        logs.mkdir()
        isolation = {**topics, "COCKPIT_CONSUMER_GROUP": f"native-{run_id}-{suffix}"}
        stack = Native(image, mapping, compose, isolation, logs, services.admin_url, db_name, procs)
        yield stack
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with psycopg.connect(services.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))
        with contextlib.suppress(Exception):
            from kafka import KafkaAdminClient

            kadmin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id=f"native-{suffix}")
            existing = set(kadmin.list_topics())
            kadmin.delete_topics([t for t in topics.values() if t in existing])
            kadmin.close()
        if not os.environ.get("COCKPIT_KEEP_TEST_DB"):
            shutil.rmtree(tmp_root, ignore_errors=True)


def _init_database(stack: Native | _Target) -> None:
    """What the database container runs at its first start: deploy/docker/init-roles.sql as the admin."""
    script = ROOT / "deploy/docker/init-roles.sql"
    target = dict(conninfo_to_dict(stack.admin_url), dbname=stack.db_name)
    if shutil.which("psql"):
        env = {**os.environ, "PGPASSWORD": str(target.get("password", ""))}
        where = ["-h", str(target.get("host", "127.0.0.1")), "-p", str(target.get("port", 5432))]
        who = ["-U", str(target["user"]), "-d", stack.db_name]
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *where, *who, "-f", str(script)],
            env=env,
            check=True,
            capture_output=True,
        )
        return
    text = script.read_text().replace(':"DBNAME"', f'"{stack.db_name}"')
    with psycopg.connect(**target, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(text.encode())


# ------------------------------------------------------------------------------------ the test
def test_compose_services_run_natively_as_the_image_user(
    native: Native, integration_registry_dir: Path
) -> None:
    started = time.monotonic()
    compose, mapping = native.services, native.mapping

    # Kubernetes runs the same commands as compose for each role: running these proves both.
    k8s = k8s_containers()
    for key, role in K8S_ROLES.items():
        assert k8s[key].command == [str(a) for a in compose[role]["command"]], key

    _init_database(native)
    source = _put_a_model(native.image, native.image.root, integration_registry_dir)
    read_only_tree = native.image.files_outside_writable()

    # One-shot jobs, in compose's depends_on order: migrations (admin), topics, models (registry volume).
    assert compose["migrate"]["environment"]["COCKPIT_DATABASE_URL"].startswith("postgresql://cockpit_admin:")
    for name in ONE_SHOTS:
        done = native.run(name)
        assert done.returncode == 0, f"{name}: {done.stdout}\n{done.stderr}"
        if name == "models":
            assert "present and valid; nothing to do" in done.stdout + done.stderr, (source, done.stderr)
    admin_db = dict(conninfo_to_dict(native.admin_url), dbname=native.db_name)
    with psycopg.connect(**admin_db) as conn:  # type: ignore[arg-type]
        rows = conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
        owners: dict[str, str] = dict(rows.fetchall())
    # The writer's rights come from the grants of init-roles.sql, not from owning the tables.
    assert owners["turbine_state"] == "cockpit_admin"

    for name in SERVERS:
        native.start(name)

    # Each service listens on every interface where its healthcheck, Prometheus and Kubernetes look.
    targets = {job.removeprefix("cockpit-"): ts for job, ts in prometheus_targets().items()}
    for name in SERVERS:
        for target in targets[name]:
            host, _, target_port = target.rpartition(":")
            native.alive(name)
            _wait_answers(native, host, int(target_port), "/metrics", 90, f"{name} /metrics")
            metrics = native.get(host, int(target_port), "/metrics").text
            assert METRIC_PREFIX[name] in metrics, name
            listening = listening_ports(Path("/proc/net/tcp").read_text())
            assert "0.0.0.0" in listening.get(mapping.port(int(target_port)), set()), (name, listening)
        for url in healthcheck_urls(compose[name]):
            host_port, _, url_path = url.removeprefix("http://").partition("/")
            check_port = int(host_port.rpartition(":")[2])
            _wait_answers(native, name, check_port, f"/{url_path}", 120, f"{name} healthcheck")
    for container in k8s.values():
        served = K8S_ROLES.get(f"{container.workload}/{container.name}")
        if served is None or served not in SERVERS:
            continue
        for probe, (probe_path, probe_port) in container.probes.items():
            _wait_answers(native, served, probe_port, probe_path, 120, f"{served} {probe} {probe_path}")
        if container.scrape_port is not None:
            assert (
                METRIC_PREFIX[served]
                in native.get(served, container.scrape_port, container.scrape_path or "/").text
            )
    scorer_k8s, scorer_compose = k8s["cockpit-scorer/scorer"].env, environment(compose["scorer"])
    for variable in ("COCKPIT_WEB_HOST", "COCKPIT_WEB_PORT"):  # the pod binds where its probes look
        assert scorer_k8s[variable] == scorer_compose[variable], variable

    # Telemetry from the compose producer becomes scores, written by the writer, read through the API.
    def scored() -> list[dict[str, Any]]:
        for name in SERVERS:
            native.alive(name)
        try:
            body = native.get("api", 8000, "/v1/turbines?limit=50", timeout=20).json()
        except httpx.HTTPError:  # a busy machine: ask again
            return []
        return [t for t in body.get("items", []) if t.get("score") is not None]

    try:
        items = wait_for(scored, 180, "a score readable through the API", interval=2)
    except AssertionError as exc:
        logs = "\n".join(f"--- {name}\n{native.log(name)}" for name in SERVERS)
        raise AssertionError(f"{exc}\n{logs}") from None
    assert items[0]["turbine_id"]

    def heartbeats() -> list[dict[str, Any]]:  # the scorer's heartbeat rows, written as the writer
        try:
            return list(native.get("api", 8000, "/v1/supervision", timeout=20).json()["heartbeats"])
        except httpx.HTTPError:
            return []

    try:
        wait_for(heartbeats, 60, "the scorer's heartbeat in /v1/supervision", interval=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- scorer\n{native.log('scorer')}") from None

    # Only the image's writable paths were written; every process ran as the image's user.
    for name, proc in native.procs.items():
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(native.image.uid)] * 4, (name, uid_line)
    native.stop()
    assert native.image.files_outside_writable() == read_only_tree, (
        "a service wrote outside its writable paths"
    )
    assert any(Path(native.image.app, "var").rglob("*")), (
        "the scorer's data directory (var/scorer) stayed empty"
    )
    print(f"native compose run: {time.monotonic() - started:.1f} s (model: {source})")


def _answers(native: Native, host: str, port: int, path: str) -> bool:
    try:
        return native.get(host, port, path).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_answers(native: Native, host: str, port: int, path: str, timeout: float, what: str) -> None:
    """Until ``http://<host>:<port><path>`` (container addresses) answers 200."""
    wait_for(lambda: _answers(native, host, port, path), timeout, what)


def test_without_the_init_script_the_writer_is_refused(services: Any, run_id: str) -> None:
    """The defect the init script fixes, reproduced: tables owned by the migrating admin refuse the writer
    ("permission denied for table turbines") until init-roles.sql has run; the reader only reads."""
    from common.db import migrate

    name = f"cockpit_native_{run_id}_grants_{uuid.uuid4().hex[:4]}"
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrate(services.url_for(name))  # as cockpit_admin, like the compose `migrate` service
        insert = "INSERT INTO turbines (turbine_id, site_id) VALUES (%s, 'SITE-A')"
        with (
            psycopg.connect(services.url_for(name, "cockpit_writer")) as writer,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table turbines"),
        ):
            writer.execute(insert, ("WT-001",))
        _init_database(_Target(services.admin_url, name))
        with psycopg.connect(services.url_for(name, "cockpit_writer")) as writer:
            writer.execute(insert, ("WT-001",))
            writer.execute("UPDATE turbines SET last_event_time = now() WHERE turbine_id = 'WT-001'")
            writer.execute(  # uses the sequence (bigserial) of a table made by the admin
                "INSERT INTO scorer_dead_letters (consumer_group, source_topic, source_partition, "
                "source_offset, code, reason, envelope) VALUES ('g', 't', 0, 1, 'test', 'test', '\\x00')"
            )
        with psycopg.connect(services.url_for(name, "cockpit_reader")) as reader:
            assert reader.execute("SELECT turbine_id FROM turbines").fetchall() == [("WT-001",)]
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                reader.execute(insert, ("WT-002",))
    finally:
        with psycopg.connect(services.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class _Target:
    """What _init_database needs: the admin URL and the database name."""

    admin_url: str
    db_name: str
