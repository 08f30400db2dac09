"""Faust agents: the telemetry ingest (micro-batches) and the command topic (on-demand sweeps).

Why ``noack_take``: faust's ``take`` acks a batch as soon as the agent asks for the next one. We ack
later, at the checkpoint that makes the batch's window updates durable, so the committed Kafka offset
never passes what a restarted worker can rebuild (see docs/scorer.md, "Delivery").

One bad record never reaches this level: ``BatchProcessor`` turns every per-record failure into a dead
letter. What escapes ``handle_batch`` is a batch-level failure (a database error other than
unavailability, a bug in scoring): the worker stops rather than continue with half-applied state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from common.logging import event
from scorer.runtime import ScorerRuntime, WorkerStopping

log = logging.getLogger("scorer.agents")


def register_agents(app: faust.App, runtime: ScorerRuntime) -> None:
    s = runtime.settings
    telemetry = app.topic(s.telemetry_topic, value_serializer="raw", key_serializer="raw")
    commands = app.topic(s.command_topic, value_serializer="raw", key_serializer="raw", partitions=1)

    @app.agent(telemetry, name="scorer.ingest", concurrency=1)
    async def ingest(stream: Any) -> None:
        runtime.stream = stream
        pending: list[Any] = []
        async for events in stream.noack_take(s.batch_max_size, within=s.batch_within_s):
            pending.extend(events)
            # Behind (a backlog, a replay): keep collecting up to batch_max_size so that each touched
            # turbine is rescored once per many events. Live traffic is processed every batch_within_s.
            if len(pending) < s.batch_max_size and runtime.backlog(pending) >= s.batch_max_size // 2:
                continue
            batch, pending = pending, []
            try:
                await runtime.handle_batch(batch)
            except WorkerStopping as stop:
                # A clean stop raced a batch: nothing of it was applied or acked; it is replayed.
                event(log, "batch left for the next start", logging.INFO, reason=str(stop), events=len(batch))
                return
            except Exception as exc:
                # Crash-only: in-memory state may be half-applied; a restart restores the last checkpoint
                # and replays from its offsets, which loses nothing. Never continue with that state.
                event(
                    log,
                    "batch failed; stopping the worker",
                    logging.CRITICAL,
                    exc_type=type(exc).__name__,
                    error=str(exc)[:500],
                )
                await app.crash(exc)
                raise

    @app.agent(commands, name="scorer.commands", concurrency=1)
    async def on_command(stream: Any) -> None:
        async for raw in stream:
            await runtime.handle_command(raw)

    @app.timer(interval=s.dead_letter_retry_interval_s, name="scorer.dead_letters")
    async def republish_dead_letters() -> None:
        """Fallback rows back to the dead-letter topic once it works again (never raises)."""
        try:
            await runtime.republish_dead_letters()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            event(log, "dead-letter re-publish failed", logging.ERROR, error=str(exc)[:300])

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close_dead_letters(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await runtime.dead_letters.close()
