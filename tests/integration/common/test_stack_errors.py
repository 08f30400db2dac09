"""The local stack script fails with a message that says what is wrong and what to do."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
STACK = Path(__file__).resolve().parents[3] / "deploy/local/stack.sh"


def _run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COCKPIT_STACK_DIR": str(tmp_path / "stack"), **env}
    return subprocess.run(
        ["bash", str(STACK), *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_kafka_port_in_use_is_named(tmp_path: Path) -> None:
    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        result = _run(["kafka-up"], {"COCKPIT_KAFKA_PORT": str(port)}, tmp_path)
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "COCKPIT_KAFKA_PORT" in result.stderr


def test_postgres_port_in_use_is_named(tmp_path: Path) -> None:
    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        result = _run(
            ["postgres-up"],
            {"COCKPIT_PG_PORT": str(port), "COCKPIT_PG_DATA": str(tmp_path / "pgdata")},
            tmp_path,
        )
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_missing_java_is_named(tmp_path: Path) -> None:
    # A PATH with every usual tool but java and mvn.
    shim = tmp_path / "bin"
    shim.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for tool in Path(directory).iterdir() if Path(directory).is_dir() else []:
            target = shim / tool.name
            if tool.name not in {"java", "mvn"} and not target.exists():
                target.symlink_to(tool)
    with _listening_socket() as sock:  # a free port pair the script will not get to use
        port = sock.getsockname()[1]
    result = _run(
        ["kafka-up"],
        {"PATH": str(shim), "COCKPIT_KAFKA_PORT": str(port), "COCKPIT_KAFKA_CONTROLLER_PORT": str(port + 1)},
        tmp_path,
    )
    assert result.returncode != 0
    assert "Java is missing" in result.stderr
    assert "looked for 'java' on PATH" in result.stderr


def test_unknown_command_prints_usage(tmp_path: Path) -> None:
    result = _run(["sideways"], {}, tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr
