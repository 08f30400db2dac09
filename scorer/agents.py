"""The telemetry ingest (a task over fetched record batches) and the command topic (an agent).

Why no agent for telemetry: faust's per-message path (a message, a Conductor hop and a stream event
per record, one ack each) tops out near 5k records/s. ``scorer/batch_consumer.py`` hands the fetched
record batches to a queue instead; the ingest task here cuts micro-batches from it
(``scorer/ingest.py``). Offsets are acked later, at the checkpoint that makes a batch's window updates
durable, so the committed Kafka offset never passes what a restarted worker can rebuild (see
docs/scorer.md, "Delivery"). The commands topic keeps faust's agent (one partition, a few records).

One bad record never reaches this level: ``BatchProcessor`` turns every per-record failure into a dead
letter. What escapes the ingest is a batch-level failure (a database error other than unavailability,
a bug in scoring): the worker stops rather than continue with half-applied state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from common.logging import event
from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer.agents")


def register_agents(app: faust.App, runtime: ScorerRuntime) -> None:
    s = runtime.settings
    commands = app.topic(s.command_topic, value_serializer="raw", key_serializer="raw", partitions=1)

    @app.task
    async def ingest() -> None:
        try:
            await runtime.run_ingest()
        except asyncio.CancelledError:
            raise
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

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close_dead_letters(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await runtime.dead_letters.close()
