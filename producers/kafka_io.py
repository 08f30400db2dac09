"""Kafka plumbing: topic creation and a producer configured for no loss.

Why these settings: ``acks=all`` + idempotence + retries means a broker hiccup neither loses nor
duplicates an event; ``max_in_flight <= 5`` is what idempotence needs to keep per-partition order, so a
turbine's events (one key -> one partition) stay in time order.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from common.logging import event
from producers.settings import ProducerSettings

log = logging.getLogger(__name__)


def ensure_topic(settings: ProducerSettings, topic: str) -> bool:
    """Create ``topic`` with the configured partitions if absent; True when this call created it."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="cockpit-producer-admin"
    )
    try:
        try:
            admin.create_topics(
                [
                    NewTopic(
                        topic,
                        num_partitions=settings.partitions,
                        replication_factor=settings.replication_factor,
                    )
                ]
            )
        except TopicAlreadyExistsError:
            existing = _partition_count(admin, topic)
            if existing is not None and existing != settings.partitions:
                event(
                    log,
                    "topic exists with a different partition count; keeping it",
                    logging.WARNING,
                    topic=topic,
                    partitions=existing,
                    configured=settings.partitions,
                )
            return False
        event(log, "topic created", topic=topic, partitions=settings.partitions)
        return True
    finally:
        admin.close()


def _partition_count(admin: KafkaAdminClient, topic: str) -> int | None:
    try:
        described = admin.describe_topics([topic])
    except Exception:  # informational only
        return None
    for item in described:
        if item.get("topic") == topic:
            return len(item.get("partitions") or [])
    return None


def producer_config(settings: ProducerSettings, *, bulk: bool) -> dict[str, Any]:
    """kafka-python configuration; ``bulk`` (backfill, replay, fast scenarios) favours big batches."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": "cockpit-producer",
        "acks": "all",
        "enable_idempotence": True,
        "retries": settings.retries,
        "max_in_flight_requests_per_connection": settings.max_in_flight,
        "delivery_timeout_ms": settings.delivery_timeout_ms,
        "linger_ms": settings.backfill_linger_ms if bulk else settings.linger_ms,
        "batch_size": settings.backfill_batch_size if bulk else settings.batch_size,
        "max_request_size": settings.max_request_size,
        "compression_type": None if settings.compression == "none" else settings.compression,
    }


def build_producer(settings: ProducerSettings, *, bulk: bool) -> KafkaProducer:
    return KafkaProducer(**producer_config(settings, bulk=bulk))
