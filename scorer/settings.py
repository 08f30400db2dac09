"""Scorer settings: one typed object built once at start-up (``COCKPIT_*`` environment variables).

Why explicit fields with defaults: the worker's behaviour (batching, checkpointing, history policy,
sweep schedule) is tuned per deployment without code changes, and a wrong value must stop the
process with a message naming the variable instead of misbehaving at 02:00.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from common.contracts import DEFAULT_MIN_EVENT_TIME
from common.settings import RegistrySettings

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ScorerSettings(RegistrySettings):
    """Everything the scorer worker needs beyond the common Kafka/PostgreSQL/registry settings.

    ``registry_dir`` (COCKPIT_REGISTRY_DIR) comes from :class:`common.settings.RegistrySettings`, the same
    setting ``python -m models`` writes to.
    """

    policy_path: Path | None = Field(default=None, description="Risk policy YAML (models default if unset).")
    consumer_group: str = Field(default="cockpit-scorer", min_length=1, description="Faust app id / group.")
    worker_id: str = Field(
        default_factory=_default_worker_id, min_length=1, description="Name in heartbeats (host-pid)."
    )
    web_host: str = Field(
        default="127.0.0.1",
        description="Interface of /metrics, /healthz, /readyz; 0.0.0.0 in containers (probes, Prometheus).",
    )
    web_port: int = Field(default=6066, ge=1, le=65535, description="Port of /metrics, /healthz, /readyz.")
    data_dir: Path = Field(default=Path("var/scorer"), description="Faust data directory (no tables kept).")

    # Group membership: a killed worker's partitions move after the session timeout.
    session_timeout_s: float = Field(
        default=30.0,
        ge=6,
        le=300,
        description="Kafka group session: a dead worker's partitions move after it.",
    )
    heartbeat_every_s: float = Field(default=3.0, gt=0, le=60, description="Kafka group heartbeat period.")

    # Micro-batching: the agent takes up to batch_max_size events or whatever arrived within batch_within_s.
    # Live traffic is cut by batch_within_s (latency); a backlog fills batches up to batch_max_size, so
    # each touched turbine is rescored once per many events (throughput).
    batch_max_size: int = Field(default=20_000, ge=1, le=100_000, description="Most events per micro-batch.")
    batch_within_s: float = Field(default=0.1, gt=0, le=30, description="Longest wait to fill a micro-batch.")
    # Live traffic (no backlog): the cut also closes as soon as nothing more is queued and the previous
    # batch's write is done or will be by the time this batch is computed, instead of waiting out
    # batch_within_s while the database is idle (scorer/ingest.py ``Ingest.collect``). On by default:
    # live bench at 5,000 events/s, interleaved, more events within 250 ms with it at load 1.4-3 (90.5 /
    # 97.6 % vs 72.7 / 92.6 %) and at load 6-9 (54.7 / 19.8 / 44.5 % vs 4.0 / 4.7 / 0.0 / 34.0 %);
    # docs/scorer.md, "Latency". False: every live batch waits batch_within_s from its first record.
    batch_cut_when_writer_idle: bool = Field(
        default=True,
        description="Close a live micro-batch once the database writer is (about to be) free (latency).",
    )
    # Python's cyclic gc runs a young collection every N net allocations of container objects (700 by
    # default: a live batch of 500 records triggers several, and every 10th/100th is an older, longer
    # one, all threads stopped meanwhile: 1.0-2.1 s of collections per 20 s live bench run on a loaded
    # box, gen2 p99 50-150 ms; none with 50,000). Set by the ingest loop when it starts; 0 keeps Python's.
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        le=10_000_000,
        description="Allocations between two young gc collections in the worker (0: Python's 700).",
    )
    # The worker's threads (event loop, Kafka fetcher, compute, database) share one GIL: a thread back
    # from I/O waits up to this long for a CPU-bound one to let go (Python's default 5 ms; each batch
    # write waits on its socket several times). Applied once by the worker's runtime.
    gil_switch_interval_ms: float = Field(
        default=1.0, gt=0, le=100, description="Python's thread switch interval in the worker (GIL hand-off)."
    )
    # Telemetry records fetched by faust's consumer wait in one queue for the ingest
    # (scorer/batch_consumer.py): when it holds this many, the fetcher waits (backpressure).
    ingest_queue_max_events: int = Field(
        default=40_000,
        ge=1_000,
        le=1_000_000,
        description="Most fetched telemetry records waiting for the ingest; when full, fetching pauses.",
    )
    stream_buffer_maxsize: int = Field(default=16384, ge=16, description="Faust stream buffer (events).")
    # Bytes fetched per partition per request (faust ``consumer_max_fetch_size``, default 1 MiB). Larger
    # fetches mean fewer, fuller getmany rounds: the faust ingest path measured 5.3k -> 11-13k events/s
    # with 8 MiB (docs/scorer.md, "Performance"). Fetch sizing only; acks and commits are unchanged.
    consumer_max_fetch_bytes: int = Field(
        default=8 << 20, ge=1 << 20, le=64 << 20, description="Bytes fetched per partition per request."
    )

    # Rescore coalescing (scorer/coalescing.py): a touched turbine is rescored when its newest event moved
    # this much event time since its last stream score (or entered a new hour bin, or its status moved
    # to/from an alarm or fault); else it waits for the next batch that makes it due or for the flush.
    # 60 s: 10-minute SCADA data is rescored at every reading, 1-Hz data once a minute instead of at every
    # micro-batch (the features are hourly bins; the history policy keeps at most a row per 10 min).
    rescore_min_event_interval_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="A touched turbine is rescored once its newest event moved this much (event time).",
    )
    # Wall-clock bound on how long a deferred turbine's score lags its newest accepted event (live data).
    rescore_flush_s: float = Field(
        default=10.0, gt=0, le=3600, description="Deferred (coalesced) rescorings are flushed this often."
    )
    # A pending turbine is overdue once pending rescore_flush_s; overdue ones are flushed in chunks of at
    # most this many, oldest first (in a stream batch or by the flush timer), chunks spaced by
    # rescore_flush_s x this / pending (scorer/coalescing.py): 1,000 turbines at once cost 0.3-0.6 s in
    # one batch; 100 cost ~0.1 s (a scoring call's fixed cost is tens of ms, so not much smaller).
    rescore_flush_max_per_batch: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Most overdue deferred rescorings per flush chunk (batch or timer), oldest first.",
    )

    # Validation of event times. No wall-clock age limit: a history import years old is scored in event
    # time; the floor only protects the stream from garbage timestamps (docs/time.md).
    min_event_time: datetime = Field(
        default=DEFAULT_MIN_EVENT_TIME, description="Events before this go to the DLQ (time_too_old)."
    )
    max_future_skew_s: float = Field(
        default=600.0, ge=0, description="Events further ahead of the wall clock go to the DLQ."
    )
    out_of_order_tolerance_s: float = Field(
        default=3600.0, ge=0, description="Events older than the turbine's newest minus this are 'late'."
    )

    # Durability of windows: periodic checkpoint of dirty windows + offsets to PostgreSQL.
    checkpoint_interval_s: float = Field(
        default=5.0, gt=0, le=600, description="Period of the window + offset checkpoint."
    )
    db_retry_max_backoff_s: float = Field(default=10.0, gt=0, description="Longest pause between DB retries.")

    # Dead letters: bounded publish (attempts x timeout), then the PostgreSQL fallback table; while the
    # topic fails, batches go straight to the fallback and a re-publish is tried every interval.
    dead_letter_publish_attempts: int = Field(
        default=3, ge=1, le=20, description="Dead-letter publish attempts before the fallback table."
    )
    dead_letter_publish_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Timeout of one dead-letter publish attempt."
    )
    dead_letter_retry_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="Re-publish of the fallback table tried this often."
    )

    # score_history policy (event time).
    history_min_interval_s: float = Field(
        default=600.0, ge=0, description="score_history: at most one row per turbine this often..."
    )
    history_max_interval_s: float = Field(
        default=3600.0, gt=0, description="...and at least one this often (event time)..."
    )
    history_score_delta: float = Field(
        default=5.0, ge=0, le=100, description="...or sooner when the score moves this much."
    )

    # Daily sweep.
    sweep_time: str = Field(default="02:00", description="Local time HH:MM of the daily fleet sweep.")
    sweep_timezone: str = Field(default="Europe/Paris", description="IANA time zone of COCKPIT_SWEEP_TIME.")
    sweep_catch_up_after_hours: float = Field(
        default=24.0, gt=0, description="A missed sweep is run at start when the last is older."
    )
    sweep_check_interval_s: float = Field(
        default=300.0, gt=0, description="How often the sweep is due-checked."
    )
    sweep_stale_after_s: float = Field(
        default=1800.0, gt=0, description="A 'running' sweep older is retried."
    )

    # Periodic work.
    heartbeat_interval_s: float = Field(default=5.0, gt=0, description="Period of the heartbeat row.")
    model_poll_interval_s: float = Field(
        default=10.0, gt=0, description="How often the registry is checked for a new production model."
    )
    register_refresh_s: float = Field(
        default=60.0, gt=0, description="The fleet register is re-read from PostgreSQL this often."
    )

    # Feature drift (scorer/drift.py, docs/models.md "Drift monitoring"): each worker samples the feature
    # rows of the turbines it scores and compares them with the production version's reference.
    drift_interval_s: float = Field(
        default=300.0, gt=0, le=86400, description="Feature drift (PSI, KS) computed this often."
    )
    drift_window_hours: float = Field(
        default=720.0, gt=0, le=24 * 400, description="Drift window: the last this many hours (event time)."
    )
    drift_sample_hours: float = Field(
        default=4.0, gt=0, le=168, description="A turbine's features are sampled once per this (event time)."
    )
    drift_min_rows: int = Field(
        default=200, ge=10, description="Fewest sampled rows of a site (or the fleet) to compute its drift."
    )
    drift_max_rows_per_site: int = Field(
        default=5000, ge=100, le=200_000, description="Most sampled rows kept per site (memory bound)."
    )
    # PSI above the chance level of as many healthy training turbines; higher than the textbook 0.1 / 0.25
    # (independent rows): these rows are autocorrelated samples of a few turbines (docs/models.md).
    drift_psi_moderate: float = Field(default=0.5, gt=0, description="PSI from which drift is 'moderate'.")
    drift_psi_significant: float = Field(
        default=2.0, gt=0, description="PSI from which drift is 'significant' (alert FeatureDrift)."
    )

    # Liveness: readiness that tells the truth, bounded start and shutdown (docs/scorer.md, "Readiness").
    stall_after_s: float = Field(
        default=120.0, gt=0, description="Lag without any record processed for this long = stalled."
    )
    unassigned_after_s: float = Field(
        default=30.0, gt=0, description="No partition while the topic has some for this long = not ready."
    )
    kafka_unreachable_after_s: float = Field(
        default=30.0, gt=0, description="No successful Kafka metadata refresh for this long = unreachable."
    )
    consumer_metadata_max_age_s: float = Field(
        default=5.0, ge=1, le=300, description="Metadata refresh period: a new topic is consumed this fast."
    )
    kafka_start_timeout_s: float = Field(
        default=60.0, gt=0, description="At start, give up ensuring the topics after this long (exit 3)."
    )
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="SIGTERM or a crash ends the process within this bound."
    )

    # glibc's allocator (common/allocator.py; docs/performance.md, "Memory"): applied by the worker at
    # start. A batch frees tens of MB of short-lived buffers between long-lived ones; glibc keeps them
    # inside its heaps unless told otherwise. 0 leaves a parameter at glibc's default (no-op elsewhere).
    malloc_mmap_threshold_bytes: int = Field(
        default=256 << 10,
        ge=0,
        le=32 << 20,
        description="Blocks from this size get their own mmap, returned on free (0: glibc's dynamic).",
    )
    malloc_trim_threshold_bytes: int = Field(
        default=0, ge=0, le=1 << 30, description="Free top of the main heap kept below this (0: glibc's)."
    )
    malloc_arena_max: int = Field(
        default=2, ge=0, le=64, description="Most glibc heaps (arenas) the worker's threads use (0: glibc's)."
    )
    malloc_trim_interval_s: float = Field(
        default=1.0, ge=0, le=3600, description="Free heap pages are given back this often (0: never)."
    )
    malloc_trim_min_free_bytes: int = Field(
        default=16 << 20,
        ge=0,
        description="A trim runs only when glibc's heaps hold this much free memory (mallinfo2 fordblks).",
    )
    allocator: Literal["auto", "jemalloc", "glibc"] = Field(
        default="auto",
        description=(
            "Memory allocator of the worker: jemalloc (the worker restarts itself once under it: "
            "LD_PRELOAD, PYTHONMALLOC=malloc), glibc, or auto (jemalloc when found, else glibc with a "
            "warning). The malloc_* settings apply to glibc only."
        ),
    )
    jemalloc_path: Path | None = Field(
        default=None,
        description="libjemalloc.so.2 to use (unset: the usual library directories are searched).",
    )
    jemalloc_conf: str = Field(
        default="narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0,background_thread:true,retain:false",
        max_length=500,
        pattern=r"^[A-Za-z0-9_:,.-]*$",
        description=(
            "jemalloc's MALLOC_CONF for the worker: freed pages go back to the kernel after 1 s, and "
            "freed address space is unmapped, not retained (less metadata)."
        ),
    )

    @model_validator(mode="after")
    def _drift_thresholds(self) -> ScorerSettings:
        if self.drift_psi_moderate > self.drift_psi_significant:
            raise ValueError(
                f"COCKPIT_DRIFT_PSI_MODERATE ({self.drift_psi_moderate}) must not exceed "
                f"COCKPIT_DRIFT_PSI_SIGNIFICANT ({self.drift_psi_significant})"
            )
        return self

    @field_validator("malloc_mmap_threshold_bytes")
    @classmethod
    def _mmap_threshold(cls, value: int) -> int:
        if 0 < value < 4096:
            raise ValueError("must be 0 (glibc's dynamic threshold) or at least one page (4096 bytes)")
        return value

    @field_validator("sweep_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM (24 h), e.g. 02:00")
        return value

    @field_validator("min_event_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2000-01-01T00:00:00Z")
        return value.astimezone(UTC)

    @field_validator("sweep_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.sweep_timezone)

    @property
    def sweep_hour_minute(self) -> tuple[int, int]:
        hour, minute = self.sweep_time.split(":")
        return int(hour), int(minute)

    @property
    def max_future_skew(self) -> timedelta:
        return timedelta(seconds=self.max_future_skew_s)
