"""Periodic work: checkpoints, heartbeats, model polling, the daily sweep and its catch-up check.

Why every body is wrapped in try/except: an exception escaping a faust timer or crontab stops it (a
crontab exception kills the worker); a failed heartbeat must never stop the scoring. The checkpoint
is the exception: a checkpoint that fails for any reason but database unavailability (retried inside)
means state cannot be made durable, so the worker crashes (crash-only, scorer/liveness.py bounds it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import faust

from common.logging import event
from scorer.runtime import ScorerRuntime
from scorer.schedule import cron_expression

log = logging.getLogger("scorer.timers")


async def _guard(name: str, fn: Callable[[], Awaitable[object]]) -> None:
    try:
        await fn()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        event(log, f"{name} failed", logging.ERROR, error=str(exc)[:500], exc_type=type(exc).__name__)


def register_timers(app: faust.App, runtime: ScorerRuntime) -> None:
    s = runtime.settings

    @app.timer(interval=s.checkpoint_interval_s, name="scorer.checkpoint")
    async def checkpoint() -> None:
        try:
            await runtime.checkpoint()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if app.should_stop:  # already stopping (a write cancelled by the bounded final checkpoint)
                event(log, "checkpoint failed while stopping", logging.WARNING, error=str(exc)[:300])
                return
            # Database unavailability is retried inside; anything that escapes is a durable write the
            # database refused (this checkpoint, or the pipelined batch write it waited for). Crash-only:
            # the worker stops, its supervisor restarts it from the last checkpoint.
            event(
                log,
                "checkpoint failed; stopping the worker",
                logging.CRITICAL,
                exc_type=type(exc).__name__,
                error=str(exc)[:500],
            )
            await app.crash(exc)

    @app.timer(interval=s.rescore_flush_s, name="scorer.rescore_flush")
    async def rescore_flush() -> None:
        """Rescores deferred by coalescing, when no batch came to flush them (end of a burst)."""
        await _guard("rescore flush", runtime.flush_rescores)

    @app.timer(interval=s.dead_letter_retry_interval_s, name="scorer.dead_letters")
    async def republish_dead_letters() -> None:
        """Fallback rows back to the dead-letter topic once it works again."""
        await _guard("dead-letter re-publish", runtime.republish_dead_letters)

    @app.timer(interval=s.heartbeat_interval_s, name="scorer.heartbeat")
    async def heartbeat() -> None:
        await _guard("heartbeat", runtime.heartbeat)

    @app.timer(interval=s.model_poll_interval_s, name="scorer.model_poll")
    async def model_poll() -> None:
        await _guard("model poll", runtime.refresh_model)

    @app.timer(interval=s.drift_interval_s, name="scorer.drift")
    async def feature_drift() -> None:  # every worker, over its own turbines (scorer/drift.py)
        await _guard("feature drift", runtime.run_drift)

    hour, minute = s.sweep_hour_minute

    @app.crontab(cron_expression(hour, minute), timezone=s.zone, on_leader=True)
    async def daily_sweep() -> None:
        await _guard("scheduled sweep", runtime.run_scheduled_sweep)

    @app.task
    async def catch_up_check() -> None:
        """Leader only: at start (once partitions are assigned) and then periodically."""
        next_check = 0.0
        loop = asyncio.get_running_loop()
        while not app.should_stop:
            await asyncio.sleep(1.0)
            if not runtime.assignment_done or loop.time() < next_check:
                continue
            if app.is_leader():
                await _guard("catch-up check", runtime.maybe_catch_up)
            next_check = loop.time() + s.sweep_check_interval_s
