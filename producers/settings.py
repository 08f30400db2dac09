"""Producer settings (``COCKPIT_*`` environment variables), loaded once at start with ``load_settings``.

Why these knobs: partitions decide how far the scorer can scale out; linger/batch/compression trade
latency for throughput (backfill wants big batches, live wants low latency); the rate limit protects a
shared broker during a backfill.
"""

from __future__ import annotations

from typing import Literal

from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd
from pydantic import Field, field_validator, model_validator

from common.settings import CommonSettings

Compression = Literal["none", "gzip", "lz4", "snappy", "zstd"]

#: Which codecs this interpreter can actually use (lz4/snappy/zstd need optional packages).
_CODEC_AVAILABLE = {
    "none": lambda: True,
    "gzip": has_gzip,
    "lz4": has_lz4,
    "snappy": has_snappy,
    "zstd": has_zstd,
}


class ProducerSettings(CommonSettings):
    """Settings of ``python -m producers``; each CLI flag of the same name overrides its value."""

    # Aliases of CommonSettings.telemetry_partitions / topic_replication_factor (one source of truth,
    # common/topics.py): ``--partitions`` and COCKPIT_PARTITIONS still work and win when given;
    # after loading, each alias always equals the setting it stands for.
    partitions: int | None = Field(
        None, ge=1, le=10_000, description="Alias of telemetry_partitions (--partitions)."
    )
    replication_factor: int | None = Field(
        None, ge=1, le=10, description="Alias of topic_replication_factor."
    )
    linger_ms: int = Field(20, ge=0, le=60_000, description="Batching delay for live/accelerated modes.")
    batch_size: int = Field(262_144, ge=1024, le=16 * 1024 * 1024, description="Bytes per partition batch.")
    backfill_linger_ms: int = Field(100, ge=0, le=60_000, description="Batching delay for bulk modes.")
    backfill_batch_size: int = Field(
        1_048_576, ge=1024, le=16 * 1024 * 1024, description="Bytes per partition batch in bulk modes."
    )
    max_request_size: int = Field(4 * 1024 * 1024, ge=1024, description="Largest produce request (bytes).")
    compression: Compression = Field("none", description="none or gzip (lz4/snappy/zstd if installed).")
    retries: int = Field(2_147_483_647, ge=1, description="Send retries (bounded by delivery_timeout_ms).")
    delivery_timeout_ms: int = Field(120_000, ge=1000, description="A send fails after this long.")
    max_in_flight: int = Field(5, ge=1, le=5, description="<= 5 keeps ordering with idempotence.")
    max_pending: int = Field(200_000, ge=1000, description="Unacknowledged events before send() waits.")
    rate_limit: float | None = Field(None, gt=0, description="Events/s ceiling (None = unlimited).")
    metrics_port: int | None = Field(None, ge=1, le=65_535, description="Serve /metrics here if set.")
    metrics_addr: str = Field("127.0.0.1", description="Interface for /metrics (0.0.0.0 in containers).")
    progress_interval_s: float = Field(10.0, gt=0, description="Period of JSON progress lines (no TTY).")
    flush_timeout_s: float = Field(120.0, gt=0, description="Longest wait for the final flush on stop.")

    @field_validator("compression")
    @classmethod
    def _codec_installed(cls, value: str) -> str:
        if not _CODEC_AVAILABLE[value]():
            raise ValueError(
                f"compression {value!r} needs an extra Python package here; use 'none' or 'gzip'"
            )
        return value

    @model_validator(mode="after")
    def _batches_fit_requests(self) -> ProducerSettings:
        if max(self.batch_size, self.backfill_batch_size) > self.max_request_size:
            raise ValueError("batch_size and backfill_batch_size must not exceed max_request_size")
        if max(self.batch_size, self.backfill_batch_size) > self.telemetry_max_message_bytes:
            # A full batch is one record batch on the broker, which refuses it above max.message.bytes.
            raise ValueError(
                "batch_size and backfill_batch_size must not exceed telemetry_max_message_bytes "
                f"({self.telemetry_max_message_bytes}): the broker would refuse full batches"
            )
        return self

    @model_validator(mode="after")
    def _resolve_topic_aliases(self) -> ProducerSettings:
        if self.partitions is None:
            self.partitions = self.telemetry_partitions
        else:
            self.telemetry_partitions = self.partitions
        if self.replication_factor is None:
            self.replication_factor = self.topic_replication_factor
        else:
            self.topic_replication_factor = self.replication_factor
        return self
