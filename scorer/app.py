"""App factory: ``create_app(settings)`` builds the faust app with its agents, timers and views.

Why a factory (and no module-level app): importing ``scorer`` must not connect to anything or read
the environment; tests and the benchmark build apps with their own settings. ``python -m scorer
worker`` builds settings, then the app, then runs faust's worker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from typing import Any

import faust

from common.logging import event
from models.policy import load_policy
from scorer.agents import register_agents
from scorer.batch_consumer import install as install_batch_consumer
from scorer.model import ModelHolder
from scorer.runtime import ScorerRuntime
from scorer.settings import ScorerSettings
from scorer.timers import register_timers
from scorer.web import register_views

log = logging.getLogger("scorer")


def limit_threads() -> None:
    """One BLAS/OpenMP thread: the worker shares the machine with Kafka and PostgreSQL, and batches are
    small enough that multi-threaded numpy only adds contention."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # threadpoolctl missing or no native pools loaded: the env vars still apply
        pass


def create_app(settings: ScorerSettings) -> faust.App:
    limit_threads()
    policy = load_policy(settings.policy_path) if settings.policy_path else load_policy()
    holder = ModelHolder(settings.registry_dir, policy)
    holder.refresh()
    if holder.scorer is None:
        event(
            log,
            "starting without a valid production model: not ready, not consuming",
            logging.ERROR,
            registry_dir=str(settings.registry_dir),
            error=holder.error,
        )
    runtime = ScorerRuntime(settings, holder)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",") if h.strip()],
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        datadir=str(settings.data_dir),
        autodiscover=False,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        stream_wait_empty=False,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        consumer_max_fetch_size=settings.consumer_max_fetch_bytes,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_every_s,
        topic_partitions=1,
        producer_acks=-1,
        # A topic created after the start is consumed within seconds: the consumer's subscription
        # follows the metadata, refreshed every consumer_metadata_max_age_s (faust's default: 5 min).
        consumer_metadata_max_age_ms=int(settings.consumer_metadata_max_age_s * 1000),
        producer_metadata_max_age_ms=int(settings.consumer_metadata_max_age_s * 1000),
        timezone=settings.zone,
    )
    # Telemetry is consumed a fetched record batch at a time (scorer/batch_consumer.py), installed
    # before anything makes the app create its transport.
    telemetry = app.topic(settings.telemetry_topic, value_serializer="raw", key_serializer="raw")
    runtime.committer = install_batch_consumer(app, telemetry, runtime.queue)
    runtime.app = app
    app.scorer_runtime = runtime  # type: ignore[attr-defined]

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await runtime.on_revoked(args[0])

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await runtime.on_assigned(args[0])

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _shutdown(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Bounded: with the database down the checkpoint would retry forever; half of the shutdown
        # bound is spent on it, then the stop goes on (the next start replays from the last checkpoint).
        try:
            await asyncio.wait_for(runtime.checkpoint(), timeout=settings.shutdown_timeout_s / 2)
        except Exception as exc:  # incl. TimeoutError: a crash-equivalent, nothing is lost
            event(
                log,
                "final checkpoint failed",
                logging.ERROR,
                error=str(exc)[:300] or type(exc).__name__,
                exc_type=type(exc).__name__,
            )
        runtime.close()

    register_agents(app, runtime)
    register_timers(app, runtime)
    register_views(app, runtime)
    # Modules, the model and the app live as long as the process: out of the cyclic gc's generations
    # (its full collections would traverse them during every batch).
    gc.freeze()
    return app
