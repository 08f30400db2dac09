"""Publishing sweep commands to the scorer's command topic.

Why lazy: importing or starting the API must not need Kafka; the producer is created on the first
POST /v1/sweeps (in a worker thread, kafka-python is blocking) and reused afterwards.
Why the topic check and the reset: the broker does not auto-create topics, and a kafka-python
producer asked for a missing topic keeps requesting its metadata (and logging about it) forever.
So the topic is checked once before the first send (a missing one gives a 503 that says how to
create it), and after any failed send the producer is closed; the next request starts afresh.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from common.contracts import SweepCommand
from common.logging import event

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """The command could not be delivered (no broker, missing topic, timeout)."""


def missing_topic_message(topic: str, bootstrap_servers: str) -> str:
    return (
        f"topic {topic} does not exist on Kafka at {bootstrap_servers}; "
        "create it with: python -m common topics"
    )


class CommandPublisher:
    def __init__(self, bootstrap_servers: str, topic: str, timeout: float = 10.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout = timeout
        self._producer: Any = None
        self._topic_checked = False
        self._lock = threading.Lock()

    def _check_topic(self) -> None:
        """Once per producer: the topic must exist (a missing one is never waited for)."""
        if self._topic_checked:
            return
        from common.topics import TopicError, partition_count

        reachable, detail = kafka_reachable(self.bootstrap_servers, timeout=min(self.timeout, 2.0))
        if not reachable:  # fail fast, without the Kafka client's reconnect attempts in the log
            raise KafkaUnavailable(f"kafka not reachable at {self.bootstrap_servers}: {detail}")
        try:
            count = partition_count(self.bootstrap_servers, self.topic, timeout_s=self.timeout)
        except TopicError as exc:
            raise KafkaUnavailable(str(exc)) from exc
        if count is None:
            raise KafkaUnavailable(missing_topic_message(self.topic, self.bootstrap_servers))
        self._topic_checked = True

    def _get_producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer

                config: dict[str, Any] = {
                    "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()],
                    "acks": "all",
                    "retries": 3,
                    "linger_ms": 0,
                    "client_id": "cockpit-api",
                    "request_timeout_ms": int(self.timeout * 1000),
                    "max_block_ms": int(self.timeout * 1000),
                }
                if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:  # kafka-python >= 3
                    config["bootstrap_timeout_ms"] = int(self.timeout * 1000)
                try:
                    self._producer = KafkaProducer(**config)
                except Exception as exc:
                    raise KafkaUnavailable(f"kafka not reachable at {self.bootstrap_servers}: {exc}") from exc
            return self._producer

    def publish(self, command: SweepCommand) -> None:
        """Send and wait for the broker acknowledgement (acks=all): 202 must mean 'queued'."""
        self._check_topic()
        producer = self._get_producer()
        try:
            future = producer.send(self.topic, key=str(command.run_id).encode(), value=command.to_json())
            meta = future.get(timeout=self.timeout)
        except Exception as exc:
            self.close()  # no producer left retrying in the background; the next request rebuilds it
            raise KafkaUnavailable(f"could not publish to {self.topic}: {exc}") from exc
        event(
            log,
            "sweep command published",
            run_id=str(command.run_id),
            topic=self.topic,
            partition=meta.partition,
            offset=meta.offset,
        )

    def publish_raw(self, key: bytes, value: bytes, what: str) -> None:
        """Send any command record (e.g. a repair, scorer/repairs.py) and wait for the acknowledgement."""
        self._check_topic()
        producer = self._get_producer()
        try:
            meta = producer.send(self.topic, key=key, value=value).get(timeout=self.timeout)
        except Exception as exc:
            self.close()
            raise KafkaUnavailable(f"could not publish to {self.topic}: {exc}") from exc
        event(
            log, f"{what} command published", topic=self.topic, partition=meta.partition, offset=meta.offset
        )

    def close(self) -> None:
        with self._lock:
            self._topic_checked = False
            if self._producer is not None:
                try:
                    self._producer.close(timeout=2)
                except Exception:  # closing a broken producer must not hide the original error
                    log.debug("command producer close failed", exc_info=True)
                finally:
                    self._producer = None


def kafka_reachable(bootstrap_servers: str, timeout: float = 1.0) -> tuple[bool, str]:
    """Cheap readiness probe: can we open a TCP connection to one of the brokers?"""
    errors = []
    for server in (s.strip() for s in bootstrap_servers.split(",")):
        if not server:
            continue
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return True, f"broker {server} reachable"
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    return False, "; ".join(errors) or "no bootstrap server configured"
