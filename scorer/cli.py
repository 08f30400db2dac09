"""``python -m scorer worker``: ensure the topics, build settings and the app, run faust's worker.

Why the topics first: a consumer subscribed to a topic that does not exist yet gets no partitions
until its next metadata refresh; the worker creates what is missing (idempotent, common.topics) and
refuses to start, with the broker address, when Kafka cannot be reached within a bounded time.
Why our own signal handlers and a watchdog: SIGTERM/SIGINT and crashes must end the process within
``shutdown_timeout_s`` whatever faust does while stopping (scorer/liveness.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

import typer

app = typer.Typer(add_completion=False, help="Streaming risk scorer (faust worker).")
log = logging.getLogger("scorer")


@app.callback()
def _root() -> None:
    """Streaming risk scorer."""


def ensure_topics_at_start(settings: Any, *, retry_every_s: float = 2.0) -> dict[str, str]:
    """Create the cockpit's topics; retry while Kafka is unreachable, up to kafka_start_timeout_s.

    Raises ``TopicError`` (naming the broker address) once the bound is spent.
    """
    from common.logging import event
    from common.topics import TopicError, cockpit_topics, ensure_topics

    specs = cockpit_topics(settings)
    deadline = time.monotonic() + settings.kafka_start_timeout_s
    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            # Several short attempts rather than one long one: each failure gets its own log line.
            outcomes = ensure_topics(
                settings.kafka_bootstrap_servers, specs, timeout_s=max(2.0, min(10.0, left / 3))
            )
        except TopicError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            event(
                log,
                "kafka not reachable; retrying",
                logging.WARNING,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                attempt=attempt,
                retry_in_s=retry_every_s,
                gives_up_in_s=round(left, 1),
                error=str(exc)[:500],
            )
            time.sleep(min(retry_every_s, left))
            continue
        for name, outcome in outcomes.items():
            level = logging.INFO if outcome in ("created", "exists") else logging.WARNING
            event(log, "topic", level, topic=name, outcome=outcome)
        return outcomes


def choose_allocator(settings: Any) -> str:
    """The allocator this worker runs on, "jemalloc" or "glibc" (common/jemalloc.py says why).

    Under ``allocator`` auto or jemalloc, a worker not yet under jemalloc re-executes itself under it
    (same PID and arguments; this call then does not return) when the library is found. Not found:
    auto logs a warning and stays on glibc; jemalloc exits, naming every place it looked.
    """
    from common.jemalloc import find_library, loaded, preload_environment
    from common.logging import event

    if settings.allocator == "glibc":
        return "glibc"
    running = loaded()
    if running is not None:
        event(log, "allocator: jemalloc", library=running, conf=os.environ.get("MALLOC_CONF", ""))
        return "jemalloc"
    library, looked = find_library(settings.jemalloc_path)
    if library is not None and str(library) in os.environ.get("LD_PRELOAD", "").replace(":", " ").split():
        problem = f"{library} is in LD_PRELOAD but not loaded (the dynamic loader refused it)"
    elif library is None:
        problem = f"libjemalloc.so.2 not found (looked in: {', '.join(looked)})"
    else:
        event(log, "restarting under jemalloc", library=str(library), conf=settings.jemalloc_conf)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        env = preload_environment(os.environ, library, settings.jemalloc_conf)
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    if settings.allocator == "jemalloc":
        print(f"scorer: COCKPIT_ALLOCATOR=jemalloc but {problem}", file=sys.stderr)
        raise SystemExit(2)
    event(log, "allocator: glibc (jemalloc unavailable)", logging.WARNING, problem=problem)
    return "glibc"


def tune_allocator(settings: Any) -> Any:
    """glibc's mallopt parameters from the settings, and the thread that gives free heap pages back
    (common/allocator.py); before the worker's threads allocate. Returns the trimmer (or None)."""
    from common.allocator import Trimmer, TrimResult, configure
    from common.logging import event

    report = configure(
        mmap_threshold_bytes=settings.malloc_mmap_threshold_bytes,
        trim_threshold_bytes=settings.malloc_trim_threshold_bytes,
        arena_max=settings.malloc_arena_max,
    )
    if not report.supported:
        event(log, "allocator tuning skipped: not glibc", **report.as_log())
        return None
    event(log, "allocator tuned", logging.WARNING if report.failed else logging.INFO, **report.as_log())
    if settings.malloc_trim_interval_s <= 0:
        return None

    def logged(r: TrimResult) -> None:
        event(
            log,
            "malloc trimmed",
            logging.DEBUG,
            free_mb=round(r.free_bytes / 2**20, 1),
            released_mb=None if r.released_bytes is None else round(r.released_bytes / 2**20, 1),
            ms=round(r.seconds * 1000, 2),
        )

    return Trimmer(settings.malloc_trim_interval_s, settings.malloc_trim_min_free_bytes, logged).start()


def _make_worker(faust_app: Any, settings: Any, watchdog: Any) -> Any:
    import faust

    from scorer.liveness import EXIT_SHUTDOWN_TIMEOUT

    class Worker(faust.Worker):  # type: ignore[misc]
        """faust's worker with stop signals handled outside the event loop (the loop may hang)."""

        def _install_signal_handlers_unix(self) -> None:
            super()._install_signal_handlers_unix()
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.loop.remove_signal_handler(sig)
                signal.signal(sig, self._on_stop_signal)

        def _on_stop_signal(self, signum: int, frame: Any) -> None:
            sig = signal.Signals(signum)
            first = watchdog.arm(f"signal {sig.name}", EXIT_SHUTDOWN_TIMEOUT)
            if not first and (watchdog.reason or "").startswith("signal"):
                # A second stop signal: the operator insists; exit now (crash-only, nothing lost).
                watchdog.now(128 + signum)
            self.loop.call_soon_threadsafe(self._schedule_shutdown, sig)

    return Worker(faust_app, loglevel=settings.log_level, override_logging=False, quiet=True)


@app.command()
def worker(
    web_port: int | None = typer.Option(None, help="Override COCKPIT_WEB_PORT."),
    worker_id: str | None = typer.Option(None, help="Override COCKPIT_WORKER_ID."),
) -> None:
    """Run one scorer worker (several workers with the same consumer group share partitions)."""
    from scorer.app import limit_threads

    limit_threads()
    from common.logging import configure_logging, event
    from common.settings import load_settings
    from common.topics import TopicError
    from scorer.app import create_app
    from scorer.liveness import EXIT_KAFKA_UNREACHABLE, ShutdownWatchdog
    from scorer.settings import ScorerSettings

    overrides = {k: v for k, v in {"web_port": web_port, "worker_id": worker_id}.items() if v is not None}
    settings = load_settings(ScorerSettings, **overrides)
    configure_logging("scorer", settings.log_level, settings.log_format)
    if choose_allocator(settings) == "glibc":
        tune_allocator(settings)
    try:
        ensure_topics_at_start(settings)
    except TopicError as exc:
        event(
            log,
            "cannot start: kafka unreachable",
            logging.CRITICAL,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            waited_s=settings.kafka_start_timeout_s,
            error=str(exc)[:500],
        )
        print(
            f"scorer: Kafka at {settings.kafka_bootstrap_servers} unreachable for "
            f"{settings.kafka_start_timeout_s:.0f} s; topics not ensured ({exc})",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_KAFKA_UNREACHABLE) from None
    # Compile (or load from numba's cache) the feature and window-state kernels before joining the
    # group, so the first batch, restore or checkpoint after an assignment is not held by compilation
    # (~11 s cold, ~0.5 s cached for the features; ~0.8 s cold, ~1 ms cached for the state codec).
    from models.feature_kernels import warm_up
    from models.window_store import warm_up_codec

    event(log, "feature kernels ready", seconds=round(warm_up(), 2))
    event(log, "window state kernels ready", seconds=round(warm_up_codec(), 2))
    watchdog = ShutdownWatchdog(settings.shutdown_timeout_s)
    faust_app = create_app(settings)
    watchdog.watch(lambda: bool(faust_app.crashed))
    faust_worker = _make_worker(faust_app, settings, watchdog)
    try:
        faust_worker.execute_from_commandline()
    except SystemExit as exc:
        code = watchdog.exit_code(exc.code)
        event(log, "worker exited", logging.INFO if code == 0 else logging.ERROR, exit_code=code)
        for handler in logging.getLogger().handlers:
            handler.flush()
        raise SystemExit(code) from None
    except BaseException:
        if watchdog.reason == "crash":
            raise SystemExit(watchdog.exit_code(None)) from None
        raise


def main() -> None:
    app()
