"""PostgreSQL unreachable mid-stream: the worker retries with backoff, reports not-ready (database
unavailable, then stalled), does not crash, and once the database is back writes everything exactly once.

The outage is simulated with a TCP proxy in front of the shared PostgreSQL (other test sessions use the
same server, so we never stop it).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    encode,
    new_group,
    publish,
    query,
    recent_fleet_records,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the database; ``cut()`` drops every connection and refuses new ones;
    while ``frozen`` is set, connections stay open but no byte passes (a half-open network)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.frozen = threading.Event()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while self.up.is_set():
                if self.frozen.is_set():
                    time.sleep(0.2)  # hold the sockets, forward nothing
                    continue
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.conns.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_database_outage_backpressure_and_recovery(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_outage")
    params = conninfo_to_dict(db)
    proxy = TcpProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    params.update(host="127.0.0.1", port=str(proxy.port))
    via_proxy = make_conninfo(**params)  # type: ignore[arg-type]
    try:
        records = recent_fleet_records(4, 1.0, seed=606)
        messages = list(encode(records))
        half = len(messages) // 2
        worker = start_worker(via_proxy, topics, new_group(), db_retry_max_backoff_s=1, stall_after_s=4)
        worker.wait_ready()
        publish(kafka_bootstrap, topics.telemetry, messages[:half])
        wait_for(
            lambda: query(db, "SELECT coalesce(sum(samples), 0) FROM telemetry_agg")[0][0] == half,
            60,
            "first half written",
        )

        proxy.cut()
        publish(kafka_bootstrap, topics.telemetry, messages[half:])
        wait_for(lambda: worker.metric("scorer_db_errors_total") > 0, 30, "database errors counted")
        time.sleep(3)
        assert worker.proc.poll() is None, "the worker must not exit while the database is down"
        ready = worker.get("/readyz")
        assert ready.status_code == 503 and "database" in " ".join(ready.json()["problems"])
        assert "DatabaseUnavailable" in " ".join(ready.json()["problems"])  # the error class is named
        assert worker.get("/healthz").status_code == 200
        # Records wait and none is durably written: a stall, visible in readiness and metrics.
        body = wait_for(lambda: (r := worker.get("/readyz").json())["stalled"] and r, 30, "stall reported")
        assert any(p.startswith("stalled:") for p in body["problems"]), body
        assert worker.metric("scorer_stalled") == 1
        progress_during_outage = worker.metric("scorer_last_progress_timestamp_seconds")
        assert 0 < progress_during_outage < time.time() - 3
        assert query(db, "SELECT coalesce(sum(samples), 0) FROM telemetry_agg")[0][0] == half

        proxy.restore()
        last = max(r["event_time"] for r in records)
        try:
            wait_for(
                lambda: (
                    query(db, "SELECT count(*) FROM telemetry_latest WHERE event_time = %s", (last,))[0][0]
                    == 4
                ),
                60,
                "stream caught up after the outage",
            )
        except AssertionError:
            print(show(worker))
            raise
        assert query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0] == len(messages)
        wait_for(lambda: worker.get("/readyz").status_code == 200, 30, "ready again")
        assert worker.metric("scorer_stalled") == 0
        assert worker.metric("scorer_last_progress_timestamp_seconds") > progress_during_outage
        log = worker.log()
        assert '"database unavailable; retrying"' in log or '"database write failed; retrying"' in log
    finally:
        proxy.close()
