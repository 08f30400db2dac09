"""A fresh clone of this repository, run as a new user runs it, on free ports; and its clean-up.

The harness only clones, picks ports, runs shell commands in the clone, reads logs and cleans up. It never
does the product's work (no topic creation, no migration, no model): that is what the test checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
PORT_VARS = (
    "COCKPIT_PORT",
    "COCKPIT_WEB_PORT",
    "COCKPIT_PRODUCER_METRICS_PORT",
    "COCKPIT_KAFKA_PORT",
    "COCKPIT_KAFKA_CONTROLLER_PORT",
    "COCKPIT_PG_PORT",
    "COCKPIT_PROMETHEUS_PORT",
    "COCKPIT_ALERTMANAGER_PORT",
)


class StepFailed(AssertionError):
    """A user step broke; the message says which one and shows the relevant log lines."""


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def user_environment(ports: dict[str, int]) -> dict[str, str]:
    """The environment of a new user's shell: no COCKPIT_* setting, no activated virtualenv, our ports."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COCKPIT_", "PYTEST_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in p + "/"
    )
    env.update({k: str(v) for k, v in ports.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"({path}: {exc.strerror})"
    return "\n".join(content[-lines:]) or f"({path} is empty)"


def _pids_listening(port: int) -> set[int]:
    out = subprocess.run(
        ["ss", "-H", "-ltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    return {int(p) for p in re.findall(r"pid=(\d+)", out)}


def _session_pids(sid: int) -> set[int]:
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # after "(comm)": state ppid pgrp session
                pids.add(int(stat.parent.name))
    return pids


def _mentions(pid: int, needles: tuple[str, ...]) -> bool:
    """True when the process's command line or working directory lies in the clone (it is ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return any(n in cmdline or cwd.startswith(n) for n in needles)


@dataclass
class Clone:
    """A clone of this repository in a temporary directory, with its ports, logs and measured figures."""

    root: Path
    ports: dict[str, int]
    env: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # ------------------------------------------------------------------ where things are
    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['COCKPIT_PORT']}"

    @property
    def scorer(self) -> str:
        return f"http://127.0.0.1:{self.ports['COCKPIT_WEB_PORT']}"

    @property
    def kafka(self) -> str:
        return f"127.0.0.1:{self.ports['COCKPIT_KAFKA_PORT']}"

    def pg_data_candidates(self) -> list[Path]:
        """Where deploy/local/stack.sh may keep PostgreSQL data for this clone (see its pg_data_dir)."""
        digest = sha1(str(self.root).encode()).hexdigest()[:12]
        return [self.root / ".stack" / "pg", Path(f"/var/tmp/cockpit-pg-{digest}")]

    def log(self, name: str) -> Path:
        if name == "kafka":
            return self.root / ".stack" / "kafka" / "logs" / "server.log"
        return self.root / ".stack" / "logs" / f"{name}.log"

    def logs_tail(self, *names: str, lines: int = 25) -> str:
        """The last lines of each named log that exists (a log never written says so in one line)."""
        parts = []
        for n in names:
            path = self.log(n)
            if path.exists():
                parts.append(f"--- last lines of {path}:\n{tail(path, lines)}")
            else:
                parts.append(f"--- {path}: not written (the {n} was never started)")
        return "\n".join(parts)

    def direct_settings(self) -> dict[str, str]:
        """What a README command run by hand (replay, CLI) gets beyond the user's shell: nothing.

        The user exported the port variables for `make run` (the shell environment of this clone, see
        `user_environment`); every service setting follows them (common.settings: COCKPIT_KAFKA_PORT,
        COCKPIT_PG_PORT; api.settings: COCKPIT_PORT), so a command typed in the same shell reaches this
        clone's Kafka, database and API, never another cockpit on the default ports. The test gives
        nothing more, so it proves that.
        """
        return {}

    # ------------------------------------------------------------------ running user commands
    def start(self, command: str, output: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Run a shell command line in the clone, in its own session, output (both streams) to a file."""
        output.parent.mkdir(parents=True, exist_ok=True)
        fh = output.open("wb")
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        fh.close()
        self.sessions.append(proc.pid)
        return proc

    def run(self, command: str, output: Path, timeout: float, env: dict[str, str] | None = None) -> int:
        """Run a shell command line to completion; returns its exit status (-9 when it timed out)."""
        proc = self.start(command, output, env)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return -9

    # ------------------------------------------------------------------ figures
    def record(self, key: str, value: Any) -> None:
        self.results[key] = value
        self.write_results()

    def write_results(self) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / "acceptance.json"
        body = {**self.results, "passed_steps": self.passed, "failed_steps": self.failed}
        path.write_text(json.dumps(body, indent=2, default=str) + "\n")
        return path

    # ------------------------------------------------------------------ clean-up
    def cleanup(self) -> list[str]:
        """`make down`, then stop whatever of ours is left, keep the logs, delete the clone and its data.

        Returns what `make down` left behind (listeners on our ports, processes of our sessions).
        """
        leftovers: list[str] = []
        for proc in self.background:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        if (self.root / "Makefile").exists():
            rc = self.run("make down", ARTIFACTS / "acceptance-make-down.log", timeout=180)
            self.results["final_make_down_exit"] = rc
        needles = (str(self.root), *(str(p) for p in self.pg_data_candidates()))
        ours: set[int] = set()
        for name, port in self.ports.items():
            for pid in _pids_listening(port):
                if _mentions(pid, needles):
                    leftovers.append(f"{name}={port} still served by pid {pid} after `make down`")
                    ours.add(pid)
        for sid in self.sessions:
            for pid in _session_pids(sid):
                if _mentions(pid, needles):
                    leftovers.append(f"pid {pid} of a user command still running after `make down`")
                    ours.add(pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in ours:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in ours):
                time.sleep(0.2)
        self._keep_logs()
        for path in (*self.pg_data_candidates(), self.root.parent):
            shutil.rmtree(path, ignore_errors=True)
        return leftovers

    def _keep_logs(self) -> None:
        """Copy the clone's service and Kafka logs under test-artifacts/ before the clone is deleted."""
        target = ARTIFACTS / "acceptance-logs"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True, exist_ok=True)
        for prefix, src in (
            ("", self.root / ".stack" / "logs"),
            ("kafka-", self.root / ".stack" / "kafka" / "logs"),
        ):
            if src.is_dir():
                for f in src.iterdir():
                    if f.is_file() and f.stat().st_size < 200 * 1024 * 1024:
                        shutil.copy2(f, target / f"{prefix}{f.name}")
