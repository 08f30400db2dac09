"""The acceptance test's one fixture: a fresh clone on free ports, always stopped and deleted afterwards."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.harness import ARTIFACTS, PORT_VARS, REPO_ROOT, Clone, free_ports, user_environment


def _service_url_guard(clone_root: Path, ports: dict[str, int]) -> dict[str, str]:
    """Point the services at the clone's own stack when its run.sh predates the port variables.

    Why: a checkout whose run.sh does not derive the Kafka/PostgreSQL addresses from COCKPIT_KAFKA_PORT /
    COCKPIT_PG_PORT would send the clone's producer and scorer to another cockpit running on the default
    ports (a developer's, or the lead's). Once run.sh (or the env.sh it sources) derives them, the test
    sets nothing but the ports, as a user would.
    """
    scripts = "".join(
        p.read_text()
        for p in (clone_root / "deploy" / "local").glob("*.sh")
        if p.name in ("run.sh", "env.sh")
    )
    if "COCKPIT_KAFKA_BOOTSTRAP_SERVERS" in scripts and "COCKPIT_DATABASE_URL" in scripts:
        return {}
    pg, kafka = ports["COCKPIT_PG_PORT"], ports["COCKPIT_KAFKA_PORT"]
    return {
        "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
        "COCKPIT_DATABASE_URL": f"postgresql://cockpit_writer:cockpit_writer@127.0.0.1:{pg}/cockpit",
        "COCKPIT_READER_DATABASE_URL": f"postgresql://cockpit_reader:cockpit_reader@127.0.0.1:{pg}/cockpit",
    }


@pytest.fixture(scope="module")
def clone() -> Iterator[Clone]:
    """Step 1 (git clone on free ports) and step 9 (make down, kill what is left, delete the clone)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("acceptance*"):
        if old.is_file():
            old.unlink()
    base = Path(tempfile.mkdtemp(prefix="cockpit-acceptance-"))
    root = base / "cockpit"
    ports = dict(zip(PORT_VARS, free_ports(len(PORT_VARS)), strict=True))
    c = Clone(root=root, ports=ports, env=user_environment(ports))
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    c.results.update(
        commit=head,
        clone=str(root),
        ports=ports,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    t0 = time.monotonic()
    done = subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO_ROOT), str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    c.record("clone_s", round(time.monotonic() - t0, 1))
    try:
        if done.returncode != 0:
            c.failed["1 git clone"] = done.stderr[-2000:]
            pytest.fail(f"step 1 (git clone {REPO_ROOT}) failed: {done.stderr[-2000:]}")
        guard = _service_url_guard(root, ports)
        c.env.update(guard)
        c.record("service_urls_set_by_test", sorted(guard))
        yield c
    finally:
        leftovers = c.cleanup()
        c.record("left_after_make_down", leftovers)
        path = c.write_results()
        print(f"\nacceptance figures ({path}):\n{path.read_text()}")
        if leftovers:
            pytest.fail("step 9 (make down) left processes of the clone running:\n" + "\n".join(leftovers))
