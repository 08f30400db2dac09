"""Bounded shutdown and crash-only exits of a real worker process (``python -m scorer worker``).

SIGTERM under load and during a database outage ends the process within ``shutdown_timeout_s``; a
batch failure (a write the database refuses, not an outage) ends it with EXIT_CRASH within the bound;
Kafka unreachable at start ends it with exit code 3 and a message naming the address.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scorer.liveness import EXIT_CRASH, EXIT_KAFKA_UNREACHABLE, EXIT_OK, EXIT_SHUTDOWN_TIMEOUT
from tests.integration.scorer.conftest import (
    ROOT,
    Topics,
    Worker,
    encode,
    free_port,
    new_group,
    publish,
    query,
    recent_fleet_records,
    show,
    wait_for,
)
from tests.integration.scorer.test_db_outage import TcpProxy

pytestmark = pytest.mark.integration

BOUND_S = 10.0  # shutdown_timeout_s given to the workers below
SLACK_S = 3.0  # signal delivery, interpreter teardown


def stop_timed(worker: Worker, sig: int = signal.SIGTERM, wait_s: float = BOUND_S + 20) -> tuple[int, float]:
    t0 = time.monotonic()
    worker.proc.send_signal(sig)
    try:
        code = worker.proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(
            f"worker still running {wait_s:.0f} s after the signal:\n{show(worker)}"
        ) from None
    return code, time.monotonic() - t0


def test_sigterm_under_load_exits_within_bound(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_stop_load")
    worker = start_worker(db, topics, new_group(), shutdown_timeout_s=BOUND_S)
    worker.wait_ready()
    publish(kafka_bootstrap, topics.telemetry, encode(recent_fleet_records(30, 4.0, seed=811)))
    wait_for(lambda: worker.metric("scorer_events_consumed_total") > 0, 60, "consumption started")
    code, took = stop_timed(worker)
    assert code == EXIT_OK, show(worker)
    assert took <= BOUND_S + SLACK_S, f"took {took:.1f} s"
    assert '"stopping; the process ends within the shutdown bound"' in worker.log()


def test_sigterm_during_database_outage_exits_within_bound(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_stop_outage")
    params = conninfo_to_dict(db)
    proxy = TcpProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    params.update(host="127.0.0.1", port=str(proxy.port))
    via_proxy = make_conninfo(**params)  # type: ignore[arg-type]
    try:
        worker = start_worker(
            via_proxy, topics, new_group(), shutdown_timeout_s=BOUND_S, db_retry_max_backoff_s=1
        )
        worker.wait_ready()
        proxy.cut()
        publish(kafka_bootstrap, topics.telemetry, encode(recent_fleet_records(4, 1.0, seed=812)))
        wait_for(lambda: worker.get("/readyz").status_code == 503, 60, "not ready during the outage")
        code, took = stop_timed(worker)
        # The final checkpoint cannot be written: it is abandoned after half the bound, the stop goes on
        # (the next start replays from the last checkpoint), so the exit is still a clean one.
        assert code == EXIT_OK, show(worker)
        assert took <= BOUND_S + SLACK_S, f"took {took:.1f} s"
        assert '"final checkpoint failed"' in worker.log()
    finally:
        proxy.close()


def test_sigterm_with_a_write_hanging_on_a_frozen_connection_is_forced_within_bound(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    """A database write blocked forever in a socket (no error, no answer): faust's stop cannot finish
    (the executor thread never returns), the watchdog ends the process at the bound."""
    db = fresh_database("scorer_stop_frozen")
    params = conninfo_to_dict(db)
    proxy = TcpProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    params.update(host="127.0.0.1", port=str(proxy.port))
    via_proxy = make_conninfo(**params)  # type: ignore[arg-type]
    try:
        worker = start_worker(via_proxy, topics, new_group(), shutdown_timeout_s=BOUND_S)
        worker.wait_ready()
        proxy.frozen.set()
        publish(kafka_bootstrap, topics.telemetry, encode(recent_fleet_records(2, 0.5, seed=814)))
        time.sleep(5)  # the batch is consumed and its write sent into the frozen connection
        code, took = stop_timed(worker)
        assert code in (EXIT_OK, EXIT_SHUTDOWN_TIMEOUT), show(worker)
        assert took <= BOUND_S + SLACK_S, f"took {took:.1f} s"
        if code == EXIT_SHUTDOWN_TIMEOUT:
            assert '"shutdown did not finish within the bound; exiting now"' in worker.log()
    finally:
        proxy.frozen.clear()
        proxy.close()


def test_batch_failure_crashes_the_process_within_bound(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    """A write the database refuses (a constraint, not an outage) is not retried: the process ends."""
    db = fresh_database("scorer_crash")
    query(db, "ALTER TABLE telemetry_latest ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
    worker = start_worker(db, topics, new_group(), shutdown_timeout_s=BOUND_S)
    worker.wait_ready()
    t0 = time.monotonic()
    publish(kafka_bootstrap, topics.telemetry, encode(recent_fleet_records(2, 0.2, seed=813)))
    try:
        code = worker.proc.wait(60 + BOUND_S)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"the worker did not end after a batch failure:\n{show(worker)}") from None
    log = worker.log()
    assert code == EXIT_CRASH, show(worker)
    # The refused write surfaces in the agent (next batch) or in the checkpoint that waits for it.
    assert (
        '"batch failed; stopping the worker"' in log or '"checkpoint failed; stopping the worker"' in log
    ), show(worker)
    assert "CheckViolation" in log or "refuse_all" in log
    assert '"worker exited","exit_code":70' in log
    assert time.monotonic() - t0 <= 60 + BOUND_S
    assert query(db, "SELECT count(*) FROM telemetry_latest")[0][0] == 0


def test_kafka_unreachable_at_start_exits_3_naming_the_address(tmp_path: object) -> None:
    import os

    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": address,
        "COCKPIT_KAFKA_START_TIMEOUT_S": "4",
        "COCKPIT_WEB_PORT": str(free_port()),
        "COCKPIT_DATABASE_URL": "postgresql://nobody:nothing@127.0.0.1:1/none",
        "COCKPIT_LOG_FORMAT": "json",
    }
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "scorer", "worker"], cwd=ROOT, env=env, capture_output=True, timeout=90
    )
    took = time.monotonic() - t0
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode == EXIT_KAFKA_UNREACHABLE, out[-3000:]
    assert address in out
    assert out.count('"kafka not reachable; retrying"') >= 1, out[-3000:]
    assert took < 60, f"took {took:.1f} s"
