"""Kafka plumbing: topic creation and a producer configured for no loss.

Why these settings: ``acks=all`` + idempotence + retries means a broker hiccup neither loses nor
duplicates an event; ``max_in_flight <= 5`` is what idempotence needs to keep per-partition order, so a
turbine's events (one key -> one partition) stay in time order.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from common.topics import CREATED, TopicError, cockpit_topics, ensure_topics
from producers.settings import ProducerSettings

log = logging.getLogger(__name__)
#: Longest wait for the broker when checking/creating the topic at start-up.
ENSURE_TIMEOUT_S = 30.0


def ensure_topic(settings: ProducerSettings, topic: str) -> bool:
    """Create ``topic`` (the telemetry topic's partitions, retention, sizes) if absent; True if created.

    A thin wrapper over :mod:`common.topics` (the one definition of the cockpit's topics); an
    unreachable broker raises a ``KafkaError`` naming the address, as the producer CLI expects.
    """
    specs = cockpit_topics(settings)
    spec = next((s for s in specs if s.name == topic), None) or replace(specs[0], name=topic)
    try:
        outcome = ensure_topics(settings.kafka_bootstrap_servers, [spec], timeout_s=ENSURE_TIMEOUT_S)
    except TopicError as exc:
        raise KafkaError(str(exc)) from None
    return outcome.get(topic) == CREATED


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
