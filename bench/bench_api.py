"""Latency benchmark of the API on a realistic volume (loopback only, bounded in count and time).

Seeds a private database (10,000 turbines, 90 days of score history at 4 rows/turbine/day, hourly telemetry
aggregates for a subset) with COPY, starts uvicorn in a child process, then drives each endpoint with an
open-loop async httpx load at a target rate and reports p50/p90/p99, achieved req/s and ratios to /healthz.

    .venv/bin/python bench/bench_api.py                     # seed, measure, drop the database
    .venv/bin/python bench/bench_api.py --keep              # keep the seeded database for reruns
    .venv/bin/python bench/bench_api.py --reuse cockpit_bench_ab12   # skip seeding

Latency is measured from each request's *scheduled* send time (open loop), so queueing is not hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_ADMIN_URL = os.environ.get(
    "COCKPIT_BENCH_ADMIN_URL",
    "postgresql://cockpit_admin:cockpit_admin@127.0.0.1:"
    f"{os.environ.get('COCKPIT_PG_PORT', '5433')}/postgres",
)


def _url_for(admin_url: str, dbname: str, role: str | None = None) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(admin_url)
    params["dbname"] = dbname
    if role:
        params.update(user=role, password=role)
    return make_conninfo(**params)  # type: ignore[arg-type]


def create_database(admin_url: str, name: str) -> str:
    """Fresh database owned by the writer role, migrated, readable by the reader role; returns writer URL."""
    import psycopg
    from psycopg import sql

    from common.db import grant_reader, migrate

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role in ("cockpit_writer", "cockpit_reader"):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(role)
                    )
                )
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER cockpit_writer").format(sql.Identifier(name)))
    with psycopg.connect(_url_for(admin_url, name), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("GRANT CREATE ON SCHEMA public TO cockpit_writer")
    writer = _url_for(admin_url, name, "cockpit_writer")
    migrate(writer)
    grant_reader(writer, "cockpit_reader")
    return writer


def drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


SENDERS = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Result:
    name: str
    sent: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server: dict[float, float] | None = None  # le (seconds) -> requests, from the API's own histogram
    server_cpu_ms: float = float("nan")  # API process CPU time per request (Linux, single worker)
    client_cpu_ms: float = float("nan")  # this load generator's CPU time per request

    def server_pct(self, q: float) -> float:
        """Upper bound (bucket edge, ms) under which q % of the server-side durations fall."""
        if not self.server:
            return float("nan")
        total = self.server.get(float("inf"), 0.0)
        for le, n in sorted(self.server.items()):
            if total and n / total >= q / 100:
                return le * 1000
        return float("inf")

    def server_share_within(self, seconds: float) -> float:
        if not self.server or not self.server.get(float("inf")):
            return float("nan")
        return self.server.get(seconds, 0.0) / self.server[float("inf")]

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q / 100 * len(data)))]


async def drive(client, name: str, make_path, rate: float, count: int, max_seconds: float) -> Result:  # type: ignore[no-untyped-def]
    """Open loop: request i is due at t0 + i/rate whatever happened before; latency counts from then.

    A fixed set of sender coroutines (not one task per request) keeps httpx's pool out of the measurement;
    when every sender is busy the next request starts late and that delay is part of its latency.
    """
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05
    deadline = t0 + count / rate + max_seconds
    next_index = 0

    async def sender() -> None:
        nonlocal errors, next_index
        while next_index < count and loop.time() < deadline:
            i = next_index
            next_index += 1
            due = t0 + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                res = await client.get(make_path())
                ok = res.status_code == 200
            except Exception:
                ok = False
            if ok:
                latencies.append((loop.time() - due) * 1000)
            else:
                errors += 1

    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    elapsed = loop.time() - t0
    return Result(name, count, errors + (count - next_index), elapsed, latencies)


def histogram(text: str, route: str) -> dict[float, float]:
    """Cumulative bucket counts of cockpit_api_request_duration_seconds for one route (status 200)."""
    out: dict[float, float] = {}
    needle = f'route="{route}",status="200"'
    for line in text.splitlines():
        if line.startswith("cockpit_api_request_duration_seconds_bucket{") and needle in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


@dataclass
class RawResponse:
    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class RawClient:
    """Minimal keep-alive HTTP/1.1 GET client on asyncio streams (``--client raw``).

    Why: httpx costs ~3 ms of CPU per 40 KB response here, so on a small machine the load generator, not the
    API, sets the ceiling. This client only reads status, Content-Length and the body.
    """

    def __init__(self, base_url: str) -> None:
        host_port = base_url.split("://", 1)[1].rstrip("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> RawResponse:
        reused = bool(self._idle)
        conn = self._idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        reader, writer = conn
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            if not reused:
                raise
            # the server closed this idle keep-alive connection (uvicorn: 5 s): not a request failure
            return await self._fresh(path)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length)
        self._idle.append(conn)
        return RawResponse(status, body)

    async def _fresh(self, path: str) -> RawResponse:
        self._idle.append(await asyncio.open_connection(self.host, self.port))
        return await self.get(path)

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()


def process_cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process from /proc (nan elsewhere): CPU cost per request, immune to queueing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


async def run_load(
    base_url: str,
    turbine_ids: list[str],
    tele_ids: list[str],
    rate: float,
    count: int,
    pid: int | None = None,
    client_kind: str = "httpx",
) -> list[Result]:
    import httpx

    rng = random.Random(1)
    scenarios = [
        ("GET /healthz", "/healthz", lambda: "/healthz"),
        ("GET /v1/turbines (top 50)", "/v1/turbines", lambda: "/v1/turbines?limit=50"),
        (
            "GET /v1/turbines?tier=critical,high",
            "/v1/turbines",
            lambda: "/v1/turbines?tier=critical,high&limit=50",
        ),
        (
            "GET /v1/turbines/{id}",
            "/v1/turbines/{turbine_id}",
            lambda: f"/v1/turbines/{rng.choice(turbine_ids)}",
        ),
        (
            "GET /v1/turbines/{id}/history 30d",
            "/v1/turbines/{turbine_id}/history",
            lambda: f"/v1/turbines/{rng.choice(tele_ids)}/history",
        ),
    ]
    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    results = []
    async with contextlib.AsyncExitStack() as stack:
        if client_kind == "raw":
            client: Any = RawClient(base_url)
            stack.push_async_callback(client.aclose)
        else:
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10.0)
            )
        for _name, _route, make_path in scenarios:  # warm-up: prepared statements, connection pool, caches
            for _ in range(30):
                await client.get(make_path())
        for name, route, make_path in scenarios:
            before = histogram((await client.get("/metrics")).text, route)
            cpu_before, own_before = process_cpu_seconds(pid), time.process_time()
            result = await drive(client, name, make_path, rate, count, max_seconds=20)
            cpu_after, own_after = process_cpu_seconds(pid), time.process_time()
            result.client_cpu_ms = (own_after - own_before) / max(1, result.sent) * 1000
            after = histogram((await client.get("/metrics")).text, route)
            result.server = {le: n - before.get(le, 0.0) for le, n in after.items()}
            result.server_cpu_ms = (cpu_after - cpu_before) / max(1, result.sent) * 1000
            results.append(result)
            await asyncio.sleep(0.5)
    return results


def print_table(results: list[Result], rate: float) -> None:
    base = results[0]
    print(f"\nTarget rate {rate:.0f} req/s, {base.sent} requests per endpoint (open loop, loopback)\n")
    head = (
        f"{'endpoint':42} {'ok':>6} {'err':>4} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'p50 x':>6} {'p99 x':>6} {'srv p50<=':>9} {'srv p99<=':>9} {'srv<=20ms':>9} "
        f"{'cpu ms/req':>10} {'client cpu':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ok = len(r.latencies_ms)
        print(
            f"{r.name:42} {ok:6d} {r.errors:4d} {ok / r.seconds:7.0f} {r.pct(50):7.2f} {r.pct(90):7.2f} "
            f"{r.pct(99):7.2f} {max(r.latencies_ms, default=float('nan')):7.1f} "
            f"{r.pct(50) / base.pct(50):6.1f} {r.pct(99) / base.pct(99):6.1f} "
            f"{r.server_pct(50):9.1f} {r.server_pct(99):9.1f} {r.server_share_within(0.02) * 100:8.1f}% "
            f"{r.server_cpu_ms:10.2f} {r.client_cpu_ms:10.2f}"
        )
    print(
        "\n(client latency from the scheduled send time; p50 x / p99 x: ratio to /healthz in the same run;"
        "\n srv: the API's own histogram (handler + middleware, bucket upper edges); cpu: API process CPU"
        "\n time per request (1 worker); target p99 <= 20 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="superuser URL (creates the bench DB)")
    parser.add_argument("--turbines", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=4)
    parser.add_argument("--telemetry-turbines", type=int, default=200, help="turbines with hourly aggregates")
    parser.add_argument("--rate", type=float, default=500.0, help="target requests per second")
    parser.add_argument("--count", type=int, default=5000, help="requests per endpoint")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--pool", type=int, default=8, help="COCKPIT_DB_POOL_MAX_SIZE of the API")
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="load generator: httpx.AsyncClient (default) or a minimal asyncio HTTP/1.1 client (cheaper)",
    )
    parser.add_argument("--reuse", help="existing bench database name (skips seeding)")
    args = parser.parse_args()

    from tests.integration.api.seed import seed_fleet

    name = args.reuse or f"cockpit_bench_{uuid.uuid4().hex[:6]}"
    id_format = "WT-{:05d}"
    turbine_ids = [id_format.format(i + 1) for i in range(args.turbines)]
    tele_ids = turbine_ids[: args.telemetry_turbines]
    if args.reuse:
        writer = _url_for(args.admin_url, name, "cockpit_writer")
        print(f"reusing database {name}")
    else:
        t = time.perf_counter()
        writer = create_database(args.admin_url, name)
        seed_fleet(
            writer,
            turbines=args.turbines,
            unscored=50,
            stale=100,
            days=args.days,
            per_day=args.per_day,
            telemetry_turbines=args.telemetry_turbines,
            sweeps=3,
            id_format=id_format,
        )
        rows = args.turbines * args.days * args.per_day
        print(
            f"seeded {name}: {args.turbines} turbines, ~{rows:,} score_history rows, "
            f"{args.telemetry_turbines * args.days * 24:,} telemetry_agg rows "
            f"in {time.perf_counter() - t:.0f} s"
        )
    reader = _url_for(args.admin_url, name, "cockpit_reader")
    port = free_port()
    env = {
        **os.environ,
        "COCKPIT_READER_DATABASE_URL": reader,
        "COCKPIT_LOG_LEVEL": "WARNING",
        "COCKPIT_HEARTBEAT_MAX_AGE_SECONDS": "86400",
        "COCKPIT_DB_POOL_MAX_SIZE": str(args.pool),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("uvicorn did not start")
            time.sleep(0.2)
        pid = server.pid if args.workers == 1 else None
        url = f"http://127.0.0.1:{port}"
        results = asyncio.run(run_load(url, turbine_ids, tele_ids, args.rate, args.count, pid, args.client))
        print(f"\nload generator: {args.client}, {SENDERS} senders; API: uvicorn, {args.workers} worker(s)")
        print_table(results, args.rate)
    finally:
        server.terminate()
        server.wait(timeout=15)
        if not args.keep and not args.reuse:
            drop_database(args.admin_url, name)
        elif args.keep:
            print(f"kept database {name} (rerun with --reuse {name})")


if __name__ == "__main__":
    main()
